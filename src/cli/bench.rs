use clap::Subcommand;
use t2v::gpu::{AdapterSelector, CoopChoice};
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
        /// GEMM-shaped kernels on matrix units (coop), FMA kernels (fma), or the default choice
        /// (auto: coop on GPUs that offer cooperative matrices).
        #[arg(long, default_value = "auto")]
        path: String,
        /// zeroscope (the UNet kernels at 576×320) or wan (Wan 2.1 1.3B's transformer kernels:
        /// self-attention over --tokens patches, cross-attention to 512 text rows, its linears).
        #[arg(long, default_value = "zeroscope")]
        shapes: String,
        /// wan: patch tokens (32760 is 832×480×81).
        #[arg(long, default_value_t = 32760)]
        tokens: usize,
        /// wan: self-attention heads (12 in the 1.3B model; cost is linear in heads).
        #[arg(long, default_value_t = 12)]
        heads: usize,
        /// Instead: time the GEMM-shaped FMA kernels at the UNet's shapes under every candidate
        /// tiling, and print each beside the one this adapter's tile table picks.
        #[arg(long)]
        tiles: bool,
    },
    /// Time UNet steps and a whole generation of a full-size (or any) model at a chosen size.
    Pipeline {
        /// A diffusers folder (e.g. a replica from tools/reference/make_replica.py), or a named Wan
        /// model (wan2.1-t2v-1.3b, …: its transformer step alone with synthetic weights, no
        /// download); without it, the shipped ModelScope/Zeroscope configs with synthetic weights.
        #[arg(long)]
        model: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 2)]
        frames: usize,
        #[arg(long, default_value_t = 64)]
        height: usize,
        #[arg(long, default_value_t = 64)]
        width: usize,
        /// Denoising steps of the timed generation (UNet steps are timed separately).
        #[arg(long, default_value_t = 2)]
        steps: usize,
        /// Timed UNet steps (after one warm-up).
        #[arg(long, default_value_t = 2)]
        unet_steps: usize,
        /// Also time every dispatch of one UNet step alone and print where the time goes, with each kernel's FLOPs and bound bytes and the step's roofline prediction on five GPU profiles (H100 SXM, RTX 4090, RX 7900 XTX, M2 Max, Arc B580)
        #[arg(long)]
        profile: bool,
        /// coop, fma or auto (see `bench kernels --path`).
        #[arg(long, default_value = "auto")]
        path: String,
        /// Instead: one guided UNet step at each shape of the kernel-choice sweep (2/8/24 frames
        /// at 64² and 128², 576×320 at 2 frames) with one model load; tools/bench_sweep.sh puts
        /// it beside diffusers in one sitting.
        #[arg(long)]
        sweep: bool,
    },
}

