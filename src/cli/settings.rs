//! config.yaml for `t2v generate`: every key has a flag of the same name that overrides it.
//! Unknown keys, wrong types and impossible values are errors that name the key and the fix.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use t2v::Error;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub prompt: String,
    pub negative_prompt: String,
    pub seed: u64,
    pub randomize_seed: bool,
    /// None (this and the next three): the model family's default (`Family::defaults`).
    pub num_frames: Option<usize>,
    pub num_inference_steps: Option<usize>,
    /// A known model name, `tiny-random`, or a local diffusers folder.
    pub model: String,
    /// None: the model's recommended size.
    pub height: Option<usize>,
    pub width: Option<usize>,
    pub guidance_scale: Option<f32>,
    /// ddim, dpm++ or euler; None keeps the model's own scheduler.
    pub scheduler: Option<String>,
    pub fps: Option<u32>,
    /// .mp4, .gif, or a folder for PNG frames.
    pub output: PathBuf,
    pub clip_skip: usize,
    /// dtype of the initial noise: float32 (default), float16 or bfloat16 — the `torch_dtype`
    /// of the diffusers pipeline whose seeds to reproduce.
    pub noise_dtype: String,
    /// Flow-matching models (Wan): the scheduler's shift (null: the model's, 3.0 for Wan 2.1;
    /// the card says 5.0 for 720p).
    pub flow_shift: Option<f64>,
    /// Scheduler options over the model's scheduler_config.json (diffusers'
    /// `Scheduler.from_config(config, **overrides)`), e.g. `{timestep_spacing: trailing}`.
    pub scheduler_config: serde_json::Map<String, serde_json::Value>,
    /// Wan: the prompt's token length (null: 512, diffusers' default).
    pub max_sequence_length: Option<usize>,
    /// DDIM's η (diffusers' `eta`, default 0); other schedulers ignore it.
    pub eta: f32,
    /// Wan 2.2 A14B: the low-noise expert's guidance scale (null: guidance_scale).
    pub guidance_scale_2: Option<f32>,
    /// Device memory the plans may use, GiB (null: the adapter's; `--max-device-memory` and
    /// `T2V_DEVICE_MEMORY_GIB` cap it too).
    pub max_device_memory: Option<f64>,
    // --- text2video-zero (diffusers' TextToVideoZeroPipeline arguments) ---
    /// text-to-video or text2video-zero; None: chosen from the model.
    pub pipeline: Option<String>,
    /// text2video-zero's frame count (None: 8, or num_frames when given as a flag).
    pub video_length: Option<usize>,
    /// None: 44 / 47 at 50 steps, the same place in the schedule at other step counts.
    pub t0: Option<usize>,
    pub t1: Option<usize>,
    pub motion_field_strength_x: f64,
    pub motion_field_strength_y: f64,
    pub frame_ids: Option<Vec<usize>>,
    /// Long videos in chunks of this many frames (diffusers' recipe).
    pub chunk_size: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prompt: "A lion walking in the jungle".into(),
            negative_prompt: String::new(),
            seed: 0,
            randomize_seed: true,
            num_frames: None,
            num_inference_steps: None,
            model: "zeroscope-576w".into(),
            height: None,
            width: None,
            guidance_scale: None,
            scheduler: None,
            fps: None,
            output: PathBuf::from("video.mp4"),
            clip_skip: 0,
            noise_dtype: "float32".into(),
            flow_shift: None,
            scheduler_config: Default::default(),
            max_sequence_length: None,
            eta: 0.0,
            guidance_scale_2: None,
            max_device_memory: None,
            pipeline: None,
            video_length: None,
            t0: None,
            t1: None,
            motion_field_strength_x: 12.0,
            motion_field_strength_y: 12.0,
            frame_ids: None,
            chunk_size: None,
        }
    }
}

impl Settings {
    /// The generation settings with the model's defaults where the config and flags give none.
    pub fn params(&self, d: &t2v::pipelines::Defaults, seed: u64) -> t2v::Result<t2v::pipelines::GenerateParams> {
        Ok(t2v::pipelines::GenerateParams {
            prompt: self.prompt.clone(),
            negative_prompt: self.negative_prompt.clone(),
            num_frames: self.num_frames.unwrap_or(d.num_frames),
            height: self.height.unwrap_or(d.height),
            width: self.width.unwrap_or(d.width),
            num_inference_steps: self.num_inference_steps.unwrap_or(d.num_inference_steps),
            guidance_scale: self.guidance_scale.unwrap_or(d.guidance_scale),
            seed,
            scheduler: self.scheduler.as_deref().and_then(parse_scheduler),
            clip_skip: self.clip_skip,
            noise_dtype: t2v::latents::NoiseDtype::parse(&self.noise_dtype)?,
            flow_shift: self.flow_shift,
            scheduler_config: self.scheduler_config.clone(),
            max_sequence_length: self.max_sequence_length,
            eta: self.eta,
            guidance_scale_2: self.guidance_scale_2,
        })
    }

