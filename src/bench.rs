//! Kernel benchmarks at the shapes Zeroscope 576×320 uses (MODELS.md): each case is timed with
//! timestamp queries where the adapter has them (wall clock after a device sync otherwise),
//! after a warm-up dispatch (lavapipe compiles a shader on first use).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::tensor::{DType, Tensor};
use std::sync::Arc;
use std::time::Instant;

pub struct Case {
    pub kernel: &'static str,
    pub shape: String,
    pub flops: f64,
    /// Bytes a perfect kernel must move (inputs once, outputs once).
    pub bytes: f64,
    run: Box<dyn Fn() -> Result<()>>,
}

impl Case {
    pub fn new(kernel: &'static str, shape: String, flops: f64, bytes: f64, run: impl Fn() -> Result<()> + 'static) -> Case {
        Case { kernel, shape, flops, bytes, run: Box::new(run) }
    }
}

pub struct Measurement {
    pub kernel: &'static str,
    pub shape: String,
    pub seconds: f64,
    pub gflops: f64,
    pub gbps: f64,
    pub timer: &'static str,
}

/// A tensor of uniform values in [-0.5, 0.5) (benchmarks only care about shapes).
pub fn rand_tensor(gpu: &Arc<Gpu>, shape: &[usize], dtype: DType, seed: u64) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    match dtype {
        DType::F32 => Tensor::from_f32(gpu, shape, &v),
        DType::F16 => Tensor::from_f32_as_f16(gpu, shape, &v),
    }
}

fn linear_case(gpu: &Arc<Gpu>, label: &str, m: usize, k: usize, n: usize, wdt: DType) -> Result<Case> {
    let x = rand_tensor(gpu, &[m, k], DType::F32, 1)?;
    let w = rand_tensor(gpu, &[n, k], wdt, 2)?;
    let b = rand_tensor(gpu, &[n], DType::F32, 3)?;
    Ok(Case {
        kernel: "linear",
        shape: format!("{label} M={m} K={k} N={n} W={}", wdt.name()),
        flops: 2.0 * (m * k * n) as f64,
        bytes: ((m * k + m * n) * 4) as f64 + (n * k) as f64 * wdt.size() as f64,
        run: Box::new(move || crate::ops::matmul::linear(&x, &w, Some(&b)).map(drop)),
    })
}

/// Every benchmark case; `frames` scales the per-frame shapes (B·F folded into M).
pub fn cases(gpu: &Arc<Gpu>, frames: usize) -> Result<Vec<Case>> {
    let f = frames.max(1);
    let px0 = 72 * 40; // latent pixels at level 0 for 576×320
    let mut v = vec![
        linear_case(gpu, "square", 1024, 1024, 1024, DType::F32)?,
        linear_case(gpu, "issue shape", 4096, 320, 320, DType::F32)?,
        linear_case(gpu, "attn proj L0", px0 * f, 320, 320, DType::F16)?,
        linear_case(gpu, "ff geglu L0", px0 * f, 320, 2560, DType::F16)?,
        linear_case(gpu, "ff out L2", 180 * f, 5120, 1280, DType::F16)?,
    ];
    v.extend(crate::ops::bench_cases(gpu, f)?);
    Ok(v)
}

/// Times one case: a warm-up call, then enough repetitions in one submit to fill `budget` s.
pub fn measure(gpu: &Gpu, case: &Case, budget: f64) -> Result<Measurement> {
    (case.run)()?;
    gpu.sync()?;
    let time_reps = |reps: usize| -> Result<(f64, &'static str)> {
        let t0 = Instant::now();
        for _ in 0..reps {
            (case.run)()?;
        }
        let gpu_t = gpu.flush_timed()?;
        gpu.sync()?;
        Ok(match gpu_t {
            Some(t) => (t, "timestamp"),
            None => (t0.elapsed().as_secs_f64(), "wall"),
        })
    };
    let (t1, _) = time_reps(1)?;
    let reps = ((budget / t1.max(1e-6)) as usize).clamp(1, 1000);
    let (t, timer) = time_reps(reps)?;
    let seconds = t / reps as f64;
    Ok(Measurement {
        kernel: case.kernel,
        shape: case.shape.clone(),
        seconds,
        gflops: case.flops / seconds * 1e-9,
        gbps: case.bytes / seconds * 1e-9,
        timer,
    })
}

/// Timings of the whole model (see `t2v bench pipeline`).
pub struct PipelineTimes {
    pub adapter: String,
    pub model: String,
    pub shape: String,
    pub load_s: f64,
    /// Mean wall seconds of one guided UNet step as the denoising loop runs it (one batch-1
    /// pass per prompt), after a warm-up step.
    pub unet_step_s: f64,
    /// One generation: prompt encoding, every denoising step, VAE decode.
    pub generate_s: f64,
    pub steps: usize,
    /// Device buffers at the generation's peak, served from the plan's schedule, and the plan.
    pub peak_bytes: u64,
    pub planned_bytes: u64,
    /// With profiling: one guided UNet step, each dispatch timed alone — (kernel, dispatches,
    /// GPU seconds), most time first.
    pub profile: Vec<(String, u32, f64)>,
}