pub fn run(sel: &AdapterSelector, what: What) -> t2v::Result<()> {
    match what {
        What::Pipeline { model, unet_steps, path, sweep: true, .. } => {
            let gpu = Gpu::new(&with_path(sel, &path)?)?;
            println!("adapter: {} ({}), GEMM path: {}", gpu.info.name, gpu.info.driver_info, path_name(&gpu));
            println!("| latent frames × size | t2v UNet step s (guidance: 2 passes of batch 1) |\n|---|---:|");
            for (shape, s) in t2v::bench::sweep(&gpu, model.as_deref(), &t2v::bench::SWEEP, unet_steps)? {
                println!("| {shape} | {s:.3} |");
            }
            Ok(())
        }
        What::Pipeline { model, frames, height, width, steps, unet_steps, profile, path, .. } => {
            let sel = &with_path(sel, &path)?;
            let gpu = Gpu::new(sel)?;
            println!("adapter: {} ({}), GEMM path: {}", gpu.info.name, gpu.info.driver_info, path_name(&gpu));
            let p = t2v::pipelines::GenerateParams {
                prompt: "a lion walking in the jungle".into(),
                negative_prompt: String::new(),
                num_frames: frames,
                height,
                width,
                num_inference_steps: steps,
                guidance_scale: 9.0,
                seed: 0,
                scheduler: None,
                clip_skip: 0,
                noise_dtype: Default::default(),
                flow_shift: None,
                scheduler_config: Default::default(),
                max_sequence_length: None,
                eta: 0.0,
                guidance_scale_2: None,
            };
            let r = t2v::bench::pipeline(&gpu, &Gpu::planner(sel)?, model.as_deref(), &p, unet_steps, profile)?;
            println!("{}", r.table());
            Ok(())
        }
        What::Kernels { filter, budget, tiles: true, .. } => {
            let gpu = Gpu::new(&with_path(sel, "fma")?)?;
            tile_table(&gpu, filter.as_deref(), budget)
        }
        What::Kernels { filter, frames, budget, path, shapes, tokens, heads, .. } => {
            let sel = &with_path(sel, &path)?;
            let gpu = Gpu::new(sel)?;
            let cases = match shapes.as_str() {
                "zeroscope" => {
                    println!("adapter: {} ({:?}, {}), frames folded: {frames}", gpu.info.name, gpu.info.backend, gpu.info.driver_info);
                    t2v::bench::cases(&gpu, frames)?
                }
                "wan" => {
                    if tokens == 0 || heads == 0 {
                        return Err(t2v::Error::Other("--tokens and --heads must be at least 1".into()));
                    }
                    println!("adapter: {} ({:?}, {}), Wan 2.1 1.3B shapes, {tokens} tokens", gpu.info.name, gpu.info.backend, gpu.info.driver_info);
                    t2v::bench::wan_cases(&gpu, tokens, heads)?
                }
                o => return Err(t2v::Error::Other(format!("--shapes {o}: choose zeroscope or wan"))),
            };
            println!("| kernel | shape | path | time (ms) | GFLOP/s | GB/s | timer |");
            println!("|---|---|---|---:|---:|---:|---|");
            for case in cases {
                if let Some(f) = &filter {
                    if !case.kernel.contains(f.as_str()) && !case.shape.contains(f.as_str()) {
                        continue;
                    }
                }
                let m = t2v::bench::measure(&gpu, &case, budget)?;
                // The kernels with a matrix-unit variant (attention at head widths the workgroup memory holds).
                let gemm = matches!(m.kernel, "matmul" | "linear" | "conv2d" | "conv_temporal" | "attention");
                println!(
                    "| {} | {} | {} | {:.3} | {:.2} | {:.2} | {} |",
                    m.kernel,
                    m.shape,
                    if gemm { path_name(&gpu) } else { "FMA".into() },
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

/// `bench kernels --tiles`: every candidate tiling per GEMM shape, the table's pick marked.
fn tile_table(gpu: &std::sync::Arc<Gpu>, filter: Option<&str>, budget: f64) -> t2v::Result<()> {
    use t2v::ops::tiles::{candidates, gemm_tile};
    println!("adapter: {} ({:?}, {}), class {:?}", gpu.info.name, gpu.info.backend, gpu.info.driver_info, t2v::ops::tiles::class(gpu));
    println!("| kernel | shape | best tile | ms | GFLOP/s | table's tile | ms | GFLOP/s | best / table |");
    println!("|---|---|---|---:|---:|---|---:|---:|---:|");
    for case in t2v::bench::tile_cases(gpu)? {
        if filter.is_some_and(|f| !case.kernel.contains(f) && !case.shape.contains(f)) {
            continue;
        }
        let [m, n, k] = case.mnk;
        let pick = gemm_tile(gpu, case.op, m, n, k);
        let mut tiles = candidates(m);
        if !tiles.contains(&pick) {
            tiles.push(pick);
        }
        let mut times = Vec::new();
        for t in tiles {
            let r = t2v::bench::measure(gpu, &case.with(t), budget)?;
            eprintln!("  {} {}: {:.3} ms, {:.2} GFLOP/s", case.kernel, r.shape, r.seconds * 1e3, r.gflops);
            times.push((t, r.seconds));
        }
        let (best, tb) = times.iter().copied().fold((pick, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
        let tp = times.iter().find(|(t, _)| *t == pick).map_or(f64::NAN, |x| x.1);
        let gf = |s: f64| case.flops / s * 1e-9;
        println!(
            "| {} | {} | {best} | {:.3} | {:.2} | {pick} | {:.3} | {:.2} | {:.2} |",
            case.kernel,
            case.shape,
            tb * 1e3,
            gf(tb),
            tp * 1e3,
            gf(tp),
            tb / tp
        );
    }
    Ok(())
}

/// The selector with `--path` applied.
fn with_path(sel: &AdapterSelector, path: &str) -> t2v::Result<AdapterSelector> {
    Ok(AdapterSelector { coop: CoopChoice::parse(path)?, ..sel.clone() })
}

fn path_name(gpu: &Gpu) -> String {
    match gpu.caps.coop {
        Some(s) => format!("coop {s}×{s}"),
        None => "FMA".into(),
    }
}
