//! One shape for every text-to-video pipeline: what `t2v generate`, `compare`, `serve` and
//! `bench` need of a pipeline ([`VideoPipeline`]: diffusers' `__call__` in stages) and of a
//! model family before anything is loaded ([`Family`]: which pipeline a folder is, its
//! defaults, diffusers' own adjustments of the settings, its memory plan).
//!
//! Text2Video-Zero has settings of its own (t0/t1, motion field, chunks) and its own entry in
//! the CLI; it shares the denoising loop, prompt encoding and per-frame decode.

use super::{Checkpoint, Frames, GenerateParams, MemoryPlan, ModelConfigs, Progress, TextToVideo};
use crate::error::{Error, Result};
use crate::schedulers::Scheduler;
use crate::tensor::Tensor;
use crate::weights::Placement;
use crate::Gpu;
use std::path::Path;
use std::sync::Arc;

/// A loaded pipeline, in the stages the CLI and the web app drive.
pub trait VideoPipeline {
    fn gpu(&self) -> &Arc<Gpu>;
    /// What diffusers raises for these settings, as an error naming the key.
    fn check(&self, p: &GenerateParams) -> Result<()>;
    /// The scheduler a run with these settings uses (the model's own, or `p.scheduler`).
    fn scheduler_for(&self, p: &GenerateParams) -> Result<Box<dyn Scheduler>>;
    /// Prompt embeddings: [negative, positive] rows when guidance is on.
    fn encode_prompt(&self, p: &GenerateParams, progress: &mut dyn Progress) -> Result<Tensor>;
    /// The denoising loop from the seed's noise or from a checkpoint (see
    /// [`super::denoise::start`]); `observe` sees every step's latents and the scheduler.
    fn denoise_resumable(
        &self,
        p: &GenerateParams,
        embeds: &Tensor,
        progress: &mut dyn Progress,
        resume: Option<Checkpoint>,
        observe: &mut dyn FnMut(usize, &Tensor, &dyn Scheduler) -> Result<()>,
    ) -> Result<Tensor>;
    /// Final latents → frames.
    fn decode(&self, latents: &Tensor, progress: &mut dyn Progress) -> Result<Frames>;
    /// Serve every later run from `plan`'s buffers (made now).
    fn use_plan(&mut self, plan: &MemoryPlan) -> Result<()>;
    /// The plan installed by [`use_plan`](Self::use_plan).
    fn planned(&self) -> Option<&crate::gpu::schedule::Schedule>;

    /// prompt → video, as the diffusers pipeline's `__call__`.
    fn generate(&self, p: &GenerateParams, progress: &mut dyn Progress) -> Result<Frames> {
        self.check(p)?;
        if let Some(s) = self.planned() {
            // The same schedule again keeps its buffers and starts from its first allocation.
            self.gpu().install_schedule(s)?;
        }
        progress.stage("encoding prompt", 1);
        let embeds = self.encode_prompt(p, progress)?;
        progress.tick();
        let latents = self.denoise_resumable(p, &embeds, progress, None, &mut |_, _, _| Ok(()))?;
        drop(embeds);
        self.decode(&latents, progress)
    }
}

/// Settings a family's pipeline uses when the user gives none (its `__call__` defaults, or the
/// model card's where t2v follows the card).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults {
    pub height: usize,
    pub width: usize,
    pub num_frames: usize,
    pub num_inference_steps: usize,
    pub guidance_scale: f32,
    pub fps: u32,
}

impl Defaults {
    /// ModelScope / Zeroscope (and Text2Video-Zero's shared keys): Zeroscope's card, 24 frames
    /// at 10 fps, with 25 steps and diffusers' guidance 9 (t2v's config.yaml before these keys
    /// became per model). Sizes are per model.
    pub const UNET: Defaults = Defaults { height: 256, width: 256, num_frames: 24, num_inference_steps: 25, guidance_scale: 9.0, fps: 10 };
}

/// A model family t2v runs through the shared CLI, with the configs a plan needs (no weights).
#[derive(Clone)]
pub enum Family {
    /// `TextToVideoSDPipeline`: ModelScope, Zeroscope (UNet3D, CLIP, AutoencoderKL).
    TextToVideo(ModelConfigs),
    /// `WanPipeline`: Wan 2.1 (WanTransformer3DModel, UMT5, AutoencoderKLWan, UniPC).
    Wan(Box<super::WanConfigs>),
}

