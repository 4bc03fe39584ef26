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

/// A GEMM-shaped case timed under every candidate tiling (`t2v bench kernels --tiles`).
pub struct TileCase {
    pub kernel: &'static str,
    pub shape: String,
    /// The op's tile table, and its GEMM rows, columns and depth as the table sees them.
    pub op: crate::ops::tiles::Op,
    pub mnk: [usize; 3],
    pub flops: f64,
    pub bytes: f64,
    run: std::rc::Rc<dyn Fn(crate::ops::tiles::Tile) -> Result<()>>,
}

impl TileCase {
    /// A GEMM of M rows, N columns and depth K (2·M·N·K FLOPs) moving `bytes`.
    pub(crate) fn gemm(kernel: &'static str, op: crate::ops::tiles::Op, shape: String, [m, n, k]: [usize; 3], bytes: usize, run: impl Fn(crate::ops::tiles::Tile) -> Result<()> + 'static) -> TileCase {
        TileCase { kernel, shape, op, mnk: [m, n, k], flops: 2.0 * (m * n * k) as f64, bytes: bytes as f64, run: std::rc::Rc::new(run) }
    }

    /// The case with one tiling forced, for [`measure`].
    pub fn with(&self, tile: crate::ops::tiles::Tile) -> Case {
        let run = self.run.clone();
        Case::new(self.kernel, format!("{} {tile}", self.shape), self.flops, self.bytes, move || run(tile))
    }
}

/// The UNet's GEMM shapes at the sizes of the sweep (latent 8², 16², 40×72 at 2–24
/// frames: M from a GEMV's 2 rows to 5,760), f16 weights, for choosing tiles by measurement.
pub fn tile_cases(gpu: &Arc<Gpu>) -> Result<Vec<TileCase>> {
    let mut v = Vec::new();
    // (label, M, K, N): the deep levels' 1280-wide projections at few rows, level 1's 640 at a
    // few hundred, level 0's 320 at thousands, and a feed-forward up-projection.
    for (label, m, k, n) in [
        ("L3 proj", 2, 1280, 1280),
        ("L3 proj", 8, 1280, 1280),
        ("L2 proj", 32, 1280, 1280),
        ("L2 ff out", 128, 5120, 1280),
        ("L1 proj", 512, 640, 640),
        ("L0 proj", 2048, 320, 320),
        ("L0 ff up", 2048, 320, 2560),
        ("L0 proj", 5760, 320, 320),
    ] {
        let x = rand_tensor(gpu, &[m, k], DType::F32, 1)?;
        let w = rand_tensor(gpu, &[n, k], DType::F16, 2)?;
        let out = Tensor::empty(gpu, &[m, n], DType::F32)?;
        let run = move |t| crate::ops::matmul::linear_tiled(&x, &w, None, &out, Some(t));
        v.push(TileCase::gemm("linear", crate::ops::tiles::Op::Linear, format!("{label} M={m} K={k} N={n}"), [m, n, k], (m * k + m * n) * 4 + n * k * 2, run));
    }
    v.extend(crate::ops::tile_cases(gpu)?);
    Ok(v)
}

