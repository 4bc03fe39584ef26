//! diffusers' `TextToVideoSDPipeline.__call__`, step for step: classifier-free guidance with
//! [negative, positive] prompt embeddings, torch-identical initial noise, the scheduler loop on
//! the device, and a frame-by-frame VAE decode.

use super::{Frames, Progress};
use crate::error::{Error, Result};
use crate::latents::NoiseDtype;
use crate::ops::layout::channels_first_to_frames;
use crate::schedulers::{self, Scheduler, SchedulerConfig, SchedulerKind};
use crate::tensor::Tensor;
use super::prompt::ClipPrompt;
use crate::models::unet::UNet3DConditionModel;
use crate::models::vae::AutoencoderKL;
use crate::weights::Placement;
use crate::Gpu;
use std::path::{Path, PathBuf};

use crate::weights::Weights;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct GenerateParams {
    pub prompt: String,
    pub negative_prompt: String,
    pub num_frames: usize,
    pub height: usize,
    pub width: usize,
    pub num_inference_steps: usize,
    pub guidance_scale: f32,
    pub seed: u64,
    /// None keeps the scheduler the model ships with.
    pub scheduler: Option<SchedulerKind>,
    pub clip_skip: usize,
    /// The dtype of the initial noise (see [`NoiseDtype`]).
    pub noise_dtype: NoiseDtype,
    /// Flow-matching models (Wan): the schedule's shift instead of the scheduler config's
    /// `flow_shift` (3.0 for 480p, 5.0 for 720p per the Wan card). Ignored by the others.
    pub flow_shift: Option<f64>,
    /// Scheduler options laid over the folder's scheduler_config.json, as diffusers'
    /// `Scheduler.from_config(config, **overrides)` (see [`SchedulerConfig::with_overrides`]).
    pub scheduler_config: serde_json::Map<String, serde_json::Value>,
    /// Wan: the prompt's token length (`WanPipeline(max_sequence_length=…)`, None: 512): UMT5
    /// reads that many positions and the transformer attends to that many rows.
    pub max_sequence_length: Option<usize>,
    /// η of the DDIM paper (`TextToVideoSDPipeline(eta=…)`, default 0): DDIM then adds fresh
    /// noise from the seed's generator each step; other schedulers ignore it, as in diffusers.
    pub eta: f32,
    /// Wan 2.2 A14B: the guidance scale of the low-noise expert (`transformer_2`, diffusers'
    /// `guidance_scale_2`; None: `guidance_scale`, as diffusers). Only for two-expert folders.
    pub guidance_scale_2: Option<f32>,
}

impl Default for GenerateParams {
    /// diffusers' `TextToVideoSDPipeline.__call__` defaults (size 256², the ms-1.7b default).
    fn default() -> Self {
        GenerateParams {
            prompt: String::new(),
            negative_prompt: String::new(),
            num_frames: 16,
            height: 256,
            width: 256,
            num_inference_steps: 50,
            guidance_scale: 9.0,
            seed: 0,
            scheduler: None,
            clip_skip: 0,
            noise_dtype: NoiseDtype::Float32,
            flow_shift: None,
            scheduler_config: Default::default(),
            max_sequence_length: None,
            eta: 0.0,
            guidance_scale_2: None,
        }
    }
}

pub struct TextToVideo {
    pub gpu: Arc<Gpu>,
    pub dir: PathBuf,
    /// Tokenizer and text encoder.
    pub prompt: ClipPrompt,
    pub scheduler_config: SchedulerConfig,
    pub unet: UNet3DConditionModel,
    pub vae: AutoencoderKL,
    /// The memory plan's buffer schedule, installed at the start of every [`generate`](Self::generate).
    pub schedule: Option<crate::gpu::schedule::Schedule>,
}

