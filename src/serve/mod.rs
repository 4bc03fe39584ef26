//! `t2v serve`: the local web app. An HTTP server (axum on tokio) serving the page (assets
//! embedded in the binary) and a JSON API, a job store in SQLite (`store`), and one GPU worker
//! thread (`worker`). See README.md § "t2v serve" for the API.

mod http;
mod params;
mod store;
mod worker;

use params::{JobParams, ModelChoice};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use store::Store;
use t2v::gpu::AdapterSelector;
use t2v::pipelines::{Family, MemoryPlan};
use t2v::weights::{hub, tiny_random, Placement};
use t2v::{DType, Error, Gpu, Result};

pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    /// Required to listen on anything but loopback.
    pub allow_remote: bool,
    /// Access token; generated when listening remotely and none is given.
    pub token: Option<String>,
    /// Extra names the Host header may carry (besides localhost and the bound address).
    pub allowed_hosts: Vec<String>,
    pub model_dirs: Vec<PathBuf>,
    pub data: PathBuf,
    pub paused: bool,
    pub checkpoint_every: usize,
}

/// Everything the handlers and the worker share.
pub struct App {
    pub store: Store,
    pub gpu: Arc<Gpu>,
    planner: Arc<Gpu>,
    pub models: Vec<ModelChoice>,
    pub data: PathBuf,
    pub paused: AtomicBool,
    pub running: Mutex<worker::Running>,
    pub checkpoint_every: usize,
    plans: Mutex<HashMap<String, Arc<MemoryPlan>>>,
    wake: (Mutex<u64>, Condvar),
    /// Serialises memory planning (one planning device).
    plan_lock: Mutex<()>,
}

impl App {
    pub fn job_dir(&self, id: i64) -> PathBuf {
        self.data.join("jobs").join(id.to_string())
    }

    /// Wakes the worker (a job was queued or the queue resumed).
    pub fn notify(&self) {
        let (m, c) = &self.wake;
        *m.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        c.notify_all();
    }

    pub fn wait_for_work(&self, timeout: Duration) {
        let (m, c) = &self.wake;
        let g = m.lock().unwrap_or_else(|p| p.into_inner());
        let seen = *g;
        let _ = c.wait_timeout_while(g, timeout, |n| *n == seen);
    }

    pub fn model(&self, name: &str) -> Result<&ModelChoice> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| Error::Other(format!("model '{name}' is not offered by this server")))
    }

    /// The model's folder (a hub model downloads now, on the worker, if it is not cached).
    pub fn model_dir(&self, name: &str) -> Result<PathBuf> {
        let m = self.model(name)?;
        match &m.dir {
            Some(d) => Ok(d.clone()),
            None => hub::resolve(name, &self.gpu),
        }
    }

    /// The model's family: from its folder, or from the configs t2v ships for a named model
    /// not downloaded yet.
    pub fn family(&self, name: &str) -> Result<Family> {
        let m = self.model(name)?;
        match &m.dir {
            Some(d) => Family::of_folder(d, None),
            None => Family::builtin(hub::known(name).ok_or_else(|| Error::Other(format!("model '{name}' has no folder")))?),
        }
    }

    /// The memory plan for a job's shapes (cached: the same shapes plan the same).
    pub fn plan(&self, p: &JobParams) -> Result<Arc<MemoryPlan>> {
        let key = p.plan_key();
        if let Some(plan) = self.plans.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(plan.clone());
        }
        let _one = self.plan_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(plan) = self.plans.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(plan.clone());
        }
        let family = self.family(&p.model)?;
        let planned = Arc::new(family.plan(&self.planner, &p.generate_params(), Placement { matrices: DType::F16 })?);
        self.plans.lock().unwrap_or_else(|e| e.into_inner()).insert(key, planned.clone());
        Ok(planned)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// A random 128-bit token, hex (the std hasher's per-process random keys plus the time).
fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(i);
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
        h.write_u32(std::process::id());
        out += &format!("{:016x}", h.finish());
    }
    out
}

/// The models offered: tiny-random, the published ones (marked when already in the Hugging
/// Face cache), and the folders given on the command line.
fn catalog(gpu: &Arc<Gpu>, dirs: &[PathBuf]) -> Result<Vec<ModelChoice>> {
    let mut models = Vec::new();
    let tiny = tiny_random::ensure(gpu)?;
    let about = "tiny random-weight model built by t2v (offline; the video is noise)".to_string();
    let family = Family::of_folder(&tiny, None)?;
    models.push(ModelChoice::new(tiny_random::NAME.into(), about, "builtin", true, &family, Some((32, 32)), Some(tiny)));
    let cache = hf_hub::Cache::from_env();
    for m in hub::MODELS.iter() {
        // Text2Video-Zero has settings of its own: `t2v generate` runs it, the web app does not.
        if m.name == "text2video-zero" {
            continue;
        }
        let cached = cache.model(m.repo.to_string()).get("model_index.json").is_some();
        let family = Family::builtin(m)?;
        models.push(ModelChoice::new(m.name.into(), format!("{} ({})", m.about, m.repo), "hub", cached, &family, Some(m.size), None));
    }
    // Other text-to-video pipelines already in the Hugging Face cache, by repo id.
    for (repo, dir) in cached_pipelines(&cache.path().clone()) {
        if models.iter().any(|m| m.name == repo) || hub::MODELS.iter().any(|m| m.repo == repo) {
            continue;
        }
        let Ok(family) = Family::of_folder(&dir, None) else { continue };
        models.push(ModelChoice::new(repo.clone(), format!("{repo} from the Hugging Face cache"), "hf-cache", true, &family, None, Some(dir)));
    }
    for d in dirs {
        let dir = d.canonicalize().map_err(|e| Error::Other(format!("--model-dir {}: {e}", d.display())))?;
        let family = Family::of_folder(&dir, None)?;
        let base = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
        let mut name = base.replace(['/', '\\'], "_").trim_start_matches('.').to_string();
        let mut k = 2;
        while models.iter().any(|m: &ModelChoice| m.name == name) {
            name = format!("{base}-{k}");
            k += 1;
        }
        models.push(ModelChoice::new(name, format!("local folder {}", dir.display()), "folder", true, &family, None, Some(dir)));
    }
    Ok(models)
}