/// Wan 2.1's per-step kernels at `tokens` patch tokens (32,760 at 832×480×81: 21 latent frames ×
/// 30 × 52 patches) with `heads` of 128 channels in self-attention (the 1.3B model: 12 heads,
/// dim 1536, FFN 8960; 512 text rows). One pass of the transformer (guidance runs two).
pub fn wan_cases(gpu: &Arc<Gpu>, tokens: usize, heads: usize) -> Result<Vec<Case>> {
    let (dim, ffn, d, text) = (1536, 8960, 128, 512);
    let mut v = vec![
        linear_case(gpu, "wan q/k/v/o", tokens, dim, dim, DType::F16)?,
        linear_case(gpu, "wan ffn up", tokens, dim, ffn, DType::F16)?,
        linear_case(gpu, "wan ffn down", tokens, ffn, dim, DType::F16)?,
    ];
    for (label, lk, h) in [("wan self", tokens, heads), ("wan cross", text, 12)] {
        // As WanAttention runs it: [1, L, H·D] when that fits one storage binding, else
        // head-major copies [H, L, D] (lavapipe's 128 MiB holds 1.3B's rows up to ~21,800 tokens).
        let fits = 4 * (tokens.max(lk) * h * d) as u64 <= gpu.max_binding().saturating_sub(512);
        let (b, hh) = if fits { (1, h) } else { (h, 1) };
        let q = rand_tensor(gpu, &[b, tokens, hh * d], DType::F32, 41)?;
        let k = rand_tensor(gpu, &[b, lk, hh * d], DType::F32, 42)?;
        let val = rand_tensor(gpu, &[b, lk, hh * d], DType::F32, 43)?;
        v.push(Case::new(
            "attention",
            format!("{label} B={b} Lq={tokens} Lk={lk} H={hh} D={d}{}", if fits { "" } else { " (head-major)" }),
            4.0 * (h * tokens * lk * d) as f64,
            4.0 * (2 * tokens * h * d + 2 * lk * h * d) as f64,
            move || crate::ops::attention::attention(&q, &k, &val, hh, false).map(drop),
        ));
    }
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
    let (t1, timer1) = time_reps(1)?;
    // A case that alone outlasts the budget (Wan's 32,760-token attention on a CPU driver) is
    // timed once rather than three times.
    let (t, timer, reps) = if t1 >= budget {
        (t1, timer1, 1)
    } else {
        let reps = ((budget / t1.max(1e-6)) as usize).clamp(1, 1000);
        let (t, timer) = time_reps(reps)?;
        (t, timer, reps)
    };
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
    /// With profiling: one guided denoiser step, each dispatch timed alone, most time first.
    pub profile: Vec<crate::gpu::KernelProfile>,
    /// The generation's stages, where timed separately (Wan).
    pub stages: Vec<(String, f64)>,
}

impl PipelineTimes {
    pub fn table(&self) -> String {
        if self.steps == 0 {
            // A denoiser step alone (a named model's synthetic transformer).
            return format!(
                "adapter: {}\nmodel: {}\n| what | seconds |\n|---|---:|\n| upload synthetic weights | {:.2} |\n| denoiser step (guidance: 2 passes of batch 1), {} | {:.3} |",
                self.adapter, self.model, self.load_s, self.shape, self.unet_step_s
            ) + &self.profile_table();
        }
        format!(
            "adapter: {}\nmodel: {}\n| what | seconds |\n|---|---:|\n| load weights | {:.2} |\n| denoiser step (UNet or transformer; guidance: 2 passes of batch 1), {} | {:.3} |\n| generation, {} steps + decode | {:.2} |\n\npeak device buffers in the generation: {} (planned {})",
            self.adapter,
            self.model,
            self.load_s,
            self.shape,
            self.unet_step_s,
            self.steps,
            self.generate_s,
            crate::error::Bytes(self.peak_bytes),
            crate::error::Bytes(self.planned_bytes)
        ) + &self.stage_table()
            + &self.profile_table()
    }

    fn stage_table(&self) -> String {
        let mut s = String::new();
        if !self.stages.is_empty() {
            s += "\n\n| generation stage | seconds |\n|---|---:|";
            for (what, t) in &self.stages {
                s += &format!("\n| {what} | {t:.2} |");
            }
        }
        s
    }