    pub fn fps(&self, d: &t2v::pipelines::Defaults) -> u32 {
        self.fps.unwrap_or(d.fps)
    }

    /// Reads `path`; a missing default config.yaml means "all defaults".
    pub fn load(path: &Path, required: bool) -> t2v::Result<Settings> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => return Err(Error::Config { path: path.display().to_string(), msg: e.to_string() }),
        };
        if text.trim().is_empty() {
            return Ok(Settings::default());
        }
        serde_yaml::from_str(&text).map_err(|e| Error::Config {
            path: path.display().to_string(),
            msg: format!("{e}\n  (keys: prompt, negative_prompt, seed, randomize_seed, num_frames, num_inference_steps, model, height, width, guidance_scale, scheduler, fps, output, clip_skip, noise_dtype, flow_shift, scheduler_config, max_sequence_length, eta, guidance_scale_2, max_device_memory; text2video-zero: pipeline, video_length, t0, t1, motion_field_strength_x, motion_field_strength_y, frame_ids, chunk_size)"),
        })
    }

    /// Checks values that parse but cannot work, naming the key and the fix.
    pub fn validate(&self) -> t2v::Result<()> {
        let bad = |key: &str, msg: String| Err(Error::Other(format!("config key '{key}': {msg}")));
        if let Some(g) = self.max_device_memory.filter(|&g| t2v::gpu::gib_bytes(g).is_none()) {
            return bad("max_device_memory", format!("{g} is not a positive number of GiB"));
        }
        if self.num_frames == Some(0) {
            return bad("num_frames", "must be at least 1 (diffusers' default is 16; Zeroscope was trained on 24)".into());
        }
        if let Some(n) = self.num_inference_steps.filter(|&n| n == 0 || n > 1000) {
            return bad("num_inference_steps", format!("{n} is outside 1..=1000"));
        }
        for (key, v) in [("height", self.height), ("width", self.width)] {
            if let Some(v) = v {
                if v == 0 || v % 8 != 0 {
                    return bad(key, format!("{v} must be a positive multiple of 8 (try {})", (v.max(8) / 8) * 8));
                }
                if v > 4096 {
                    return bad(key, format!("{v} is larger than 4096 pixels"));
                }
            }
        }
        if let Some(g) = self.guidance_scale.filter(|g| !g.is_finite() || *g < 0.0) {
            return bad("guidance_scale", format!("{g} must be ≥ 0 (1 or less turns guidance off)"));
        }
        if let Some(f) = self.fps.filter(|&f| f == 0 || f > 240) {
            return bad("fps", format!("{f} is outside 1..=240"));
        }
        if let Some(s) = &self.scheduler {
            if let Err(e) = s.parse::<t2v::schedulers::SchedulerKind>() {
                return bad("scheduler", e);
            }
        }
        if let Some(f) = self.flow_shift.filter(|f| !f.is_finite() || *f <= 0.0) {
            return bad("flow_shift", format!("{f} must be a positive number (Wan: 3.0 for 480p, 5.0 for 720p)"));
        }
        // Names and types now, before anything loads (the values are checked again against the
        // model's own scheduler when it is built).
        if let Err(Error::Config { msg, .. }) = t2v::schedulers::SchedulerConfig::default().with_overrides(&self.scheduler_config) {
            return Err(Error::Other(format!("config key {msg}")));
        }
        if t2v::latents::NoiseDtype::parse(&self.noise_dtype).is_err() {
            return bad("noise_dtype", format!("'{}' is not one of {}", self.noise_dtype, t2v::latents::NoiseDtype::NAMES));
        }
        if self.prompt.trim().is_empty() {
            return bad("prompt", "is empty".into());
        }
        Ok(())
    }
}

/// A `scheduler` name (`t2v::schedulers::SchedulerKind`'s: ddim, dpm++, euler, pndm, unipc,
/// flow-euler, or a diffusers class name).
pub fn parse_scheduler(s: &str) -> Option<t2v::schedulers::SchedulerKind> {
    s.parse().ok()
}
