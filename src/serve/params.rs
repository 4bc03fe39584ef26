//! What a job asks for: the API's request (every field optional but the prompt), checked and
//! resolved into the stored [`JobParams`] (model from the server's list, size, seed drawn).
//! The browser only ever names a model from that list; paths are refused.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use t2v::pipelines::GenerateParams;
use t2v::schedulers::SchedulerKind;

/// Longest prompt accepted (CLIP reads 77 tokens; a longer text is a mistake or an attack).
pub const MAX_PROMPT_BYTES: usize = 2000;
pub const MAX_SIDE: usize = 2048;
pub const MAX_FRAMES: usize = 256;
pub const MAX_STEPS: usize = 500;

/// `POST /api/jobs` body. Unknown fields are errors (a typo must not silently run defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub prompt: String,
    #[serde(default)]
    pub negative_prompt: String,
    pub model: Option<String>,
    pub height: Option<usize>,
    pub width: Option<usize>,
    pub num_frames: Option<usize>,
    pub num_inference_steps: Option<usize>,
    pub guidance_scale: Option<f32>,
    /// Wan 2.2 A14B: the low-noise expert's guidance (absent: guidance_scale, as diffusers).
    pub guidance_scale_2: Option<f32>,
    /// ddim, dpm++ or euler; absent or null keeps the model's own.
    pub scheduler: Option<String>,
    /// Absent or null: a random seed, drawn now and stored.
    pub seed: Option<u64>,
    pub fps: Option<u32>,
}

/// A job's parameters as stored: everything resolved, so a rerun is exact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobParams {
    pub prompt: String,
    pub negative_prompt: String,
    pub model: String,
    pub height: usize,
    pub width: usize,
    pub num_frames: usize,
    pub num_inference_steps: usize,
    pub guidance_scale: f32,
    /// Two-expert models only (jobs stored before it existed read as None).
    #[serde(default)]
    pub guidance_scale_2: Option<f32>,
    pub scheduler: Option<String>,
    pub seed: u64,
    /// Whether the seed was drawn at random (it is kept either way).
    pub random_seed: bool,
    pub fps: u32,
}

impl JobParams {
    pub fn generate_params(&self) -> GenerateParams {
        GenerateParams {
            prompt: self.prompt.clone(),
            negative_prompt: self.negative_prompt.clone(),
            num_frames: self.num_frames,
            height: self.height,
            width: self.width,
            num_inference_steps: self.num_inference_steps,
            guidance_scale: self.guidance_scale,
            guidance_scale_2: self.guidance_scale_2,
            seed: self.seed,
            scheduler: self.scheduler.as_deref().and_then(|s| s.parse::<SchedulerKind>().ok()),
            ..GenerateParams::default()
        }
    }

    /// The memory-plan key: what changes allocations (not the prompt, seed or guidance value).
    pub fn plan_key(&self) -> String {
        format!(
            "{}|{}x{}|{}f|{}s|cfg{}|{:?}",
            self.model,
            self.width,
            self.height,
            self.num_frames,
            self.num_inference_steps,
            self.guidance_scale > 1.0,
            self.scheduler
        )
    }
}

/// A model the page offers.
#[derive(Debug, Clone, Serialize)]
pub struct ModelChoice {
    pub name: String,
    pub about: String,
    /// builtin (tiny-random), hub (a published model, downloaded on first use), folder (given
    /// to `t2v serve --model-dir`).
    pub source: &'static str,
    /// Already on disk (hub models: in the Hugging Face cache).
    pub available: bool,
    /// The model family's defaults (its recommended size, frames, steps, guidance, fps): what
    /// the page fills in and what a request without them gets.
    pub height: usize,
    pub width: usize,
    pub num_frames: usize,
    pub num_inference_steps: usize,
    pub guidance_scale: f32,
    pub fps: u32,
    /// Frame counts this model takes are `k·temporal + 1` (Wan: 4; 1 = any): a request is
    /// rounded down as diffusers does, and the stored job says what ran.
    pub temporal: usize,
    /// Height and width must be multiples of this (8; Wan 16).
    pub size_multiple: usize,
    /// Wan 2.2 A14B's two experts: the model takes a second guidance scale.
    pub two_experts: bool,
    #[serde(skip)]
    pub dir: Option<PathBuf>,
}