    fn profile_table(&self) -> String {
        if self.profile.is_empty() {
            return String::new();
        }
        let total: f64 = self.profile.iter().map(|p| p.seconds).sum();
        let mut s = format!(
            "\n\nprofile of one guided denoiser step, each dispatch timed alone ({:.3} s of GPU time in {} dispatches):\n\
             | kernel | dispatches | GPU s | share | GFLOP | GB bound | GFLOP/s |\n|---|---:|---:|---:|---:|---:|---:|",
            total,
            self.profile.iter().map(|p| p.dispatches).sum::<u32>()
        );
        for p in self.profile.iter().take(25) {
            s += &format!(
                "\n| {} | {} | {:.3} | {:.1}% | {:.2} | {:.3} | {:.1} |",
                p.kernel,
                p.dispatches,
                p.seconds,
                100.0 * p.seconds / total.max(1e-12),
                p.flops * 1e-9,
                p.bytes * 1e-9,
                p.flops / p.seconds.max(1e-12) * 1e-9
            );
        }
        s + &roofline_table(&self.profile)
    }
}

/// A GPU's public peak figures, for roofline predictions of a profiled step.
pub struct GpuProfile {
    pub name: &'static str,
    /// Dense 16-bit matrix-unit throughput with f32 accumulation (tensor cores, WMMA, XMX); the
    /// plain FMA rate where the GPU has no matrix units.
    pub matrix_tflops: f64,
    /// f32 FMA throughput (2 FLOPs per FMA).
    pub fma_tflops: f64,
    /// Memory bandwidth, GB/s.
    pub bandwidth_gbs: f64,
}

/// From the vendors' spec sheets (dense, no sparsity; boost clocks).
pub const GPU_PROFILES: [GpuProfile; 5] = [
    GpuProfile { name: "NVIDIA H100 SXM", matrix_tflops: 989.4, fma_tflops: 66.9, bandwidth_gbs: 3350.0 },
    GpuProfile { name: "NVIDIA RTX 4090", matrix_tflops: 165.2, fma_tflops: 82.6, bandwidth_gbs: 1008.0 },
    GpuProfile { name: "AMD RX 7900 XTX", matrix_tflops: 122.8, fma_tflops: 61.4, bandwidth_gbs: 960.0 },
    GpuProfile { name: "Apple M2 Max (38-core GPU)", matrix_tflops: 13.6, fma_tflops: 13.6, bandwidth_gbs: 400.0 },
    GpuProfile { name: "Intel Arc B580", matrix_tflops: 116.0, fma_tflops: 13.7, bandwidth_gbs: 456.0 },
];

/// Launch cost assumed per dispatch (dispatches recorded into one command buffer).
pub const DISPATCH_OVERHEAD_S: f64 = 3e-6;

/// Kernel families that have a matrix-unit (cooperative-matrix) path on GPUs that offer one:
/// GEMM-shaped work goes there; the rest runs on FMA.
fn on_matrix_units(kernel: &str) -> bool {
    ["matmul", "gemm_coop", "conv2d", "conv_temporal", "attention"].iter().any(|k| kernel.starts_with(k))
}

/// Roofline time of one profiled kernel on `g`: its declared FLOPs at the matrix or FMA peak,
/// or its bound bytes at the memory bandwidth, whichever is longer, plus the launch cost.
pub fn roofline_seconds(p: &crate::gpu::KernelProfile, g: &GpuProfile) -> f64 {
    let peak = if on_matrix_units(&p.kernel) { g.matrix_tflops } else { g.fma_tflops } * 1e12;
    (p.flops / peak).max(p.bytes / (g.bandwidth_gbs * 1e9)) + p.dispatches as f64 * DISPATCH_OVERHEAD_S
}

