//! `t2v serve`: the local web app (see src/serve/ and README § t2v serve).

use clap::Args;
use std::path::PathBuf;
use t2v::gpu::AdapterSelector;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Loopback unless --allow-remote is given too.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: any free port; the URL printed says which).
    #[arg(long, default_value_t = 7860)]
    pub port: u16,
    /// Allow a non-loopback --host; every request then needs the access token.
    #[arg(long)]
    pub allow_remote: bool,
    /// Access token (≥ 16 characters; or env T2V_SERVE_TOKEN); generated and printed when listening remotely. Given on
    /// loopback, it is required there too.
    #[arg(long)]
    pub token: Option<String>,
    /// Another name the Host header may carry (the machine's DNS name when serving remotely).
    #[arg(long)]
    pub allowed_host: Vec<String>,
    /// A local diffusers folder to offer in the page (repeatable); the browser never names paths.
    #[arg(long)]
    pub model_dir: Vec<PathBuf>,
    /// Where the job store (jobs.sqlite3) and the videos live.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Start with the queue paused (jobs are stored but none runs until resumed).
    #[arg(long)]
    pub paused: bool,
    /// Save the latents (and the scheduler's state) every N denoising steps.
    #[arg(long, default_value_t = 5)]
    pub checkpoint_every: usize,
}

fn default_data() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("t2v/serve");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/t2v/serve"),
        None => PathBuf::from("t2v-serve"),
    }
}

pub fn run(sel: &AdapterSelector, a: ServeArgs) -> t2v::Result<()> {
    crate::serve::run(
        sel,
        crate::serve::ServeOptions {
            host: a.host,
            port: a.port,
            allow_remote: a.allow_remote,
            token: a.token.or_else(|| std::env::var("T2V_SERVE_TOKEN").ok().filter(|t| !t.is_empty())),
            allowed_hosts: a.allowed_host,
            model_dirs: a.model_dir,
            data: a.data.unwrap_or_else(default_data),
            paused: a.paused,
            checkpoint_every: a.checkpoint_every,
        },
    )
}