impl PipelineTimes {
    pub fn table(&self) -> String {
        format!(
            "adapter: {}\nmodel: {}\n| what | seconds |\n|---|---:|\n| load weights | {:.2} |\n| UNet step (guidance: 2 passes of batch 1), {} | {:.3} |\n| generation, {} steps + decode | {:.2} |\n\npeak device buffers in the generation: {} (planned {})",
            self.adapter,
            self.model,
            self.load_s,
            self.shape,
            self.unet_step_s,
            self.steps,
            self.generate_s,
            crate::error::Bytes(self.peak_bytes),
            crate::error::Bytes(self.planned_bytes)
        ) + &self.profile_table()
    }

    fn profile_table(&self) -> String {
        if self.profile.is_empty() {
            return String::new();
        }
        let total: f64 = self.profile.iter().map(|p| p.2).sum();
        let mut s = format!(
            "\n\nprofile of one guided UNet step, each dispatch timed alone ({:.3} s of GPU time in {} dispatches):\n| kernel | dispatches | GPU s | share |\n|---|---:|---:|---:|",
            total,
            self.profile.iter().map(|p| p.1).sum::<u32>()
        );
        for (k, n, t) in self.profile.iter().take(25) {
            s += &format!("\n| {k} | {n} | {t:.3} | {:.1}% |", 100.0 * t / total.max(1e-12));
        }
        s
    }
}

/// Loads `model` (or synthesises the shipped full-size configs), times `unet_steps` UNet calls
/// after a warm-up one and then one whole generation. Wall clock with a device sync after each
/// timed part: this is what a user waits for.
pub fn pipeline(
    gpu: &Arc<Gpu>,
    planner: &Arc<Gpu>,
    model: Option<&std::path::Path>,
    p: &crate::pipelines::GenerateParams,
    unet_steps: usize,
    profile: bool,
) -> Result<PipelineTimes> {
    use crate::pipelines::{folder_configs, modelscope_configs, placeholder_run, plan, TextToVideo};
    use crate::weights::Placement;
    let placement = Placement { matrices: DType::F16 };
    let configs = match model {
        Some(dir) => folder_configs(dir)?,
        None => modelscope_configs()?,
    };
    let memory_plan = plan(planner, &configs, p, placement)?;
    let t0 = Instant::now();
    let (pipe, name) = match model {
        Some(dir) => (TextToVideo::from_dir(gpu, dir, placement)?, dir.display().to_string()),
        None => (
            TextToVideo::synthetic(gpu, &modelscope_configs()?, placement)?,
            "ModelScope/Zeroscope architecture, synthetic random weights (configs/modelscope-t2v)".into(),
        ),
    };
    gpu.sync()?;
    let load_s = t0.elapsed().as_secs_f64();
    pipe.check(p)?;
    let [_, c, _, h, w] = pipe.latent_shape(p);
    let n = c * p.num_frames * h * w;
    let sample = Tensor::from_f32(gpu, &[1, c, p.num_frames, h, w], &vec![0.1; n])?;
    let d = pipe.unet.config.cross_attention_dim;
    let ctx = Tensor::from_f32(gpu, &[1, 77, d], &vec![0.01; 77 * d])?;
    // Conditioning prepared once, as the denoising loop does before its first step.
    let (temb, ctx) = (pipe.unet.frame_time_embedding(981.0, 1, p.num_frames)?, pipe.unet.frame_context(&ctx, p.num_frames)?);
    let step = || -> Result<()> {
        for _ in 0..2 {
            pipe.unet.forward_prepared(&sample, &temb, &ctx)?;
        }
        Ok(())
    };
    step()?;
    gpu.sync()?;
    let t1 = Instant::now();
    for _ in 0..unet_steps.max(1) {
        step()?;
    }
    gpu.sync()?;
    let unet_step_s = t1.elapsed().as_secs_f64() / unet_steps.max(1) as f64;
    let profile = if profile {
        gpu.start_profile()?;
        step()?;
        gpu.take_profile()
    } else {
        Vec::new()
    };
    drop((sample, temb, ctx));
    // The generation runs as `t2v generate` does: from the plan's buffers, made beforehand.
    gpu.trim();
    gpu.reset_peak();
    gpu.install_schedule(&memory_plan.schedule)?;
    let t2 = Instant::now();
    placeholder_run(&pipe, p, &mut |_| {})?;
    let generate_s = t2.elapsed().as_secs_f64();
    if let Some(d) = gpu.schedule_divergence() {
        return Err(crate::Error::Other(format!("bench: the generation left its memory plan: {d}")));
    }
    Ok(PipelineTimes {
        adapter: format!("{} ({:?})", gpu.info.name, gpu.info.backend),
        model: name,
        shape: format!("{} frames × {}×{} (latent {}×{})", p.num_frames, p.width, p.height, w, h),
        load_s,
        unet_step_s,
        generate_s,
        steps: p.num_inference_steps,
        peak_bytes: gpu.memory().peak_allocated,
        planned_bytes: memory_plan.peak,
        profile,
    })
}
