//! `t2v generate` with the Text2Video-Zero pipeline: training-free video from a Stable
//! Diffusion 1.x text-to-image model (diffusers' `TextToVideoZeroPipeline`).

use super::generate::{Bars, GenerateArgs};
use super::setup;
use super::settings::{parse_scheduler, Settings};
use clap::Args;
use std::path::Path;
use std::time::Instant;
use t2v::gpu::AdapterSelector;
use t2v::pipelines::{plan_zero, sd15_configs, sd_folder_configs, Defaults, GenerateParams, PipelineClass, TextToVideoZero, ZeroParams};
use t2v::weights::{hub, Placement};
use t2v::{DType, Error, Gpu};

/// The named model for this pipeline (Stable Diffusion 1.5, fp16 weights).
pub const MODEL: &str = "text2video-zero";

#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Pipeline (text2video-zero: any Stable Diffusion 1.x model)")]
pub struct ZeroArgs {
    /// text-to-video (ModelScope / Zeroscope, UNet3D models) or text2video-zero (training-free
    /// video from a Stable Diffusion 1.x image model, e.g. `--model text2video-zero` =
    /// stable-diffusion-v1-5, or a local SD fine-tune folder). Default: chosen from the model.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// text2video-zero: number of frames (default 8; `--num-frames` is accepted too).
    #[arg(long)]
    pub video_length: Option<usize>,
    /// text2video-zero: the warped frames are made at T = timesteps[-t0-1] (default 44 of 50
    /// steps; scaled to the step count when unset).
    #[arg(long)]
    pub t0: Option<usize>,
    /// text2video-zero: …and re-noised to T′ = timesteps[-t1-1] (default 47 of 50 steps).
    #[arg(long)]
    pub t1: Option<usize>,
    /// text2video-zero: horizontal motion per frame, pixels of a 512×512 field (default 12).
    #[arg(long, allow_hyphen_values = true)]
    pub motion_field_strength_x: Option<f64>,
    /// text2video-zero: vertical motion per frame (default 12).
    #[arg(long, allow_hyphen_values = true)]
    pub motion_field_strength_y: Option<f64>,
    /// text2video-zero: frame indices for the motion, comma-separated (one per frame; a chunk
    /// of a longer video). Default 0,1,…
    #[arg(long, value_delimiter = ',')]
    pub frame_ids: Option<Vec<usize>>,
    /// text2video-zero: make long videos in chunks of this many frames, each sharing frame 0
    /// (diffusers' recipe; 8 keeps memory at the 8-frame plan).
    #[arg(long)]
    pub chunk_size: Option<usize>,
}

impl ZeroArgs {
    pub fn merge(&self, s: &mut Settings) {
        if self.pipeline.is_some() {
            s.pipeline = self.pipeline.clone();
        }
        if self.video_length.is_some() {
            s.video_length = self.video_length;
        }
        if self.t0.is_some() {
            s.t0 = self.t0;
        }
        if self.t1.is_some() {
            s.t1 = self.t1;
        }
        if let Some(v) = self.motion_field_strength_x {
            s.motion_field_strength_x = v;
        }
        if let Some(v) = self.motion_field_strength_y {
            s.motion_field_strength_y = v;
        }
        if self.frame_ids.is_some() {
            s.frame_ids = self.frame_ids.clone();
        }
        if self.chunk_size.is_some() {
            s.chunk_size = self.chunk_size;
        }
    }
}

/// Whether the settings ask for Text2Video-Zero: `pipeline` when given, else the model — the
/// named model, or a folder whose UNet is a UNet2DConditionModel (Stable Diffusion).
pub fn selected(s: &Settings) -> t2v::Result<bool> {
    match s.pipeline.as_deref() {
        Some(p) => Ok(PipelineClass::parse(p)? == PipelineClass::TextToVideoZero),
        None => Ok(is_zero_model(&s.model)),
    }
}

fn is_zero_model(model: &str) -> bool {
    if hub::known(model).is_some_and(|m| m.name == MODEL) {
        return true;
    }
    let cfg = Path::new(model).join("unet/config.json");
    std::fs::read_to_string(cfg)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["_class_name"] == "UNet2DConditionModel")
}

/// diffusers' t0 = 44, t1 = 47 are for 50 steps (fewer steps make diffusers index out of
/// range): unset, they keep the same place in a schedule of another length.
fn default_t(t: Option<usize>, paper: usize, steps: usize, below: usize) -> usize {
    t.unwrap_or_else(|| if steps == 50 { paper } else { ((steps * paper) as f64 / 50.0).round() as usize }.min(below.saturating_sub(1)))
}