/// Which diffusers pipeline a folder holds, from `model_index.json`'s `_class_name` (or, for
/// folders without one, from its components).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineClass {
    TextToVideo,
    TextToVideoZero,
    Wan,
}

impl PipelineClass {
    /// `--pipeline` names.
    pub fn parse(name: &str) -> Result<PipelineClass> {
        match name.trim().to_ascii_lowercase().as_str() {
            "text-to-video" | "text2video" | "texttovideosd" | "texttovideosdpipeline" => Ok(PipelineClass::TextToVideo),
            "text2video-zero" | "text-to-video-zero" | "t2v-zero" | "texttovideozero" | "texttovideozeropipeline" => {
                Ok(PipelineClass::TextToVideoZero)
            }
            "wan" | "wanpipeline" => Ok(PipelineClass::Wan),
            _ => Err(Error::Other(format!("config key 'pipeline': '{name}' is not one of text-to-video, text2video-zero, wan"))),
        }
    }

    pub fn of_folder(dir: &Path) -> Result<PipelineClass> {
        if !dir.is_dir() {
            return Err(Error::Other(format!("{}: no such model folder (a diffusers folder, or a model name from `t2v generate --help`)", dir.display())));
        }
        let index = dir.join("model_index.json");
        let class = match std::fs::read_to_string(&index) {
            Ok(text) => {
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| Error::Config { path: index.display().to_string(), msg: format!("not JSON: {e}") })?;
                v["_class_name"].as_str().map(str::to_string)
            }
            Err(_) => None,
        };
        Ok(match class.as_deref() {
            Some("WanPipeline") => PipelineClass::Wan,
            Some("TextToVideoZeroPipeline" | "StableDiffusionPipeline") => PipelineClass::TextToVideoZero,
            Some("TextToVideoSDPipeline" | "VideoToVideoSDPipeline") => PipelineClass::TextToVideo,
            // Older or hand-made folders: the components say it.
            _ if dir.join("transformer").is_dir() => PipelineClass::Wan,
            _ => PipelineClass::TextToVideo,
        })
    }
}

impl Family {
    /// The family of a diffusers folder (`pipeline` overrides what `model_index.json` says).
    pub fn of_folder(dir: &Path, pipeline: Option<PipelineClass>) -> Result<Family> {
        match pipeline.map_or_else(|| PipelineClass::of_folder(dir), Ok)? {
            PipelineClass::TextToVideo => {
                super::require_components(dir, "text-to-video (ModelScope/Zeroscope)")?;
                Ok(Family::TextToVideo(super::folder_configs(dir)?))
            }
            PipelineClass::TextToVideoZero => Err(Error::Other(format!(
                "{}: a Stable Diffusion folder runs with --pipeline text2video-zero (t2v generate)",
                dir.display()
            ))),
            PipelineClass::Wan => Ok(Family::Wan(Box::new(super::wan_folder_configs(dir)?))),
        }
    }