/// The profiled step predicted on each GPU profile: the sum of its kernels' roofline times.
fn roofline_table(profile: &[crate::gpu::KernelProfile]) -> String {
    let flops: f64 = profile.iter().map(|p| p.flops).sum();
    let bytes: f64 = profile.iter().map(|p| p.bytes).sum();
    let mut s = format!(
        "\n\nroofline prediction of this step ({:.1} GFLOP declared, {:.2} GB bound; each kernel max(FLOPs / peak, bytes / bandwidth) + {:.0} µs per dispatch; \
         GEMM-shaped kernels at the matrix-unit peak):\n| GPU | matrix TFLOP/s | FMA TFLOP/s | GB/s | predicted step ms | compute-bound share |\n|---|---:|---:|---:|---:|---:|",
        flops * 1e-9,
        bytes * 1e-9,
        DISPATCH_OVERHEAD_S * 1e6
    );
    for g in &GPU_PROFILES {
        let t: f64 = profile.iter().map(|p| roofline_seconds(p, g)).sum();
        let compute: f64 = profile
            .iter()
            .filter(|p| {
                let peak = if on_matrix_units(&p.kernel) { g.matrix_tflops } else { g.fma_tflops } * 1e12;
                p.flops / peak > p.bytes / (g.bandwidth_gbs * 1e9)
            })
            .map(|p| roofline_seconds(p, g))
            .fold(0.0, |a, b| a + b);
        s += &format!(
            "\n| {} | {:.1} | {:.1} | {:.0} | {:.2} | {:.0}% |",
            g.name,
            g.matrix_tflops,
            g.fma_tflops,
            g.bandwidth_gbs,
            t * 1e3,
            100.0 * compute / t.max(1e-12)
        );
    }
    s
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
    use crate::pipelines::{folder_configs, modelscope_configs, placeholder_run, Family, TextToVideo};
    use crate::weights::Placement;
    let placement = Placement { matrices: DType::F16 };
    // A named Wan model that is not a folder here: its transformer step alone, from the shipped
    // configs with synthetic weights (no download; the text encoder and VAE are not built).
    if let Some(name) = model.filter(|d| !d.exists()).and_then(|d| d.to_str()) {
        if let Some(known) = crate::weights::hub::MODELS.iter().find(|m| m.name == name) {
            if let crate::weights::hub::KnownFamily::Wan(builtin) = known.family {
                return wan_transformer_step(gpu, name, &crate::pipelines::wan_builtin_configs(builtin)?, p, unet_steps, profile);
            }
        }
    }
    if let Some(dir) = model {
        if let Family::Wan(configs) = Family::of_folder(dir, None)? {
            return wan_pipeline(gpu, planner, dir, &configs, p, unet_steps, profile);
        }
    }
    let configs = match model {
        Some(dir) => folder_configs(dir)?,
        None => modelscope_configs()?,
    };
    // Planned as `t2v generate` plans: within the budget (--max-device-memory), blocks streamed
    // if it needs them; the timed steps below run with the same blocks streamed.
    let memory_plan = Family::TextToVideo(configs.clone()).plan(planner, p, placement)?;
    let t0 = Instant::now();
    let (mut pipe, name) = match model {
        Some(dir) => (TextToVideo::from_dir(gpu, dir, placement)?, dir.display().to_string()),
        None => (
            TextToVideo::synthetic(gpu, &modelscope_configs()?, placement)?,
            "ModelScope/Zeroscope architecture, synthetic random weights (configs/modelscope-t2v)".into(),
        ),
    };
    gpu.sync()?;
    let load_s = t0.elapsed().as_secs_f64();
    pipe.check(p)?;
    pipe.unet.set_streamed(memory_plan.streamed())?;
    gpu.trim();
    let [_, c, _, h, w] = pipe.latent_shape(p);
    let n = c * p.num_frames * h * w;
    let sample = Tensor::from_f32(gpu, &[1, c, p.num_frames, h, w], &vec![0.1; n])?;
    let d = pipe.unet.config.cross_attention_dim;
    let ctx = Tensor::from_f32(gpu, &[1, 77, d], &vec![0.01; 77 * d])?;
    // Conditioning prepared once, as the denoising loop does before its first step.
    let (temb, ctx) = (pipe.unet.frame_time_embedding(981.0, 1, p.num_frames)?, pipe.unet.frame_context(&ctx, p.num_frames)?);
    let (unet_step_s, profile) = time_step(gpu, unet_steps, profile, &|| {
        for _ in 0..2 {
            pipe.unet.forward_prepared(&sample, &temb, &ctx)?;
        }
        Ok(())
    })?;
    drop((sample, temb, ctx));
    // The generation runs as `t2v generate` does: from the plan's buffers, made beforehand.
    gpu.trim();
    gpu.reset_peak();
    pipe.use_plan(&memory_plan)?;
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
        stages: Vec::new(),
    })
}

