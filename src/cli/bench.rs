use clap::Subcommand;
use t2v::gpu::AdapterSelector;
use t2v::Gpu;

#[derive(Subcommand)]
pub enum What {
    /// Time every kernel at Zeroscope 576×320 shapes (per frame unless --frames).
    Kernels {
        /// Only cases whose kernel or shape contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Frames folded into the batch (B·F); 48 is 24 frames with guidance.
        #[arg(long, default_value_t = 1)]
        frames: usize,
        /// Seconds of timed repetitions per case.
        #[arg(long, default_value_t = 0.5)]
        budget: f64,
    },
}

pub fn run(sel: &AdapterSelector, what: What) -> t2v::Result<()> {
    match what {
        What::Kernels { filter, frames, budget } => {
            let gpu = Gpu::new(sel)?;
            println!("adapter: {} ({:?}), frames folded: {frames}", gpu.info.name, gpu.info.backend);
            println!("| kernel | shape | time (ms) | GFLOP/s | GB/s | timer |");
            println!("|---|---|---:|---:|---:|---|");
            for case in t2v::bench::cases(&gpu, frames)? {
                if let Some(f) = &filter {
                    if !case.kernel.contains(f.as_str()) && !case.shape.contains(f.as_str()) {
                        continue;
                    }
                }
                let m = t2v::bench::measure(&gpu, &case, budget)?;
                println!(
                    "| {} | {} | {:.3} | {:.2} | {:.2} | {} |",
                    m.kernel,
                    m.shape,
                    m.seconds * 1e3,
                    m.gflops,
                    m.gbps,
                    m.timer
                );
            }
            Ok(())
        }
    }
}