/// `models--owner--name/snapshots/<rev>/` folders of the cache whose model_index.json is a
/// TextToVideoSDPipeline or WanPipeline with every component present, as (owner/name, folder).
fn cached_pipelines(cache: &std::path::Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(cache) else { return out };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(repo) = name.strip_prefix("models--") else { continue };
        let Ok(snaps) = std::fs::read_dir(e.path().join("snapshots")) else { continue };
        for s in snaps.flatten() {
            let dir = s.path();
            let index = std::fs::read_to_string(dir.join("model_index.json")).unwrap_or_default();
            let unet = ["unet", "vae", "text_encoder", "tokenizer", "scheduler"].iter().all(|c| dir.join(c).is_dir());
            let wan = ["transformer", "vae", "text_encoder", "tokenizer", "scheduler"].iter().all(|c| dir.join(c).is_dir());
            if (index.contains("TextToVideoSDPipeline") && unet) || (index.contains("\"WanPipeline\"") && wan) {
                out.push((repo.replacen("--", "/", 1), dir));
                break;
            }
        }
    }
    out.sort();
    out
}

pub fn run(sel: &AdapterSelector, opts: ServeOptions) -> Result<()> {
    let loopback = is_loopback(&opts.host);
    if !loopback && !opts.allow_remote {
        return Err(Error::Other(format!(
            "--host {} is not a loopback address: anyone who can reach it could use this machine's GPU and read its videos; \
             pass --allow-remote as well (a token is then required on every request)",
            opts.host
        )));
    }
    let token = match (&opts.token, loopback) {
        (Some(t), _) if t.len() < 16 => return Err(Error::Other("--token must be at least 16 characters".into())),
        (Some(t), _) => Some(t.clone()),
        (None, false) => Some(new_token()),
        (None, true) => None,
    };
    std::fs::create_dir_all(opts.data.join("jobs")).map_err(|e| Error::Other(format!("{}: {e}", opts.data.display())))?;
    let store = Store::open(&opts.data.join("jobs.sqlite3")).map_err(Error::Other)?;
    let interrupted = store.recover().map_err(Error::Other)?;
    let gpu = Gpu::new(sel)?;
    let planner = Gpu::planner(sel)?;
    eprintln!("adapter: {} ({:?}, {} {})", gpu.info.name, gpu.info.backend, gpu.info.driver, gpu.info.driver_info);
    let models = catalog(&gpu, &opts.model_dirs)?;
    let app = Arc::new(App {
        store,
        gpu,
        planner,
        models,
        data: opts.data.clone(),
        paused: AtomicBool::new(opts.paused),
        running: Mutex::new(Default::default()),
        checkpoint_every: opts.checkpoint_every,
        plans: Mutex::new(HashMap::new()),
        wake: (Mutex::new(0), Condvar::new()),
        plan_lock: Mutex::new(()),
    });
    if !interrupted.is_empty() {
        eprintln!("jobs interrupted by the last stop (resuming from their checkpoints): {interrupted:?}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("starting the async runtime: {e}")))?;
    let addr: SocketAddr = format!("{}:{}", bracket(&opts.host), opts.port)
        .parse()
        .or_else(|_| {
            use std::net::ToSocketAddrs;
            (opts.host.as_str(), opts.port).to_socket_addrs().ok().and_then(|mut a| a.next()).ok_or(())
        })
        .map_err(|_| Error::Other(format!("--host {}: not an address this machine has", opts.host)))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| Error::Other(format!("listening on {addr}: {e}")))?;
        let bound = listener.local_addr().map_err(|e| Error::Other(e.to_string()))?;
        let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string(), "[::1]".to_string()];
        if !bound.ip().is_unspecified() {
            hosts.push(bracket(&bound.ip().to_string()));
        }
        hosts.extend(opts.allowed_hosts.iter().map(|h| bracket(h)));
        let security = http::Security { hosts, port: bound.port(), token: token.clone() };
        {
            let app = app.clone();
            std::thread::Builder::new()
                .name("t2v-gpu-worker".into())
                .spawn(move || worker::run(app))
                .map_err(|e| Error::Other(format!("starting the worker: {e}")))?;
        }
        let shown = if bound.ip().is_unspecified() { "localhost".to_string() } else { bracket(&bound.ip().to_string()) };
        if !loopback {
            eprintln!("WARNING: listening on {bound}, beyond this machine: every request needs the access token");
        }
        match &token {
            Some(t) => println!("listening on http://{shown}:{}/?token={t}", bound.port()),
            None => println!("listening on http://{shown}:{}/", bound.port()),
        }
        let router = http::router(app.clone(), security);
        let shutdown_app = app.clone();
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                // The running job stays resumable: it is marked interrupted and continues from its
                // checkpoint at the next start (exactly as after a crash).
                let _ = shutdown_app.store.recover();
                eprintln!("stopping");
                std::process::exit(0);
            })
            .await
            .map_err(|e| Error::Other(format!("server: {e}")))
    })
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