impl TextToVideo {
    /// Loads a diffusers pipeline folder (model_index.json, tokenizer/, text_encoder/, unet/,
    /// vae/, scheduler/).
    pub fn from_dir(gpu: &Arc<Gpu>, dir: &Path, placement: Placement) -> Result<TextToVideo> {
        super::require_components(dir, "text-to-video")?;
        Ok(TextToVideo {
            gpu: gpu.clone(),
            dir: dir.to_path_buf(),
            prompt: ClipPrompt::from_dir(gpu, dir, placement)?,
            scheduler_config: SchedulerConfig::from_file(&dir.join("scheduler/scheduler_config.json"))?,
            unet: UNet3DConditionModel::from_dir(gpu, &dir.join("unet"), placement)?,
            vae: AutoencoderKL::from_dir(gpu, &dir.join("vae"), placement)?,
            schedule: None,
        })
    }

    /// The pipeline with synthetic weights for the given configs — on a planning device this
    /// allocates nothing real, which is how [`super::plan`] measures a run before it happens.
    pub fn synthetic(gpu: &Arc<Gpu>, configs: &super::ModelConfigs, placement: Placement) -> Result<TextToVideo> {
        Ok(TextToVideo {
            gpu: gpu.clone(),
            dir: PathBuf::new(),
            prompt: ClipPrompt::synthetic(gpu, &configs.text_encoder, placement)?,
            scheduler_config: configs.scheduler.clone(),
            unet: UNet3DConditionModel::load(configs.unet.clone(), Weights::synthetic(gpu, "unet", placement))?,
            vae: AutoencoderKL::load(configs.vae.clone(), &Weights::synthetic(gpu, "vae", placement))?,
            schedule: None,
        })
    }

    pub fn scheduler(&self, kind: Option<SchedulerKind>) -> Result<Box<dyn Scheduler>> {
        schedulers::from_config(&self.scheduler_config, kind)
    }

    /// The run's scheduler: `p.scheduler` (or the folder's) with `p.scheduler_config`'s options
    /// and the pipeline's `eta` (which, as in diffusers, only DDIM takes).
    pub fn scheduler_of(&self, p: &GenerateParams) -> Result<Box<dyn Scheduler>> {
        let mut s = schedulers::from_config(&self.scheduler_config.with_overrides(&p.scheduler_config)?, p.scheduler)?;
        if p.eta != 0.0 {
            s.set_eta(p.eta);
        }
        Ok(s)
    }

    /// (1 or 2, 77, D) prompt embeddings: [negative, positive] when guidance is on.
    pub fn encode_prompt(&self, p: &GenerateParams, progress: &mut dyn Progress) -> Result<Tensor> {
        self.prompt.encode(&p.prompt, &p.negative_prompt, p.guidance_scale > 1.0, p.clip_skip, progress)
    }

    /// Pixels per latent (diffusers' `vae_scale_factor`, from the VAE's config).
    pub fn vae_scale_factor(&self) -> usize {
        self.vae.config.scale_factor()
    }

    /// Latent shape (1, C, F, H / s, W / s) with s the VAE scale factor (floor division, as
    /// diffusers' `prepare_latents`).
    pub fn latent_shape(&self, p: &GenerateParams) -> [usize; 5] {
        let s = self.vae_scale_factor();
        [1, self.unet.config.in_channels, p.num_frames, p.height / s, p.width / s]
    }

    /// Initial latents: `torch.randn(shape, generator=torch.Generator().manual_seed(seed),
    /// dtype=p.noise_dtype)` on the CPU, bit for bit, times the scheduler's `init_noise_sigma`.
    /// The dtype is the diffusers pipeline's `torch_dtype` being reproduced (float32 by
    /// default, since t2v computes in f32 whatever its weights are stored in).
    pub fn initial_latents(&self, p: &GenerateParams, init_noise_sigma: f32) -> Result<Tensor> {
        let shape = self.latent_shape(p);
        let mut noise = p.noise_dtype.randn(p.seed, shape.iter().product());
        if init_noise_sigma != 1.0 {
            noise.iter_mut().for_each(|v| *v *= init_noise_sigma);
        }
        Tensor::from_f32(&self.gpu, &shape, &noise)
    }