    /// A named model's family from the configs shipped in the binary (plans need no download).
    pub fn builtin(model: &crate::weights::hub::KnownModel) -> Result<Family> {
        use crate::weights::hub::KnownFamily;
        match model.family {
            KnownFamily::UNet => Ok(Family::TextToVideo(super::modelscope_configs()?)),
            KnownFamily::Wan(name) => Ok(Family::Wan(Box::new(super::wan_builtin_configs(name)?))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Family::TextToVideo(_) => "text-to-video",
            Family::Wan(_) => "wan",
        }
    }

    /// The settings used when none are given: diffusers' `__call__` defaults with the size
    /// `native` (a named model's recommended size, else the folder's `sample_size` × VAE factor).
    pub fn defaults(&self, native: Option<(usize, usize)>) -> Defaults {
        match self {
            Family::TextToVideo(c) => {
                let s = c.unet.sample_size.unwrap_or(32) * c.vae.scale_factor();
                let (height, width) = native.unwrap_or((s, s));
                Defaults { height, width, ..Defaults::UNET }
            }
            Family::Wan(c) => {
                // TI2V-5B (the Wan 2.2 VAE) from its card; the others diffusers' __call__ defaults.
                let d = if c.vae.is_residual { super::wan::WAN22_TI2V_DEFAULTS } else { super::wan::WAN_DEFAULTS };
                let (height, width) = native.unwrap_or((d.height, d.width));
                Defaults { height, width, ..d }
            }
        }
    }

    /// (frame step, size step): frame counts the pipeline takes are `k·step + 1` (1: any), and
    /// height and width must be multiples of the size step.
    pub fn frame_and_size_steps(&self) -> (usize, usize) {
        match self {
            Family::TextToVideo(_) => (1, 8),
            Family::Wan(c) => (c.vae.temporal_scale(), 16.max(c.vae.spatial_scale() * c.transformer.patch_size[1])),
        }
    }

    /// diffusers' silent adjustments of the settings (with the warnings it prints).
    pub fn adjust(&self, p: &mut GenerateParams) -> Vec<String> {
        match self {
            Family::TextToVideo(_) => Vec::new(),
            Family::Wan(c) => super::wan::adjust(&c.vae, p),
        }
    }

    /// The memory plan of one generation. `planner` must be a planning device.
    ///
    /// When the weights and the peak activations exceed the device budget
    /// (`planner.memory_capacity`), blocks stream from host memory: see
    /// [`super::plan::within_budget`].
    pub fn plan(&self, planner: &Arc<Gpu>, p: &GenerateParams, placement: Placement) -> Result<MemoryPlan> {
        let units = match self {
            Family::TextToVideo(c) => {
                let u = TextToVideo::synthetic(planner, c, placement)?.unet.units();
                planner.trim();
                u
            }
            Family::Wan(c) => super::wan::wan_units(planner, c, placement)?,
        };
        let bandwidth = || planner.upload_bandwidth();
        let cap = planner.memory_capacity;
        let plan = super::plan::within_budget(&units, cap, p.num_inference_steps, &bandwidth, &mut |streamed| match self {
            Family::TextToVideo(c) => super::plan::plan_streaming(planner, c, p, placement, streamed),
            Family::Wan(c) => super::wan::plan_wan_streaming(planner, c, p, placement, streamed, None),
        })?;
        // Wan's decode holds a whole frame's causal caches; where that is what does not fit,
        // diffusers' tiled decode (a tile's caches) is the one that does.
        match self {
            Family::Wan(c) if cap.is_some_and(|cap| plan.peak > cap) => {
                let tiling = Some(crate::models::wan_vae::WanVaeTiling::default());
                let tiled = super::plan::within_budget(&units, cap, p.num_inference_steps, &bandwidth, &mut |streamed| {
                    super::wan::plan_wan_streaming(planner, c, p, placement, streamed, tiling)
                })?;
                Ok(if tiled.vae_tiling.is_some() && tiled.peak < plan.peak { tiled } else { plan })
            }
            _ => Ok(plan),
        }
    }

    /// Loads the pipeline from `dir`.
    pub fn load(&self, gpu: &Arc<Gpu>, dir: &Path, placement: Placement) -> Result<Box<dyn VideoPipeline + Send>> {
        match self {
            Family::TextToVideo(_) => Ok(Box::new(TextToVideo::from_dir(gpu, dir, placement)?)),
            Family::Wan(_) => Ok(Box::new(super::WanPipeline::from_dir(gpu, dir, placement)?)),
        }
    }
}

impl VideoPipeline for TextToVideo {
    fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }
    fn check(&self, p: &GenerateParams) -> Result<()> {
        TextToVideo::check(self, p)
    }
    fn scheduler_for(&self, p: &GenerateParams) -> Result<Box<dyn Scheduler>> {
        self.scheduler_of(p)
    }
    fn encode_prompt(&self, p: &GenerateParams, progress: &mut dyn Progress) -> Result<Tensor> {
        TextToVideo::encode_prompt(self, p, progress)
    }
    fn denoise_resumable(
        &self,
        p: &GenerateParams,
        embeds: &Tensor,
        progress: &mut dyn Progress,
        resume: Option<Checkpoint>,
        observe: &mut dyn FnMut(usize, &Tensor, &dyn Scheduler) -> Result<()>,
    ) -> Result<Tensor> {
        TextToVideo::denoise_resumable(self, p, embeds, progress, resume, observe)
    }
    fn decode(&self, latents: &Tensor, progress: &mut dyn Progress) -> Result<Frames> {
        TextToVideo::decode(self, latents, progress)
    }
    fn use_plan(&mut self, plan: &MemoryPlan) -> Result<()> {
        TextToVideo::use_plan(self, plan)
    }
    fn planned(&self) -> Option<&crate::gpu::schedule::Schedule> {
        self.schedule.as_ref()
    }
}
