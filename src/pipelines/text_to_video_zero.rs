//! diffusers' `TextToVideoZeroPipeline.__call__` (Text2Video-Zero, Khachatryan et al., arXiv
//! 2303.13439): training-free video from a Stable Diffusion 1.x text-to-image UNet.
//!
//! 1. Every self-attention of the UNet attends to frame 0 (cross-frame attention; diffusers'
//!    `CrossFrameAttnProcessor2_0(batch_size=2)`); cross-attention to the text is unchanged.
//! 2. One latent is denoised over `timesteps[:-t1-1]` (→ x at T′ = `timesteps[-t1-1]`), the
//!    scheduler is copied, and denoising goes on over `timesteps[-t1-1:-t0-1]` (→ x at T).
//! 3. That latent is repeated for frames 1…F−1 and each copy translated by (λx, λy)·frame_id
//!    (`grid_sample` nearest with reflection, [`crate::ops::warp`]), then diffused forward
//!    from T back to T′ with fresh noise drawn from the same generator.
//! 4. Frame 0's T′ latent and the warped ones are denoised together over `timesteps[-t1-1:]`
//!    by the scheduler copy, and decoded frame by frame. There is no safety checker.

use super::{GenerateParams, Progress};
use crate::error::{Error, Result};
use crate::latents::randn::TorchGenerator;
use crate::latents::NoiseDtype;
use super::denoise::denoise_loop;
use crate::ops::elementwise::lincomb2;
use crate::ops::layout::{cat, repeat_interleave};
use crate::ops::warp::warp_latents;
use crate::schedulers::{self, Scheduler, SchedulerConfig, StepNoise};
use crate::tensor::Tensor;
use super::prompt::ClipPrompt;
use crate::models::text_encoder::ClipTextConfig;
use crate::models::unet_2d::{UNet2DConditionModel, UNet2DConfig};
use crate::models::vae::{AutoencoderKL, AutoencoderKLConfig};
use crate::weights::{Placement, Weights};
use crate::Gpu;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a Text2Video-Zero run takes: the shared settings (`common.num_frames` is diffusers'
/// `video_length`) and the algorithm's own.
#[derive(Debug, Clone)]
pub struct ZeroParams {
    pub common: GenerateParams,
    /// Step counts from the end of the schedule: T = `timesteps[-t0-1]`, T′ = `timesteps[-t1-1]`.
    pub t0: usize,
    pub t1: usize,
    /// Global translation per frame, in pixels of diffusers' 512×512 motion field.
    pub motion_field_strength_x: f64,
    pub motion_field_strength_y: f64,
    /// Frame indices the motion is computed from (chunked long videos); None = 0..F.
    pub frame_ids: Option<Vec<usize>>,
}

impl Default for ZeroParams {
    /// `TextToVideoZeroPipeline.__call__`'s defaults (512², the SD 1.5 size).
    fn default() -> Self {
        ZeroParams {
            common: GenerateParams {
                num_frames: 8,
                height: 512,
                width: 512,
                num_inference_steps: 50,
                guidance_scale: 7.5,
                ..GenerateParams::default()
            },
            t0: 44,
            t1: 47,
            motion_field_strength_x: 12.0,
            motion_field_strength_y: 12.0,
            frame_ids: None,
        }
    }
}

impl ZeroParams {
    pub fn frame_ids(&self) -> Vec<usize> {
        self.frame_ids.clone().unwrap_or_else(|| (0..self.common.num_frames).collect())
    }
}

/// The configs a Text2Video-Zero plan needs (no weights).
#[derive(Clone)]
pub struct ZeroConfigs {
    pub unet: UNet2DConfig,
    pub vae: AutoencoderKLConfig,
    pub text_encoder: ClipTextConfig,
    pub scheduler: SchedulerConfig,
}

/// Stable Diffusion 1.5's architecture (configs/stable-diffusion-v1-5, shipped in the binary so
/// the plan of `--model text2video-zero` needs no download).
pub fn sd15_configs() -> Result<ZeroConfigs> {
    let json = |name: &str, text: &str| Error::Config { path: format!("built-in stable-diffusion-v1-5 {name}"), msg: text.to_string() };
    let unet: UNet2DConfig =
        serde_json::from_str(include_str!("../../configs/stable-diffusion-v1-5/unet/config.json")).map_err(|e| json("unet", &e.to_string()))?;
    unet.validate("built-in stable-diffusion-v1-5 unet")?;
    Ok(ZeroConfigs {
        unet,
        vae: serde_json::from_str(include_str!("../../configs/stable-diffusion-v1-5/vae/config.json")).map_err(|e| json("vae", &e.to_string()))?,
        text_encoder: serde_json::from_str(include_str!("../../configs/stable-diffusion-v1-5/text_encoder/config.json"))
            .map_err(|e| json("text_encoder", &e.to_string()))?,
        scheduler: SchedulerConfig::from_json(include_str!("../../configs/stable-diffusion-v1-5/scheduler/scheduler_config.json"))?,
    })
}

/// The configs of a Stable Diffusion pipeline folder.
pub fn sd_folder_configs(dir: &Path) -> Result<ZeroConfigs> {
    Ok(ZeroConfigs {
        unet: UNet2DConfig::from_file(&dir.join("unet/config.json"))?,
        vae: AutoencoderKLConfig::from_file(&dir.join("vae/config.json"))?,
        text_encoder: ClipTextConfig::from_file(&dir.join("text_encoder/config.json"))?,
        scheduler: SchedulerConfig::from_file(&dir.join("scheduler/scheduler_config.json"))?,
    })
}

pub struct TextToVideoZero {
    pub gpu: Arc<Gpu>,
    pub dir: PathBuf,
    /// Tokenizer and text encoder.
    pub prompt: ClipPrompt,
    pub scheduler_config: SchedulerConfig,
    pub unet: UNet2DConditionModel,
    pub vae: AutoencoderKL,
    /// The memory plan's buffer schedule, installed at the start of every [`generate`](Self::generate).
    pub schedule: Option<crate::gpu::schedule::Schedule>,
}

/// Intermediate latents, in the order a run makes them (tests compare each with diffusers').
pub const STAGES: [&str; 5] = ["x1_t1", "x1_t0", "warped", "noised", "latents"];

impl TextToVideoZero {
    /// Loads a Stable Diffusion 1.x diffusers folder (tokenizer/, text_encoder/, unet/ with a
    /// UNet2DConditionModel, vae/, scheduler/); safety_checker/ and feature_extractor/ are not read.
    pub fn from_dir(gpu: &Arc<Gpu>, dir: &Path, placement: Placement) -> Result<TextToVideoZero> {
        super::require_components(dir, "Stable Diffusion")?;
        Ok(TextToVideoZero {
            gpu: gpu.clone(),
            dir: dir.to_path_buf(),
            prompt: ClipPrompt::from_dir(gpu, dir, placement)?,
            scheduler_config: SchedulerConfig::from_file(&dir.join("scheduler/scheduler_config.json"))?,
            unet: UNet2DConditionModel::from_dir(gpu, &dir.join("unet"), placement)?,
            vae: AutoencoderKL::from_dir(gpu, &dir.join("vae"), placement)?,
            schedule: None,
        })
    }

    /// The pipeline with synthetic weights (on a planning device: nothing real; see [`plan_zero`]).
    pub fn synthetic(gpu: &Arc<Gpu>, configs: &ZeroConfigs, placement: Placement) -> Result<TextToVideoZero> {
        Ok(TextToVideoZero {
            gpu: gpu.clone(),
            dir: PathBuf::new(),
            prompt: ClipPrompt::synthetic(gpu, &configs.text_encoder, placement)?,
            scheduler_config: configs.scheduler.clone(),
            unet: UNet2DConditionModel::load(configs.unet.clone(), &Weights::synthetic(gpu, "unet", placement))?,
            vae: AutoencoderKL::load(configs.vae.clone(), &Weights::synthetic(gpu, "vae", placement))?,
            schedule: None,
        })
    }

    /// The scheduler the run uses (the folder's, or `p.common.scheduler`): it must be one
    /// Text2Video-Zero can copy half-way (PNDM, DDIM).
    pub fn scheduler(&self, p: &ZeroParams) -> Result<Box<dyn Scheduler>> {
        let mut s = schedulers::from_config(&self.scheduler_config.with_overrides(&p.common.scheduler_config)?, p.common.scheduler)?;
        if p.common.eta != 0.0 {
            s.set_eta(p.common.eta); // DDIM's; PNDM ignores it, as diffusers does
        }
        if s.boxed_clone().is_none() {
            return Err(Error::Other(format!(
                "scheduler: {} cannot run Text2Video-Zero here (it copies the scheduler half-way); use pndm (Stable Diffusion's own) or ddim",
                s.kind()
            )));
        }
        Ok(s)
    }

    pub fn vae_scale_factor(&self) -> usize {
        self.vae.config.scale_factor()
    }

    /// Checks what diffusers asserts or raises, naming the key.
    pub fn check(&self, p: &ZeroParams) -> Result<()> {
        let bad = |field: &str, msg: String| Err(Error::Other(format!("{field}: {msg}")));
        let c = &p.common;
        let s = self.vae_scale_factor();
        if c.height == 0 || c.width == 0 || !c.height.is_multiple_of(8) || !c.width.is_multiple_of(8) {
            return bad("height/width", format!("{}×{} must be non-zero multiples of 8", c.width, c.height));
        }
        if c.height < s || c.width < s {
            return bad("height/width", format!("{}×{} is smaller than one latent ({s}×{s} pixels for this VAE)", c.width, c.height));
        }
        if c.num_frames == 0 {
            return bad("video_length", "must be at least 1".into());
        }
        if p.frame_ids().len() != c.num_frames {
            return bad("frame_ids", format!("{} ids for a video_length of {}", p.frame_ids().len(), c.num_frames));
        }
        if p.t1 >= c.num_inference_steps || p.t0 >= p.t1 {
            return bad(
                "t0/t1",
                format!(
                    "need 0 ≤ t0 < t1 < num_inference_steps, got t0 {} and t1 {} with {} steps (diffusers' defaults: 44, 47 of 50)",
                    p.t0, p.t1, c.num_inference_steps
                ),
            );
        }
        if !p.motion_field_strength_x.is_finite() || !p.motion_field_strength_y.is_finite() {
            return bad("motion_field_strength_x/y", "must be finite".into());
        }
        Ok(())
    }

    /// (1 or 2, 77, D) prompt embeddings: [negative, positive] when guidance is on.
    pub fn encode_prompt(&self, p: &ZeroParams, progress: &mut dyn Progress) -> Result<Tensor> {
        let c = &p.common;
        self.prompt.encode(&c.prompt, &c.negative_prompt, c.guidance_scale > 1.0, c.clip_skip, progress)
    }

    /// Denoises and returns the final latents (F, 4, h, w).
    pub fn denoise(&self, p: &ZeroParams, embeds: &Tensor, progress: &mut dyn Progress) -> Result<Tensor> {
        self.denoise_observed(p, embeds, progress, &mut |_, _| Ok(()))
    }

    /// [`denoise`](Self::denoise), handing every intermediate of [`STAGES`] to `observe`.
    pub fn denoise_observed(
        &self,
        p: &ZeroParams,
        embeds: &Tensor,
        progress: &mut dyn Progress,
        observe: &mut dyn FnMut(&'static str, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let c = &p.common;
        let frames = c.num_frames;
        let guidance = super::denoise::guidance(c.guidance_scale, embeds.dim(0));
        let mut sched = self.scheduler(p)?;
        sched.set_timesteps(c.num_inference_steps)?;
        let ts = sched.timesteps().to_vec();
        let ts_kind = sched.kind();
        let n = ts.len();
        // timesteps[-t1-1] and timesteps[-t0-1] (PNDM's schedule has one entry more than steps).
        let (i1, i0) = (n - p.t1 - 1, n - p.t0 - 1);
        let s = self.vae_scale_factor();
        let (h, w) = (c.height / s, c.width / s);
        let ch = self.unet.config.in_channels;

        // One generator for the whole call, as diffusers passes it: the initial latent first,
        // the forward-diffusion noise later continues the same stream.
        let mut gen = TorchGenerator::new(c.seed);
        let noise = draw(&mut gen, c.noise_dtype, ch * h * w, sched.init_noise_sigma());
        let x = Tensor::from_f32(&self.gpu, &[1, ch, h, w], &noise)?;
        // DDIM with eta > 0 draws each step's noise from that same generator too (diffusers
        // passes it to every step), in the order the calls happen: first loops, the forward
        // diffusion's noise, then the joint loop.
        let stochastic = sched.is_stochastic();
        if stochastic {
            sched.set_generator(StepNoise::new(gen.clone(), c.noise_dtype));
        }

        let ctx1 = (0..embeds.dim(0)).map(|r| embeds.narrow0(r, 1)).collect::<Result<Vec<_>>>()?;
        let tembs = ts.iter().map(|&t| self.unet.rows_time_embedding(t, 1)).collect::<Result<Vec<_>>>()?;
        let single = UNet2DSteps { unet: &self.unet, first: 0, tembs, ctxs: ctx1, guidance, cross: None };
        progress.stage("denoising", i0 + (n - i1));
        let mut x = denoise_loop(&single, &mut *sched, x, 0..i1, progress, &mut |_, _, _| Ok(()))?;
        let mut joint = sched.boxed_clone().ok_or_else(|| Error::Other("scheduler copy failed".into()))?;
        let x1_t1 = x.clone();
        observe("x1_t1", &x1_t1)?;
        x = denoise_loop(&single, &mut *sched, x, i1..i0, progress, &mut |_, _, _| Ok(()))?;
        observe("x1_t0", &x)?;
        if stochastic {
            gen = sched.take_generator().ok_or_else(|| Error::Other("the scheduler lost its generator".into()))?.into_generator();
        }
        drop(sched);

        let x = if frames > 1 {
            let ids = p.frame_ids();
            let warped = warp_latents(&repeat_interleave(&x, frames - 1)?, p.motion_field_strength_x, p.motion_field_strength_y, &ids[1..])?;
            observe("warped", &warped)?;
            // `self.scheduler.alphas`: the run's scheduler's own (its options included; PNDM has
            // no rescale_betas_zero_snr, so diffusers' PNDM never rescales).
            let cfg = self.scheduler_config.with_overrides(&c.scheduler_config)?;
            let cfg = if ts_kind == crate::schedulers::SchedulerKind::Pndm { cfg.without_zero_snr() } else { cfg };
            let alphas = cfg.alphas()?;
            let (lo, hi) = (ts[i0] as usize, ts[i1] as usize);
            // torch.prod(alphas[t0:t1]) of float32 values; the product is formed in f64 and
            // rounded once (torch's vectorised float product differs from it by ~1e-7).
            let a = alphas[lo..hi].iter().fold(1.0f64, |acc, &v| acc * v as f64) as f32;
            let eps = draw(&mut gen, c.noise_dtype, (frames - 1) * ch * h * w, 1.0);
            let eps = Tensor::from_f32(&self.gpu, &[frames - 1, ch, h, w], &eps)?;
            let noised = lincomb2(&warped, a.sqrt(), &eps, (1.0 - a).sqrt())?;
            drop((warped, eps));
            observe("noised", &noised)?;
            cat(&[&x1_t1, &noised], 0)?
        } else {
            x1_t1
        };

        // All frames together: every row of a step shares its time embedding; self-attention
        // looks at frame 0 (cross-frame attention).
        let all = UNet2DSteps {
            unet: &self.unet,
            first: i1,
            tembs: single.tembs[i1..].iter().map(|t| if frames == 1 { Ok(t.clone()) } else { repeat_interleave(t, frames) }).collect::<Result<Vec<_>>>()?,
            ctxs: single.ctxs.iter().map(|e| repeat_interleave(e, frames)).collect::<Result<Vec<_>>>()?,
            guidance,
            cross: cross_frame_length(frames),
        };
        drop(single);
        if stochastic {
            joint.set_generator(StepNoise::new(gen, c.noise_dtype));
        }
        let x = denoise_loop(&all, &mut *joint, x, i1..n, progress, &mut |_, _, _| Ok(()))?;
        observe("latents", &x)?;
        Ok(x)
    }

    /// Latents (F, 4, h, w) → frames (F, H, W, 3) in [0, 1], one frame through the VAE at a time.
    pub fn decode(&self, latents: &Tensor, progress: &mut dyn Progress) -> Result<super::Frames> {
        super::frames::decode_per_frame(&self.vae, latents, progress)
    }

    /// See `TextToVideo::use_plan`.
    pub fn use_plan(&mut self, plan: &super::MemoryPlan) -> Result<()> {
        self.gpu.install_schedule(&plan.schedule)?;
        self.schedule = Some(plan.schedule.clone());
        Ok(())
    }

    pub fn generate(&self, p: &ZeroParams, progress: &mut dyn Progress) -> Result<super::Frames> {
        self.check(p)?;
        if let Some(s) = &self.schedule {
            self.gpu.install_schedule(s)?;
        }
        progress.stage("encoding prompt", 1);
        let embeds = self.encode_prompt(p, progress)?;
        progress.tick();
        let latents = self.denoise(p, &embeds, progress)?;
        drop(embeds);
        self.decode(&latents, progress)
    }

    /// A long video the way diffusers' docs make one: chunks of `chunk_size` frames, each run
    /// with `frame_ids = [0] + range(start, end)` and the generator re-seeded, so every chunk
    /// shares frame 0 (dropped from its output) and the motion continues across chunks.
    pub fn generate_long(&self, p: &ZeroParams, chunk_size: usize, progress: &mut dyn Progress) -> Result<super::Frames> {
        let video_length = p.common.num_frames;
        if chunk_size < 2 {
            return Err(Error::Other(format!("chunk_size: {chunk_size} must be at least 2 (frame 0 plus one new frame per chunk)")));
        }
        let starts: Vec<usize> = (0..video_length).step_by(chunk_size - 1).collect();
        let mut out = super::Frames { data: Vec::new(), frames: 0, height: 0, width: 0 };
        for (k, &start) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(video_length);
            let ids: Vec<usize> = std::iter::once(0).chain(start..end).collect();
            let chunk = ZeroParams { common: GenerateParams { num_frames: ids.len(), ..p.common.clone() }, frame_ids: Some(ids), ..p.clone() };
            let f = self.generate(&chunk, progress)?;
            let per = f.height * f.width * 3;
            out.data.extend_from_slice(&f.data[per..]);
            out.frames += f.frames - 1;
            (out.height, out.width) = (f.height, f.width);
        }
        Ok(out)
    }
}

/// Rows per reference frame in diffusers' cross-frame processor (`batch_size=2`): the UNet
/// batch [uncond frames, text frames] is split in two halves, each attending to its first row;
/// t2v runs each prompt separately, so that is all F frames of a call. diffusers' pipeline
/// raises without guidance (it concatenates a missing negative embedding); t2v then lets every
/// frame attend to frame 0, the algorithm's intent. None for a single frame.
pub fn cross_frame_length(frames: usize) -> Option<usize> {
    (frames > 1).then_some(frames)
}

/// `torch.randn(n, generator)` in the pipeline's noise dtype, times `sigma`.
fn draw(gen: &mut TorchGenerator, dtype: NoiseDtype, n: usize, sigma: f32) -> Vec<f32> {
    let mut v: Vec<f32> = match dtype {
        NoiseDtype::Float32 => gen.randn(n),
        NoiseDtype::Float16 => gen.randn_f16(n).iter().map(|h| h.to_f32()).collect(),
        NoiseDtype::Bfloat16 => gen.randn_bf16(n).iter().map(|h| h.to_f32()).collect(),
    };
    if sigma != 1.0 {
        v.iter_mut().for_each(|x| *x *= sigma);
    }
    v
}

/// Plans a Text2Video-Zero generation (see [`super::plan`]). `gpu` must be a planning device.
pub fn plan_zero(gpu: &Arc<Gpu>, configs: &ZeroConfigs, p: &ZeroParams, placement: Placement) -> Result<super::MemoryPlan> {
    if !gpu.is_planning() {
        return Err(Error::Other("memory plans run on a planning device (Gpu::planner)".into()));
    }
    gpu.clear_schedule();
    gpu.trim();
    gpu.reset_peak();
    let planned = TextToVideoZero::synthetic(gpu, configs, placement).and_then(|pipe| {
        pipe.check(p)?;
        let weights = gpu.memory().live;
        super::plan::plan_run(gpu, weights, &mut |stage| placeholder_run_zero(&pipe, p, stage))
    });
    if planned.is_err() {
        drop(gpu.finish_trace());
        gpu.clear_schedule();
    }
    planned
}

/// What [`TextToVideoZero::generate`] allocates, with placeholder token ids.
pub fn placeholder_run_zero(pipe: &TextToVideoZero, p: &ZeroParams, stage: &mut dyn FnMut(&'static str)) -> Result<()> {
    let embeds = pipe.prompt.placeholder(p.common.guidance_scale > 1.0, p.common.clip_skip)?;
    stage("prompt encoding");
    let latents = pipe.denoise(p, &embeds, &mut super::NoProgress)?;
    drop(embeds);
    stage("denoising");
    pipe.decode(&latents, &mut super::NoProgress)?;
    stage("decoding");
    Ok(())
}

/// The 2-D UNet as the denoising loop sees it: per-step time embeddings (one per row of the
/// step's latents), the prompt contexts, and cross-frame attention for the joint phase.
struct UNet2DSteps<'a> {
    unet: &'a UNet2DConditionModel,
    /// Index of the first step `tembs` holds.
    first: usize,
    tembs: Vec<Tensor>,
    ctxs: Vec<Tensor>,
    guidance: Option<f32>,
    cross: Option<usize>,
}

impl super::Denoiser for UNet2DSteps<'_> {
    fn predict(&self, input: &Tensor, step: usize, row: usize) -> Result<Tensor> {
        self.unet.forward_prepared(input, &self.tembs[step - self.first], &self.ctxs[row], self.cross)
    }
    fn guidance(&self, _step: usize) -> Option<f32> {
        self.guidance
    }
}