    pub fn check(&self, p: &GenerateParams) -> Result<()> {
        let bad = |field: &str, msg: String| Err(Error::Other(format!("{field}: {msg}")));
        if !(p.eta.is_finite() && p.eta >= 0.0) {
            return bad("eta", format!("{} must be ≥ 0 (0 is deterministic DDIM, 1 is DDPM-like)", p.eta));
        }
        if p.max_sequence_length.is_some() {
            return bad("max_sequence_length", "applies to Wan's T5 prompts; CLIP prompts here are always 77 tokens (TextToVideoSDPipeline has no such argument)".into());
        }
        if p.guidance_scale_2.is_some() {
            return bad("guidance_scale_2", "is the low-noise expert's guidance of two-expert Wan 2.2 folders; this pipeline has one network".into());
        }
        // diffusers' check_inputs: multiples of 8 whatever the VAE (its own hard-coded rule).
        let s = self.vae_scale_factor();
        if p.height == 0 || p.width == 0 || !p.height.is_multiple_of(8) || !p.width.is_multiple_of(8) {
            return bad("height/width", format!("{}×{} must be non-zero multiples of 8", p.width, p.height));
        }
        if p.height < s || p.width < s {
            return bad("height/width", format!("{}×{} is smaller than one latent ({s}×{s} pixels for this VAE)", p.width, p.height));
        }
        if p.num_frames == 0 {
            return bad("num_frames", "must be at least 1".into());
        }
        if p.num_inference_steps == 0 {
            return bad("num_inference_steps", "must be at least 1".into());
        }
        Ok(())
    }

    /// Runs the denoising loop and returns the final latents (1, 4, F, h, w).
    pub fn denoise(&self, p: &GenerateParams, embeds: &Tensor, progress: &mut dyn Progress) -> Result<Tensor> {
        self.denoise_observed(p, embeds, progress, &mut |_, _| Ok(()))
    }

