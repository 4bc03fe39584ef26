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
    pub num_frames: usize,
    pub num_inference_steps: usize,
    /// A known model name, `tiny-random`, or a local diffusers folder.
    pub model: String,
    /// None: the model's recommended size.
    pub height: Option<usize>,
    pub width: Option<usize>,
    pub guidance_scale: f32,
    /// ddim, dpm++ or euler; None keeps the model's own scheduler.
    pub scheduler: Option<String>,
    pub fps: u32,
    /// .mp4, .gif, or a folder for PNG frames.
    pub output: PathBuf,
    pub clip_skip: usize,
    /// dtype of the initial noise: float32 (default), float16 or bfloat16 — the `torch_dtype`
    /// of the diffusers pipeline whose seeds to reproduce.
    pub noise_dtype: String,
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
            num_frames: 24,
            num_inference_steps: 25,
            model: "zeroscope-576w".into(),
            height: None,
            width: None,
            guidance_scale: 9.0,
            scheduler: None,
            fps: 10,
            output: PathBuf::from("video.mp4"),
            clip_skip: 0,
            noise_dtype: "float32".into(),
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
            msg: format!("{e}\n  (keys: prompt, negative_prompt, seed, randomize_seed, num_frames, num_inference_steps, model, height, width, guidance_scale, scheduler, fps, output, clip_skip, noise_dtype; text2video-zero: pipeline, video_length, t0, t1, motion_field_strength_x, motion_field_strength_y, frame_ids, chunk_size)"),
        })
    }

    /// Checks values that parse but cannot work, naming the key and the fix.
    pub fn validate(&self) -> t2v::Result<()> {
        let bad = |key: &str, msg: String| Err(Error::Other(format!("config key '{key}': {msg}")));
        if self.num_frames == 0 {
            return bad("num_frames", "must be at least 1 (diffusers' default is 16; Zeroscope was trained on 24)".into());
        }
        if self.num_inference_steps == 0 || self.num_inference_steps > 1000 {
            return bad("num_inference_steps", format!("{} is outside 1..=1000", self.num_inference_steps));
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
        if !self.guidance_scale.is_finite() || self.guidance_scale < 0.0 {
            return bad("guidance_scale", format!("{} must be ≥ 0 (1 or less turns guidance off)", self.guidance_scale));
        }
        if self.fps == 0 || self.fps > 240 {
            return bad("fps", format!("{} is outside 1..=240", self.fps));
        }
        if let Some(s) = &self.scheduler {
            if parse_scheduler(s).is_none() {
                return bad("scheduler", format!("'{s}' is not one of ddim, dpm++, euler, pndm"));
            }
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

pub fn parse_scheduler(s: &str) -> Option<t2v::schedulers::SchedulerKind> {
    use t2v::schedulers::SchedulerKind::*;
    match s.to_lowercase().as_str() {
        "ddim" => Some(Ddim),
        "dpm++" | "dpm" | "dpmsolver" | "dpm-solver++" | "dpmsolvermultistep" => Some(DpmSolverMultistep),
        "euler" => Some(EulerDiscrete),
        "pndm" | "plms" => Some(Pndm),
        _ => None,
    }
}