impl ModelChoice {
    /// A choice with the defaults of `family` at size `native` (None: the family's own).
    pub fn new(name: String, about: String, source: &'static str, available: bool, family: &t2v::pipelines::Family, native: Option<(usize, usize)>, dir: Option<PathBuf>) -> ModelChoice {
        let d = family.defaults(native);
        let (temporal, size_multiple) = family.frame_and_size_steps();
        ModelChoice {
            name,
            about,
            source,
            available,
            height: d.height,
            width: d.width,
            num_frames: d.num_frames,
            num_inference_steps: d.num_inference_steps,
            guidance_scale: d.guidance_scale,
            fps: d.fps,
            temporal,
            size_multiple,
            two_experts: matches!(family, t2v::pipelines::Family::Wan(c) if c.index.two_experts()),
            dir,
        }
    }
}

pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    // 32 bits, like `t2v generate`: easy to type back, numpy's RandomState stream.
    h.finish() & 0xffff_ffff
}

/// Checks a request against the model list and the limits; the message names the field.
pub fn resolve(req: JobRequest, models: &[ModelChoice]) -> Result<JobParams, String> {
    let prompt = req.prompt.trim().to_string();
    if prompt.is_empty() {
        return Err("prompt: is empty".into());
    }
    if req.prompt.len() > MAX_PROMPT_BYTES || req.negative_prompt.len() > MAX_PROMPT_BYTES {
        return Err(format!(
            "prompt: {} bytes is longer than {MAX_PROMPT_BYTES} (text encoders read 77 (CLIP) or 512 (UMT5) tokens)",
            req.prompt.len().max(req.negative_prompt.len())
        ));
    }
    let default = models.first().map(|m| m.name.clone()).unwrap_or_default();
    let name = req.model.unwrap_or(default);
    // Only names from the server's own list run (a cached hub repo is listed as owner/name).
    let found = models.iter().find(|m| m.name == name);
    if found.is_none() && (name.contains('/') || name.contains('\\') || name.starts_with('.') || name.starts_with('~')) {
        return Err(format!(
            "model: '{name}' looks like a path; the server only runs models from GET /api/models (start it with --model-dir DIR to add a folder)"
        ));
    }
    let Some(model) = found else {
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        return Err(format!("model: unknown model '{name}'; choose one of: {}", names.join(", ")));
    };
    let height = req.height.unwrap_or(model.height);
    let width = req.width.unwrap_or(model.width);
    let m = model.size_multiple.max(1);
    for (field, v) in [("height", height), ("width", width)] {
        if v == 0 || v % m != 0 || v > MAX_SIDE {
            return Err(format!("{field}: {v} must be a multiple of {m} between {m} and {MAX_SIDE} for {name}"));
        }
    }
    let mut num_frames = req.num_frames.unwrap_or(model.num_frames);
    if num_frames == 0 || num_frames > MAX_FRAMES {
        return Err(format!("num_frames: {num_frames} is outside 1..={MAX_FRAMES}"));
    }
    // diffusers' own rounding (WanPipeline: 4k+1), so the stored job is what runs.
    let t = model.temporal.max(1);
    num_frames = (num_frames - 1) / t * t + 1;
    let steps = req.num_inference_steps.unwrap_or(model.num_inference_steps);
    if steps == 0 || steps > MAX_STEPS {
        return Err(format!("num_inference_steps: {steps} is outside 1..={MAX_STEPS}"));
    }
    let guidance_scale = req.guidance_scale.unwrap_or(model.guidance_scale);
    if !guidance_scale.is_finite() || !(0.0..=50.0).contains(&guidance_scale) {
        return Err(format!("guidance_scale: {guidance_scale} is outside 0..=50 (1 or less turns guidance off)"));
    }
    let guidance_scale_2 = match req.guidance_scale_2 {
        Some(_) if !model.two_experts => {
            return Err(format!("guidance_scale_2: {name} has one network; only two-expert Wan 2.2 models (A14B) take a second guidance scale"));
        }
        Some(g) if !g.is_finite() || !(0.0..=50.0).contains(&g) => return Err(format!("guidance_scale_2: {g} is outside 0..=50")),
        g => g,
    };
    let scheduler = match req.scheduler.as_deref().map(str::trim) {
        None | Some("") | Some("default") => None,
        Some(s) => Some(s.parse::<SchedulerKind>().map_err(|e| format!("scheduler: {e}"))?.name().to_string()),
    };
    let fps = req.fps.unwrap_or(model.fps);
    if fps == 0 || fps > 50 {
        return Err(format!("fps: {fps} is outside 1..=50"));
    }
    let (seed, random_seed_drawn) = match req.seed {
        Some(s) => (s, false),
        None => (random_seed(), true),
    };
    Ok(JobParams {
        prompt,
        negative_prompt: req.negative_prompt,
        model: name,
        height,
        width,
        num_frames,
        num_inference_steps: steps,
        guidance_scale,
        guidance_scale_2,
        scheduler,
        seed,
        random_seed: random_seed_drawn,
        fps,
    })
}