    /// [`denoise`](Self::denoise), handing the latents after every step to `observe` (tests
    /// compare them with diffusers'; reading them back is the observer's choice, not the loop's).
    pub fn denoise_observed(
        &self,
        p: &GenerateParams,
        embeds: &Tensor,
        progress: &mut dyn Progress,
        observe: &mut dyn FnMut(usize, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        self.denoise_resumable(p, embeds, progress, None, &mut |i, latents, _| observe(i, latents))
    }

    // ---- resume/checkpoint hook (t2v serve) -------------------------------------------------
    /// The denoising loop, started from `resume` (a checkpoint: the latents after some steps and
    /// the scheduler's multistep history) or from the seed's noise when None. `observe` gets the
    /// step index, the latents after it and the scheduler, whose [`Scheduler::saved_state`] is
    /// what a checkpoint keeps besides the latents; returning an error stops the loop (how a
    /// job is cancelled between steps). A resumed loop computes exactly what the uninterrupted
    /// one would have from that step on.
    pub fn denoise_resumable(
        &self,
        p: &GenerateParams,
        embeds: &Tensor,
        progress: &mut dyn Progress,
        resume: Option<super::Checkpoint>,
        observe: &mut dyn FnMut(usize, &Tensor, &dyn Scheduler) -> Result<()>,
    ) -> Result<Tensor> {
        let mut sched = self.scheduler_of(p)?;
        let (first, latents) = super::denoise::start(&self.gpu, sched.as_mut(), p.num_inference_steps, &self.latent_shape(p), resume, |s| {
            self.initial_latents(p, s.init_noise_sigma())
        })?;
        // Stochastic schedulers (dpm++-sde, euler-a) continue the seed's stream after the
        // initial latents, as diffusers' step(..., generator=generator) does. A loop resumed
        // part-way has no stream to continue (they are not resumable) and its step refuses.
        if first == 0 && sched.is_stochastic() {
            let drawn = self.latent_shape(p).iter().product();
            let gen = schedulers::generator_after_latents(p.seed, drawn, p.noise_dtype);
            // TextToVideoSDPipeline steps on (F, C, h, w): its noise comes frames first.
            sched.set_generator(schedulers::StepNoise::new(gen, p.noise_dtype).frames_first());
        }
        self.denoise_from(p, embeds, sched.as_mut(), latents, first, progress, observe)
    }
    // ---- end of resume/checkpoint hook ----------------------------------------------------------

    /// The denoising loop over `sched`'s timesteps from index `first` on, starting at `latents`
    /// (1, 4, F, h, w): text-to-video starts at 0 from noise, video-to-video at the strength's
    /// cut from the noised video latents (diffusers' `set_begin_index`), a resumed job at its
    /// checkpoint's next step. `observe` gets the index into the whole schedule.
    #[allow(clippy::too_many_arguments)]
    pub fn denoise_from(
        &self,
        p: &GenerateParams,
        embeds: &Tensor,
        sched: &mut dyn Scheduler,
        latents: Tensor,
        first: usize,
        progress: &mut dyn Progress,
        observe: &mut dyn FnMut(usize, &Tensor, &dyn Scheduler) -> Result<()>,
    ) -> Result<Tensor> {
        let n = sched.timesteps().len();
        // Everything a step needs besides the latents is prepared here, so the loop body
        // neither uploads nor repeats anything.
        let den = UNet3DSteps {
            unet: &self.unet,
            first,
            ctxs: (0..embeds.dim(0)).map(|r| self.unet.frame_context(&embeds.narrow0(r, 1)?, p.num_frames)).collect::<Result<Vec<_>>>()?,
            tembs: sched.timesteps().get(first..).unwrap_or_default().iter().map(|&t| self.unet.frame_time_embedding(t, 1, p.num_frames)).collect::<Result<Vec<_>>>()?,
            guidance: super::denoise::guidance(p.guidance_scale, embeds.dim(0)),
        };
        progress.stage("denoising", n.saturating_sub(first));
        super::denoise::denoise_loop(&den, sched, latents, first..n, progress, observe)
    }

    /// Latents (1, 4, F, h, w) → frames, one frame through the VAE at a time so the decoder's
    /// full-resolution activations exist for a single frame only.
    pub fn decode(&self, latents: &Tensor, progress: &mut dyn Progress) -> Result<Frames> {
        super::frames::decode_per_frame(&self.vae, &channels_first_to_frames(latents)?, progress)
    }

    /// Runs every later [`generate`](Self::generate) from `plan`'s buffers (made now): a device
    /// that cannot give them fails here, and a run allocates nothing. The plan must be for the
    /// same models and [`GenerateParams`] shapes; a run that differs falls back to the pool.
    pub fn use_plan(&mut self, plan: &super::MemoryPlan) -> Result<()> {
        // Blocks the plan streams give their device buffers back before the schedule's are made.
        self.gpu.clear_schedule();
        self.unet.set_streamed(plan.streamed())?;
        self.gpu.trim();
        self.gpu.install_schedule(&plan.schedule)?;
        self.schedule = Some(plan.schedule.clone());
        Ok(())
    }

    pub fn generate(&self, p: &GenerateParams, progress: &mut dyn Progress) -> Result<Frames> {
        super::VideoPipeline::generate(self, p, progress)
    }
}

/// The 3-D UNet as the denoising loop sees it: text contexts per prompt and time embeddings
/// per step, made once per video.
struct UNet3DSteps<'a> {
    unet: &'a UNet3DConditionModel,
    /// Index of the first step `tembs` holds.
    first: usize,
    tembs: Vec<Tensor>,
    ctxs: Vec<Tensor>,
    guidance: Option<f32>,
}

impl super::Denoiser for UNet3DSteps<'_> {
    fn predict(&self, input: &Tensor, step: usize, row: usize) -> Result<Tensor> {
        self.unet.forward_prepared(input, &self.tembs[step - self.first], &self.ctxs[row])
    }
    fn guidance(&self, _step: usize) -> Option<f32> {
        self.guidance
    }
}