/// One Wan transformer step at latent `shape` (two passes when guided) as the denoising loop runs
/// it, conditioning prepared once: a warm-up, then the mean of `steps_timed`, and with `profile`
/// one more step with every dispatch timed alone.
fn time_transformer_step(
    gpu: &Arc<Gpu>,
    transformer: &crate::models::wan_transformer::WanTransformer3DModel,
    shape: &[usize; 5],
    guided: bool,
    steps_timed: usize,
    profile: bool,
) -> Result<(f64, Vec<crate::gpu::KernelProfile>)> {
    let sample = Tensor::from_f32(gpu, shape, &vec![0.1; shape.iter().product()])?;
    let td = transformer.config.text_dim;
    let ctx = transformer.prepare_context(&Tensor::from_f32(gpu, &[1, 512, td], &vec![0.01; 512 * td])?)?;
    let time = transformer.time_conditioning(&[981.0])?;
    time_step(gpu, steps_timed, profile, &|| {
        for _ in 0..if guided { 2 } else { 1 } {
            transformer.forward_prepared(&sample, &time, &ctx)?;
        }
        Ok(())
    })
}

/// Times `step` (a denoiser step): one warm-up, then the mean wall time of `n` with a device
/// sync around them, and with `profile` one more with every dispatch timed alone.
/// The issue-22 sweep's shapes: (latent frames, height, width) — 2/8/24 frames at 64² and
/// 128², and 576×320 at 2 frames. Video frames = latent frames here (the UNet3D has no
/// temporal compression).
pub const SWEEP: [(usize, usize, usize); 7] = [(2, 64, 64), (8, 64, 64), (24, 64, 64), (2, 128, 128), (8, 128, 128), (24, 128, 128), (2, 320, 576)];

/// One guided UNet step (2 passes of batch 1, as the denoising loop runs it) at each of
/// `shapes`, one model load for all: `t2v bench pipeline --sweep`, beside
/// `tools/reference/bench_diffusers.py --sweep` in one sitting (tools/bench_sweep.sh).
pub fn sweep(gpu: &Arc<Gpu>, model: Option<&std::path::Path>, shapes: &[(usize, usize, usize)], unet_steps: usize) -> Result<Vec<(String, f64)>> {
    use crate::pipelines::{modelscope_configs, GenerateParams, TextToVideo};
    use crate::weights::Placement;
    let placement = Placement { matrices: DType::F16 };
    let pipe = match model {
        Some(dir) => TextToVideo::from_dir(gpu, dir, placement)?,
        None => TextToVideo::synthetic(gpu, &modelscope_configs()?, placement)?,
    };
    let mut out = Vec::new();
    for &(frames, height, width) in shapes {
        let p = GenerateParams { prompt: "x".into(), num_frames: frames, height, width, num_inference_steps: 1, guidance_scale: 9.0, ..Default::default() };
        pipe.check(&p)?;
        gpu.trim();
        let [_, c, _, h, w] = pipe.latent_shape(&p);
        let sample = Tensor::from_f32(gpu, &[1, c, frames, h, w], &vec![0.1; c * frames * h * w])?;
        let d = pipe.unet.config.cross_attention_dim;
        let ctx = Tensor::from_f32(gpu, &[1, 77, d], &vec![0.01; 77 * d])?;
        let (temb, ctx) = (pipe.unet.frame_time_embedding(981.0, 1, frames)?, pipe.unet.frame_context(&ctx, frames)?);
        let (seconds, _) = time_step(gpu, unet_steps, false, &|| {
            for _ in 0..2 {
                pipe.unet.forward_prepared(&sample, &temb, &ctx)?;
            }
            Ok(())
        })?;
        let shape = format!("{frames} × {height}×{width} (latent {h}×{w})");
        eprintln!("sweep: {shape}: {seconds:.3} s");
        out.push((shape, seconds));
    }
    Ok(out)
}

