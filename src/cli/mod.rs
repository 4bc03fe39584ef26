//! Subcommands: `devices` lists adapters, `bench kernels` times the WGSL kernels.

mod bench;
mod compare; // issue 11: t2v compare
mod devices;
mod generate;
mod generate_zero;
mod serve;
mod score; // issue 11: t2v score
mod settings;
mod setup;
mod video_to_video;

use clap::{Parser, Subcommand};
use t2v::gpu::AdapterSelector;

#[derive(Parser)]
#[command(name = "t2v", version, about = "Text-to-video diffusion with WGSL kernels on any Vulkan, Metal or DX12 GPU")]
struct Cli {
    /// Adapter to use: a case-insensitive substring of its name (see `t2v devices`); env T2V_ADAPTER.
    #[arg(long, global = true)]
    adapter: Option<String>,
    /// Backend to use: vulkan, metal, dx12 or gl; env T2V_BACKEND.
    #[arg(long, global = true)]
    backend: Option<String>,
    /// Device memory the memory plans may use, GiB: the smaller of this and the adapter's
    /// (config max_device_memory and env T2V_DEVICE_MEMORY_GIB cap it too).
    #[arg(long, global = true, value_name = "GIB")]
    max_device_memory: Option<f64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a video from a prompt (settings from config.yaml, overridden by flags).
    Generate(Box<generate::GenerateArgs>),
    /// List the GPU adapters wgpu can see, best first.
    Devices,
    /// Show a model folder's components, parameter counts, dtypes and weight memory.
    Inspect {
        /// A diffusers pipeline folder (with model_index.json) or one component folder.
        model: std::path::PathBuf,
    },
    /// Serve the web app: a job queue, progress, history and comparisons in the browser.
    Serve(Box<serve::ServeArgs>),
    /// Compare models on prompts × seeds: videos, CLIP scores, timings, memory, report.html.
    Compare(Box<compare::CompareArgs>),
    /// Score a video (MP4, GIF or a PNG folder) against a prompt with CLIP: CLIPSIM, FETV CLIPScore, CLIP-Temp, flicker.
    Score(score::ScoreArgs),
    /// Benchmark the engine.
    Bench {
        #[command(subcommand)]
        what: bench::What,
    },
}

pub fn run() -> t2v::Result<()> {
    let cli = Cli::parse();
    let mut sel = AdapterSelector::from_env();
    sel.name = cli.adapter.or(sel.name);
    sel.backend = cli.backend.or(sel.backend);
    if let Some(g) = cli.max_device_memory {
        if t2v::gpu::gib_bytes(g).is_none() {
            return Err(t2v::Error::Other(format!("--max-device-memory: {g} is not a positive number of GiB")));
        }
    }
    let sel = sel.with_max_memory_gib(cli.max_device_memory);
    match cli.command {
        Command::Devices => devices::run(&sel),
        Command::Generate(args) => generate::run(&sel, *args),
        Command::Bench { what } => bench::run(&sel, what),
        Command::Serve(args) => serve::run(&sel, *args),
        Command::Compare(args) => compare::run(&sel, *args),
        Command::Score(args) => score::run(&sel, args),
        Command::Inspect { model } => {
            print!("{}", t2v::inspect::inspect(&model)?);
            Ok(())
        }
    }
}