// `..GenerateParams::default()` names every field today; it stays so that fields other
// pipelines add to GenerateParams get their defaults here.
#[allow(clippy::needless_update)]
pub fn run(sel: &AdapterSelector, args: &GenerateArgs, s: Settings) -> t2v::Result<()> {
    if let Some(m) = hub::known(&s.model).filter(|m| m.name != MODEL) {
        return Err(Error::Other(format!(
            "text2video-zero runs on Stable Diffusion 1.x models (`--model {MODEL}`, or a local SD folder); {} is a text-to-video model: drop --pipeline",
            m.name
        )));
    }
    let seed = setup::seed(&s);
    t2v::video::check_output_path(&s.output)?;
    let gpu = Gpu::new(sel)?;
    eprintln!("adapter: {} ({:?})", gpu.info.name, gpu.info.backend);
    let known = hub::known(&s.model);
    let dir = if known.is_some() && args.dry_run { None } else { Some(hub::resolve(&s.model, &gpu)?) };
    let configs = match &dir {
        Some(d) => sd_folder_configs(d)?,
        None => sd15_configs()?,
    };
    let placement = Placement { matrices: if args.f32_weights { DType::F32 } else { DType::F16 } };
    let native = configs.unet.sample_size.unwrap_or(64) * configs.vae.scale_factor();
    let (h0, w0) = known.map(|m| m.size).unwrap_or((native, native));
    let d = Defaults::UNET;
    let video_length = s.video_length.or(args.num_frames).unwrap_or(8);
    let steps = s.num_inference_steps.unwrap_or(d.num_inference_steps);
    let t1 = default_t(s.t1, 47, steps, steps);
    let t0 = default_t(s.t0, 44, steps, t1);
    if s.chunk_size.is_some() && s.frame_ids.is_some() {
        return Err(Error::Other("config keys 'chunk_size' and 'frame_ids': give one (chunks make their own frame ids)".into()));
    }
    let params = ZeroParams {
        common: GenerateParams {
            prompt: s.prompt.clone(),
            negative_prompt: s.negative_prompt.clone(),
            num_frames: video_length,
            height: s.height.unwrap_or(h0),
            width: s.width.unwrap_or(w0),
            num_inference_steps: steps,
            guidance_scale: s.guidance_scale.unwrap_or(d.guidance_scale),
            seed,
            scheduler: s.scheduler.as_deref().and_then(parse_scheduler),
            clip_skip: s.clip_skip,
            noise_dtype: t2v::latents::NoiseDtype::parse(&s.noise_dtype)?,
            scheduler_config: s.scheduler_config.clone(),
            eta: s.eta,
            ..GenerateParams::default()
        },
        t0,
        t1,
        motion_field_strength_x: s.motion_field_strength_x,
        motion_field_strength_y: s.motion_field_strength_y,
        frame_ids: s.frame_ids.clone(),
    };
    let chunk = s.chunk_size.filter(|&c| c < video_length);
    // A chunked video runs chunks of `chunk` frames one after another: plan one.
    let planned = match chunk {
        Some(c) => ZeroParams { common: GenerateParams { num_frames: c, ..params.common.clone() }, frame_ids: None, ..params.clone() },
        None => params.clone(),
    };
    eprintln!(
        "text2video-zero: {video_length} frames, t0 {t0} / t1 {t1} of {steps} steps, motion ({}, {}) px/frame{}; no safety checker",
        params.motion_field_strength_x,
        params.motion_field_strength_y,
        chunk.map(|c| format!(", chunks of {c}")).unwrap_or_default()
    );
    let memory = plan_zero(&Gpu::planner(sel)?, &configs, &planned, placement)?;
    setup::show_plan("", &memory.report(), args.dry_run);
    if args.dry_run {
        return Ok(());
    }
    setup::refuse_unless_fits(&gpu, &memory, "use fewer frames (--video-length, or --chunk-size 8), a smaller size (--height/--width), or --guidance-scale 1")?;
    let dir = dir.ok_or_else(|| Error::Other("no model folder".into()))?;
    let t_start = Instant::now();
    let mut pipe = TextToVideoZero::from_dir(&gpu, &dir, placement)?;
    eprintln!("loaded {} in {:.1} s", dir.display(), t_start.elapsed().as_secs_f64());
    pipe.use_plan(&memory)?;
    let mut bars = Bars::new();
    let frames = match chunk {
        Some(c) => pipe.generate_long(&params, c, &mut bars)?,
        None => pipe.generate(&params, &mut bars)?,
    };
    bars.finish();
    setup::write_video(&gpu, &s.output, &frames, s.fps(&d), t_start)
}