fn time_step(gpu: &Arc<Gpu>, n: usize, profile: bool, step: &dyn Fn() -> Result<()>) -> Result<(f64, Vec<crate::gpu::KernelProfile>)> {
    step()?;
    gpu.sync()?;
    let t1 = Instant::now();
    for _ in 0..n.max(1) {
        step()?;
    }
    gpu.sync()?;
    let seconds = t1.elapsed().as_secs_f64() / n.max(1) as f64;
    let profile = if profile {
        gpu.start_profile()?;
        step()?;
        gpu.take_profile()
    } else {
        Vec::new()
    };
    Ok((seconds, profile))
}

/// The transformer step of a named Wan model with synthetic random weights (f16 on the device):
/// its time and, with `profile`, where it goes — the Wan row of the roofline predictions without
/// a 30 GB download.
fn wan_transformer_step(gpu: &Arc<Gpu>, name: &str, configs: &crate::pipelines::WanConfigs, p: &crate::pipelines::GenerateParams, steps_timed: usize, profile: bool) -> Result<PipelineTimes> {
    use crate::models::wan_transformer::WanTransformer3DModel;
    use crate::weights::{Placement, Weights};
    let mut p = p.clone();
    crate::pipelines::wan::adjust(&configs.vae, &mut p);
    let (t, sc) = (configs.vae.temporal_scale(), configs.vae.spatial_scale());
    let m = sc * configs.transformer.patch_size[1];
    if p.height == 0 || p.width == 0 || p.height % m != 0 || p.width % m != 0 {
        return Err(crate::Error::Other(format!("height/width: {}×{} must be non-zero multiples of {m} for {name}", p.width, p.height)));
    }
    let shape = [1, configs.transformer.in_channels, (p.num_frames - 1) / t + 1, p.height / sc, p.width / sc];
    let t0 = Instant::now();
    let transformer = WanTransformer3DModel::load(configs.transformer.clone(), Weights::synthetic(gpu, "transformer", Placement { matrices: DType::F16 }))?;
    gpu.sync()?;
    let load_s = t0.elapsed().as_secs_f64();
    let (step_s, profile) = time_transformer_step(gpu, &transformer, &shape, p.guidance_scale > 1.0, steps_timed, profile)?;
    Ok(PipelineTimes {
        adapter: format!("{} ({:?})", gpu.info.name, gpu.info.backend),
        model: format!("{name}: the transformer alone, synthetic random weights (configs shipped; no generation)"),
        shape: format!("{} frames × {}×{} (latent {}×{}×{})", p.num_frames, p.width, p.height, shape[2], shape[3], shape[4]),
        load_s,
        unet_step_s: step_s,
        generate_s: 0.0,
        steps: 0,
        peak_bytes: 0,
        planned_bytes: 0,
        profile,
        stages: Vec::new(),
    })
}

