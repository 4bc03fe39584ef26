//! Memory plans. A plan runs the real pipeline code on a *planning* device (see
//! `Gpu::planner`): every tensor is allocated through the same pool with the same sizes and
//! lifetimes, but nothing is dispatched or copied and weights are never read. The pool's peak
//! is therefore the peak a real run reaches — known before the run, without the weights.

use super::{GenerateParams, NoProgress, TextToVideo};
use crate::error::{Bytes, Error, Result};
use crate::schedulers::SchedulerConfig;
use crate::models::text_encoder::ClipTextConfig;
use crate::models::unet::UNet3DConfig;
use crate::models::vae::AutoencoderKLConfig;
use crate::weights::Placement;
use crate::Gpu;
use std::path::Path;
use std::sync::Arc;

/// The configs a plan needs (no weights).
#[derive(Clone)]
pub struct ModelConfigs {
    pub unet: UNet3DConfig,
    pub vae: AutoencoderKLConfig,
    pub text_encoder: ClipTextConfig,
    pub scheduler: SchedulerConfig,
}

/// The published ModelScope / Zeroscope architecture (configs/modelscope-t2v, shipped in the
/// binary so plans work before anything is downloaded).
pub fn modelscope_configs() -> Result<ModelConfigs> {
    let json = |name: &str, text: &str| Error::Config { path: format!("built-in {name}"), msg: text.to_string() };
    Ok(ModelConfigs {
        unet: serde_json::from_str(include_str!("../../configs/modelscope-t2v/unet/config.json")).map_err(|e| json("unet", &e.to_string()))?,
        vae: serde_json::from_str(include_str!("../../configs/modelscope-t2v/vae/config.json")).map_err(|e| json("vae", &e.to_string()))?,
        text_encoder: serde_json::from_str(include_str!("../../configs/modelscope-t2v/text_encoder/config.json"))
            .map_err(|e| json("text_encoder", &e.to_string()))?,
        scheduler: SchedulerConfig::from_json(include_str!("../../configs/modelscope-t2v/scheduler/scheduler_config.json"))?,
    })
}

/// The configs of a diffusers pipeline folder.
pub fn folder_configs(dir: &Path) -> Result<ModelConfigs> {
    Ok(ModelConfigs {
        unet: UNet3DConfig::from_file(&dir.join("unet/config.json"))?,
        vae: AutoencoderKLConfig::from_file(&dir.join("vae/config.json"))?,
        text_encoder: ClipTextConfig::from_file(&dir.join("text_encoder/config.json"))?,
        scheduler: SchedulerConfig::from_file(&dir.join("scheduler/scheduler_config.json"))?,
    })
}

#[derive(Debug, Clone)]
pub struct MemoryPlan {
    /// Device bytes of the weights (as allocated: pool size classes).
    pub weights: u64,
    /// Most bytes held by tensors at once (weights included).
    pub peak_live: u64,
    /// Most bytes of device buffers at once (live + pooled for reuse): what the run needs.
    pub peak: u64,
    /// Most bytes held by tensors up to the end of each stage: prompt encoding, denoising,
    /// decoding (the buffers themselves are all made before the run).
    pub stages: Vec<(&'static str, u64)>,
    /// Device-local memory of the adapter, when known.
    pub capacity: Option<u64>,
    /// Largest storage binding an op needs, and the adapter's limit: ops split work along
    /// batches, frames and rows, but a single image's activation must fit one binding.
    pub largest_binding: u64,
    pub largest_binding_op: &'static str,
    pub binding_limit: u64,
    /// What is live at the peak, grouped: (count, bytes each, what), largest total first.
    pub at_peak: Vec<(usize, u64, String)>,
    /// Which buffer each activation of the run takes: install it on the device that runs the
    /// generation (`Gpu::install_schedule`) after loading the weights, and the run reaches `peak`.
    pub schedule: crate::gpu::schedule::Schedule,
    /// Weight bytes the run uploads from host memory (streamed blocks; 0 when all resident).
    pub streamed_per_run: u64,
    /// Which blocks stream, when the budget needs it (see [`within_budget`]).
    pub streaming: Option<StreamPlan>,
    /// Wan: the VAE decodes in diffusers' spatial tiles (`enable_tiling()`'s output, not the
    /// untiled one) because only that fits the budget.
    pub vae_tiling: Option<crate::models::wan_vae::WanVaeTiling>,
}

/// The weight-streaming part of a plan.
#[derive(Debug, Clone, Default)]
pub struct StreamPlan {
    /// Blocks left in host memory and uploaded per forward (state-dict prefixes).
    pub streamed: Vec<String>,
    /// Blocks that could stream (all of the model's), and the bytes of those kept resident and
    /// of those streamed.
    pub units: usize,
    pub resident_bytes: u64,
    pub streamed_bytes: u64,
    /// Denoising steps of the run (the per-step figure is `per_run / steps`).
    pub steps: usize,
    /// The peak with every block streamed: the smallest budget this run fits.
    pub all_streamed_peak: u64,
    /// Host → device copy speed, bytes/s (`Gpu::upload_bandwidth`).
    pub bandwidth: Option<f64>,
}

impl MemoryPlan {
    pub fn fits(&self) -> bool {
        self.capacity.is_none_or(|c| self.peak <= c) && self.largest_binding <= self.binding_limit
    }