/// [`pipeline`] for a WanPipeline folder (a full-size replica from
/// tools/reference/make_wan_replica.py): transformer steps at the run's latent shape (two
/// batch-1 passes when guided), then one generation as `t2v generate` runs it, from the plan's
/// buffers, with each stage timed (UMT5 prompt encoding, the denoising loop, the VAE decode).
fn wan_pipeline(
    gpu: &Arc<Gpu>,
    planner: &Arc<Gpu>,
    dir: &std::path::Path,
    configs: &crate::pipelines::WanConfigs,
    p: &crate::pipelines::GenerateParams,
    steps_timed: usize,
    profile: bool,
) -> Result<PipelineTimes> {
    use crate::pipelines::{plan_wan, NoProgress, VideoPipeline, WanPipeline};
    use crate::weights::Placement;
    let placement = Placement { matrices: DType::F16 };
    let mut p = p.clone();
    crate::pipelines::wan::adjust(&configs.vae, &mut p);
    let memory_plan = plan_wan(planner, configs, &p, placement)?;
    let t0 = Instant::now();
    let mut pipe = WanPipeline::from_dir(gpu, dir, placement)?;
    pipe.check(&p)?;
    // The transformer's weights go to the device per denoising loop; that upload is timed here.
    let transformer = pipe.transformer()?;
    gpu.sync()?;
    let load_s = t0.elapsed().as_secs_f64();
    let shape = pipe.latent_shape(&p);
    let (step_s, profile) = time_transformer_step(gpu, &transformer, &shape, p.guidance_scale > 1.0, steps_timed, profile)?;
    drop(transformer);
    gpu.trim();
    gpu.reset_peak();
    pipe.use_plan(&memory_plan)?;
    let mut stages = Vec::new();
    let t2 = Instant::now();
    let embeds = pipe.encode_prompt(&p, &mut NoProgress)?;
    gpu.sync()?;
    stages.push(("prompt encoding (UMT5, 512 positions)".to_string(), t2.elapsed().as_secs_f64()));
    let t = Instant::now();
    let latents = pipe.denoise_resumable(&p, &embeds, &mut NoProgress, None, &mut |_, _, _| Ok(()))?;
    drop(embeds);
    gpu.sync()?;
    stages.push((format!("denoising, {} steps (transformer upload included)", p.num_inference_steps), t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let frames = pipe.decode(&latents, &mut NoProgress)?;
    drop(latents);
    stages.push((format!("VAE decode, {} frames", frames.frames), t.elapsed().as_secs_f64()));
    let generate_s = t2.elapsed().as_secs_f64();
    if let Some(d) = gpu.schedule_divergence() {
        return Err(crate::Error::Other(format!("bench: the generation left its memory plan: {d}")));
    }
    Ok(PipelineTimes {
        adapter: format!("{} ({:?})", gpu.info.name, gpu.info.backend),
        model: format!("{} (WanPipeline)", dir.display()),
        shape: format!("{} frames × {}×{} (latent {}×{}×{})", p.num_frames, p.width, p.height, shape[2], shape[3], shape[4]),
        load_s,
        unet_step_s: step_s,
        generate_s,
        steps: p.num_inference_steps,
        peak_bytes: gpu.memory().peak_allocated,
        planned_bytes: memory_plan.peak,
        profile,
        stages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::KernelProfile;

    #[test]
    fn roofline_takes_the_slower_bound_and_the_right_peak() {
        let g = GpuProfile { name: "test", matrix_tflops: 100.0, fma_tflops: 10.0, bandwidth_gbs: 1000.0 };
        // 1 TFLOP of matmul at the matrix peak: 10 ms; 1 GB bound: 1 ms → compute-bound.
        let mm = KernelProfile { kernel: "matmul:matmul[WG=64]".into(), dispatches: 1, seconds: 1.0, flops: 1e12, bytes: 1e9 };
        assert!((roofline_seconds(&mm, &g) - (1e-2 + DISPATCH_OVERHEAD_S)).abs() < 1e-12);
        // The same work in a kernel without a matrix path runs at the FMA peak: 100 ms.
        let c3 = KernelProfile { kernel: "conv3d:conv3d[WG=64]".into(), ..mm.clone() };
        assert!((roofline_seconds(&c3, &g) - (1e-1 + DISPATCH_OVERHEAD_S)).abs() < 1e-12);
        // No FLOPs declared: bandwidth-bound, 4 GB at 1000 GB/s, plus 10 launches.
        let norm = KernelProfile { kernel: "group_norm:normalize".into(), dispatches: 10, seconds: 1.0, flops: 0.0, bytes: 4e9 };
        assert!((roofline_seconds(&norm, &g) - (4e-3 + 10.0 * DISPATCH_OVERHEAD_S)).abs() < 1e-12);
    }
}