    /// The names of the streamed blocks (empty: all resident).
    pub fn streamed(&self) -> &[String] {
        self.streaming.as_ref().map_or(&[], |s| &s.streamed)
    }

    /// Weight bytes uploaded per denoising step.
    pub fn streamed_per_step(&self) -> u64 {
        match &self.streaming {
            Some(s) if s.steps > 0 => self.streamed_per_run / s.steps as u64,
            _ => 0,
        }
    }

    pub fn report(&self) -> String {
        let mut s = format!(
            "weights {}; peak {} ({} in live tensors); activations in {} buffers of {} in all{}",
            Bytes(self.weights),
            Bytes(self.peak),
            Bytes(self.peak_live),
            self.schedule.slot_count(),
            Bytes(self.schedule.total()),
            match self.schedule.later.len() {
                0 => String::new(),
                n => format!(" (the largest of {} phases, each made when its stage starts)", n + 1),
            }
        );
        for (name, b) in &self.stages {
            s += &format!("\n  in tensors by the end of {name}: {}", Bytes(*b));
        }
        s += &format!(
            "\n  largest storage binding: {} in {} (adapter limit {}{})",
            Bytes(self.largest_binding),
            self.largest_binding_op,
            Bytes(self.binding_limit),
            if self.largest_binding > self.binding_limit { " → too large for this adapter" } else { "" }
        );
        for (n, b, what) in self.at_peak.iter().take(8) {
            s += &format!("\n  live at peak: {n} × {what} ({} each)", Bytes(*b));
        }
        if let Some(t) = &self.vae_tiling {
            s += &format!(
                "\n  VAE decode tiled as diffusers' vae.enable_tiling() ({}×{} tiles every {}×{} pixels, overlaps blended): the untiled decode does not fit; frames are enable_tiling()'s",
                t.tile_sample_min_width, t.tile_sample_min_height, t.tile_sample_stride_width, t.tile_sample_stride_height
            );
        }
        if let Some(st) = &self.streaming {
            let n = st.streamed.len();
            s += &format!(
                "\n  weights streamed: {n} of {} blocks ({}) stay in host memory and are uploaded each forward, double-buffered; {} blocks ({}) resident",
                st.units,
                Bytes(st.streamed_bytes),
                st.units - n,
                Bytes(st.resident_bytes)
            );
            let per_step = self.streamed_per_step();
            s += &format!("\n  streamed per denoising step: {}", Bytes(per_step));
            match st.bandwidth {
                Some(bw) => s += &format!(" ≈ {:.2} s of transfer at {:.1} GB/s (measured host → device copy)", per_step as f64 / bw, bw / 1e9),
                None => s += " (transfer speed unknown)",
            }
            s += &format!("\n  smallest budget for this run (every block streamed): {}", Bytes(st.all_streamed_peak));
        }
        match self.capacity {
            Some(c) => s += &format!(
                "\n  device memory budget: {} (the adapter's, capped by --max-device-memory / max_device_memory / T2V_DEVICE_MEMORY_GIB) → {}",
                Bytes(c),
                if self.fits() { "fits" } else { "does NOT fit" }
            ),
            None => s += "\n  device memory: unknown (give --max-device-memory GIB, or T2V_DEVICE_MEMORY_GIB, to check)",
        }
        s
    }
}

/// Plans a generation. `gpu` must be a planning device (`Gpu::planner`).
pub fn plan(gpu: &Arc<Gpu>, configs: &ModelConfigs, p: &GenerateParams, placement: Placement) -> Result<MemoryPlan> {
    plan_streaming(gpu, configs, p, placement, &[])
}

/// [`plan`] with the UNet blocks named in `streamed` uploaded per forward.
pub fn plan_streaming(gpu: &Arc<Gpu>, configs: &ModelConfigs, p: &GenerateParams, placement: Placement, streamed: &[String]) -> Result<MemoryPlan> {
    if !gpu.is_planning() {
        return Err(Error::Other("memory plans run on a planning device (Gpu::planner)".into()));
    }
    let planned = two_passes(gpu, configs, p, placement, streamed, &|pipe, stage| placeholder_run(pipe, p, stage));
    if planned.is_err() {
        // Leave the planner as it was: no recording, no schedule.
        drop(gpu.finish_trace());
        gpu.clear_schedule();
    }
    planned
}

/// Plans a video-to-video run of `p`'s size and frame count at `strength` (the VAE encoder's
/// activations and the video latents on top of a shorter denoising loop). `gpu` must be a
/// planning device.
/// `video_hw` is the init video's own size (the run's size, or up to 7 pixels more where the
/// VAE crops it; see [`TextToVideo::check_video`]).
pub fn plan_video_to_video(
    gpu: &Arc<Gpu>,
    configs: &ModelConfigs,
    p: &GenerateParams,
    strength: f64,
    video_hw: (usize, usize),
    placement: Placement,
) -> Result<MemoryPlan> {
    if !gpu.is_planning() {
        return Err(Error::Other("memory plans run on a planning device (Gpu::planner)".into()));
    }
    // Within the budget as text-to-video plans are (see `Family::plan`): UNet blocks stream when
    // everything resident does not fit. The loop runs int(steps · strength) steps, as diffusers.
    let units = TextToVideo::synthetic(gpu, configs, placement)?.unet.units();
    gpu.trim();
    let steps = ((p.num_inference_steps as f64 * strength) as usize).clamp(1, p.num_inference_steps.max(1));
    let bandwidth = || gpu.upload_bandwidth();
    within_budget(&units, gpu.memory_capacity, steps, &bandwidth, &mut |streamed| {
        let planned = two_passes(gpu, configs, p, placement, streamed, &|pipe, stage| placeholder_run_video(pipe, p, strength, video_hw, stage));
        if planned.is_err() {
            drop(gpu.finish_trace());
            gpu.clear_schedule();
        }
        planned
    })
}

/// A run for planning: allocates what the pipeline will, calling `stage` after each stage.
type PlannedRun<'a> = &'a dyn Fn(&TextToVideo, &mut dyn FnMut(&'static str)) -> Result<()>;

fn two_passes(gpu: &Arc<Gpu>, configs: &ModelConfigs, p: &GenerateParams, placement: Placement, streamed: &[String], run: PlannedRun) -> Result<MemoryPlan> {
    gpu.clear_schedule();
    gpu.trim();
    gpu.reset_peak();
    let mut pipe = TextToVideo::synthetic(gpu, configs, placement)?;
    pipe.unet.set_streamed(streamed)?;
    gpu.trim();
    pipe.check(p)?;
    let weights = gpu.memory().live;
    plan_run(gpu, weights, &mut |stage| run(&pipe, stage))
}

/// A pipeline run that reports its stages (see [`plan_run`]).
pub(crate) type StagedRun<'a> = dyn FnMut(&mut dyn FnMut(&'static str)) -> Result<()> + 'a;

/// The two planning passes for any pipeline (Text2Video-Zero's plan uses it; `two_passes` is
/// the same for `TextToVideo`): `run` makes the run's allocations, calling `stage` after each
/// stage; `weights` is what the synthetic weights took on the planning device.
pub(crate) fn plan_run(gpu: &Arc<Gpu>, weights: u64, run: &mut StagedRun) -> Result<MemoryPlan> {
    gpu.start_trace();
    run(&mut |_| {})?;
    let schedule = gpu.finish_trace();
    gpu.trim();
    gpu.reset_peak();
    gpu.install_schedule(&schedule)?;
    let mut stages = Vec::new();
    let streamed_before = gpu.streamed_bytes();
    run(&mut |stage| stages.push((stage, gpu.memory().peak_live)))?;
    let streamed_per_run = gpu.streamed_bytes() - streamed_before;
    if let Some(d) = gpu.schedule_divergence() {
        return Err(Error::Other(format!("memory plan: the second planning pass allocated differently from the first: {d}")));
    }
    gpu.clear_schedule();
    let m = gpu.memory();
    Ok(MemoryPlan {
        weights,
        peak_live: m.peak_live,
        peak: m.peak_allocated,
        stages,
        capacity: gpu.memory_capacity,
        largest_binding: gpu.largest_binding().0,
        largest_binding_op: gpu.largest_binding().1,
        binding_limit: gpu.max_binding(),
        at_peak: group(gpu.live_at_peak()),
        schedule,
        streamed_per_run,
        streaming: None,
        vae_tiling: None,
    })
}

/// A plan that fits `capacity` by streaming blocks, when keeping every block resident does
/// not fit: `plan_with(streamed)` plans the run with those blocks streamed; `units` are the
/// model's blocks (forward order) with their device bytes.
///
/// Every block runs once per forward, so any resident byte saves the same upload: blocks are
/// kept resident smallest first (with equal blocks, the first ones) while the headroom over the
/// every-block-streamed peak lasts, and the choice is re-planned (the measured peak decides;
/// a block is given back while it does not fit). If even streaming every block does not fit,
/// that plan is returned (it does not fit, and says the smallest budget that would).
pub fn within_budget(
    units: &[(String, u64)],
    capacity: Option<u64>,
    steps: usize,
    bandwidth: &dyn Fn() -> Option<f64>,
    plan_with: &mut dyn FnMut(&[String]) -> Result<MemoryPlan>,
) -> Result<MemoryPlan> {
    let resident = plan_with(&[])?;
    let cap = match capacity {
        Some(c) if resident.peak > c && !units.is_empty() => c,
        _ => return Ok(resident),
    };
    let names: Vec<String> = units.iter().map(|u| u.0.clone()).collect();
    let mut all = plan_with(&names)?;
    let floor = all.peak;
    let info = |streamed: &[String]| {
        let bytes = |s: bool| units.iter().filter(|u| streamed.contains(&u.0) == s).map(|u| u.1).sum();
        StreamPlan {
            streamed: streamed.to_vec(),
            units: units.len(),
            resident_bytes: bytes(false),
            streamed_bytes: bytes(true),
            steps,
            all_streamed_peak: floor,
            bandwidth: bandwidth(),
        }
    };
    if floor > cap {
        all.streaming = Some(info(&names));
        return Ok(all);
    }
    let mut order: Vec<&(String, u64)> = units.iter().collect();
    order.sort_by_key(|u| u.1);
    let mut headroom = cap - floor;
    let mut keep: Vec<&str> = Vec::new();
    for u in order {
        if u.1 <= headroom {
            headroom -= u.1;
            keep.push(&u.0);
        }
    }
    loop {
        let streamed: Vec<String> = names.iter().filter(|n| !keep.contains(&n.as_str())).cloned().collect();
        let mut p = if keep.is_empty() { all.clone() } else { plan_with(&streamed)? };
        if p.peak <= cap || keep.is_empty() {
            p.streaming = Some(info(&streamed));
            return Ok(p);
        }
        keep.pop();
    }
}

/// What `TextToVideo::generate` allocates, with placeholder token ids (as many as the text
/// encoder's positions, which is CLIP's padded length); `stage` is called after prompt encoding,
/// denoising and decoding. Benchmarks without a tokenizer run a generation this way too.
pub fn placeholder_run(pipe: &TextToVideo, p: &GenerateParams, stage: &mut dyn FnMut(&'static str)) -> Result<()> {
    let embeds = pipe.prompt.placeholder(p.guidance_scale > 1.0, p.clip_skip)?;
    stage("prompt encoding");
    let latents = pipe.denoise(p, &embeds, &mut NoProgress)?;
    drop(embeds);
    stage("denoising");
    pipe.decode(&latents, &mut NoProgress)?;
    stage("decoding");
    Ok(())
}

/// What `TextToVideo::video_to_video` allocates, on a placeholder (black) video of `p`'s size.
pub fn placeholder_run_video(
    pipe: &TextToVideo,
    p: &GenerateParams,
    strength: f64,
    (height, width): (usize, usize),
    stage: &mut dyn FnMut(&'static str),
) -> Result<()> {
    let video = crate::video::InputVideo { rgb: vec![0; p.num_frames * height * width * 3], frames: p.num_frames, height, width, fps: None };
    pipe.check_video(p, strength, &video)?;
    let embeds = pipe.prompt.placeholder(p.guidance_scale > 1.0, p.clip_skip)?;
    stage("prompt encoding");
    let latents = pipe.denoise_video(p, strength, &video, &embeds, &mut NoProgress, &mut |_, _| Ok(()))?;
    stage("video encoding and denoising");
    pipe.decode(&latents, &mut NoProgress)?;
    stage("decoding");
    Ok(())
}

/// Groups equal allocations: (count, bytes each, label), largest total first.
fn group(live: Vec<(u64, String)>) -> Vec<(usize, u64, String)> {
    let mut m: std::collections::BTreeMap<(u64, String), usize> = Default::default();
    for (b, what) in live {
        *m.entry((b, what)).or_default() += 1;
    }
    let mut v: Vec<(usize, u64, String)> = m.into_iter().map(|((b, w), n)| (n, b, w)).collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.0 as u64 * e.1));
    v
}
