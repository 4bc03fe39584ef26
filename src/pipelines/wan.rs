//! diffusers' `WanPipeline.__call__` (Wan 2.1 text-to-video), step for step:
//! 1. settings as diffusers takes them: height/width multiples of 16 (an error otherwise),
//!    `num_frames` rounded down to 4k+1 with a warning;
//! 2. prompts cleaned (`prompt_clean` without ftfy), tokenized to 512 ids, UMT5 → embeddings
//!    trimmed to the real tokens and zero-filled to 512 rows (negative prompt "" when guided);
//! 3. float32 noise from the torch CPU stream, (1, 16, (F−1)/4+1, H/8, W/8);
//! 4. the shared denoising loop: the transformer once per prompt, guidance, UniPC (or flow
//!    Euler) with the model's `flow_shift`; the text MLP and every step's time conditioning are
//!    made once per video, so both guidance passes share them;
//! 5. latents de-normalised (`x / (1/std) + mean`) and decoded by the causal VAE latent frame by
//!    latent frame (1 frame, then 4 per latent frame), clamped, postprocessed as diffusers'
//!    `output_type="np"`.

use super::{Checkpoint, Defaults, Frames, GenerateParams, MemoryPlan, NoProgress, Progress, VideoPipeline};
use crate::error::{Error, Result};
use crate::models::umt5::{UMT5Config, UMT5EncoderModel};
use crate::models::wan_transformer::{WanTimeConditioning, WanTransformer3DModel, WanTransformerConfig};
use crate::models::wan_vae::{AutoencoderKLWan, AutoencoderKLWanConfig};
use crate::schedulers::{self, Scheduler, SchedulerConfig};
use crate::tensor::Tensor;
use crate::tokenizer::{T5Tokenizer, WAN_MAX_LENGTH};
use crate::weights::{Placement, Weights};
use crate::Gpu;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The configs a Wan plan needs (no weights).
#[derive(Clone)]
pub struct WanConfigs {
    pub transformer: WanTransformerConfig,
    pub vae: AutoencoderKLWanConfig,
    pub text_encoder: UMT5Config,
    pub scheduler: SchedulerConfig,
}

/// `WanPipeline.__call__`'s defaults, with the card's 16 fps.
pub const WAN_DEFAULTS: Defaults = Defaults { height: 480, width: 832, num_frames: 81, num_inference_steps: 50, guidance_scale: 5.0, fps: 16 };

/// The recommended negative prompt of the Wan 2.1 card (diffusers' docstring; config.yaml shows it).
pub const RECOMMENDED_NEGATIVE_PROMPT: &str = "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, messy background, three legs, many people in the background, walking backwards";

/// The architecture of a named Wan model (configs/<name>/, shipped in the binary).
pub fn wan_builtin_configs(name: &str) -> Result<WanConfigs> {
    let (t, v, e, s) = match name {
        "wan2.1-t2v-1.3b" => (
            include_str!("../../configs/wan2.1-t2v-1.3b/transformer/config.json"),
            include_str!("../../configs/wan2.1-t2v-1.3b/vae/config.json"),
            include_str!("../../configs/wan2.1-t2v-1.3b/text_encoder/config.json"),
            include_str!("../../configs/wan2.1-t2v-1.3b/scheduler/scheduler_config.json"),
        ),
        "wan2.1-t2v-14b" => (
            include_str!("../../configs/wan2.1-t2v-14b/transformer/config.json"),
            include_str!("../../configs/wan2.1-t2v-14b/vae/config.json"),
            include_str!("../../configs/wan2.1-t2v-14b/text_encoder/config.json"),
            include_str!("../../configs/wan2.1-t2v-14b/scheduler/scheduler_config.json"),
        ),
        _ => return Err(Error::Other(format!("no built-in configs for '{name}'"))),
    };
    let json = |what: &str, e: serde_json::Error| Error::Config { path: format!("built-in {name} {what}"), msg: e.to_string() };
    Ok(WanConfigs {
        transformer: serde_json::from_str(t).map_err(|e| json("transformer", e))?,
        vae: serde_json::from_str(v).map_err(|e| json("vae", e))?,
        text_encoder: serde_json::from_str(e).map_err(|e| json("text_encoder", e))?,
        scheduler: SchedulerConfig::from_json(s)?,
    })
}

/// The configs of a WanPipeline folder; a missing component is named with what would work.
pub fn wan_folder_configs(dir: &Path) -> Result<WanConfigs> {
    require_wan_components(dir)?;
    Ok(WanConfigs {
        transformer: WanTransformerConfig::from_file(&dir.join("transformer/config.json"))?,
        vae: AutoencoderKLWanConfig::from_file(&dir.join("vae/config.json"))?,
        text_encoder: UMT5Config::from_file(&dir.join("text_encoder/config.json"))?,
        scheduler: SchedulerConfig::from_file(&dir.join("scheduler/scheduler_config.json"))?,
    })
}

fn require_wan_components(dir: &Path) -> Result<()> {
    for (sub, what) in [
        ("tokenizer", "tokenizer.json (T5/umT5)"),
        ("text_encoder", "UMT5EncoderModel: config.json + safetensors"),
        ("transformer", "WanTransformer3DModel: config.json + safetensors"),
        ("vae", "AutoencoderKLWan: config.json + safetensors"),
        ("scheduler", "scheduler_config.json"),
    ] {
        if !dir.join(sub).is_dir() {
            return Err(Error::Other(format!("{}: a WanPipeline folder needs {sub}/ ({what}); it has none", dir.display())));
        }
    }
    if dir.join("transformer_2").is_dir() {
        return Err(Error::Other(format!(
            "{}: transformer_2/ (Wan 2.2's two experts) is not run by t2v yet; Wan 2.1 folders have one transformer",
            dir.display()
        )));
    }
    Ok(())
}

/// diffusers' silent adjustments: `num_frames` to 4k+1 (floor) with its warning.
pub fn adjust(vae: &AutoencoderKLWanConfig, p: &mut GenerateParams) -> Vec<String> {
    let mut notes = Vec::new();
    let t = vae.temporal_scale();
    if p.num_frames % t != 1 {
        let n = (p.num_frames / t * t + 1).max(1);
        notes.push(format!("num_frames - 1 has to be divisible by {t}: {} rounded to {n} (as diffusers does)", p.num_frames));
        p.num_frames = n;
    }
    notes
}

pub struct WanPipeline {
    pub gpu: Arc<Gpu>,
    pub dir: PathBuf,
    /// None only for memory plans, which feed placeholder token ids.
    pub tokenizer: Option<T5Tokenizer>,
    pub text_encoder: UMT5EncoderModel,
    /// The transformer's config; its weights are uploaded for the denoising loop and freed
    /// before decoding (see [`transformer`](Self::transformer)).
    pub transformer_config: WanTransformerConfig,
    transformer_weights: TransformerWeights,
    pub vae: AutoencoderKLWan,
    pub scheduler_config: SchedulerConfig,
    pub schedule: Option<crate::gpu::schedule::Schedule>,
}

impl WanPipeline {
    pub fn from_dir(gpu: &Arc<Gpu>, dir: &Path, placement: Placement) -> Result<WanPipeline> {
        require_wan_components(dir)?;
        // The transformer's files are checked now (config, keys and shapes), not at the first run.
        drop(WanTransformer3DModel::from_dir(&Gpu::planner(&crate::gpu::AdapterSelector::from_env())?, &dir.join("transformer"), placement)?);
        Ok(WanPipeline {
            gpu: gpu.clone(),
            dir: dir.to_path_buf(),
            tokenizer: Some(T5Tokenizer::from_dir(&dir.join("tokenizer"))?),
            text_encoder: UMT5EncoderModel::from_dir(gpu, &dir.join("text_encoder"), placement)?,
            transformer_config: WanTransformerConfig::from_file(&dir.join("transformer/config.json"))?,
            transformer_weights: TransformerWeights::Folder(dir.join("transformer"), placement),
            vae: AutoencoderKLWan::from_dir(gpu, &dir.join("vae"), placement)?,
            scheduler_config: SchedulerConfig::from_file(&dir.join("scheduler/scheduler_config.json"))?,
            schedule: None,
        })
    }

    /// The pipeline with synthetic weights (on a planning device: nothing real).
    pub fn synthetic(gpu: &Arc<Gpu>, c: &WanConfigs, placement: Placement) -> Result<WanPipeline> {
        Ok(WanPipeline {
            gpu: gpu.clone(),
            dir: PathBuf::new(),
            tokenizer: None,
            text_encoder: UMT5EncoderModel::load(c.text_encoder.clone(), Arc::new(Weights::synthetic(gpu, "text_encoder", placement)))?,
            transformer_config: c.transformer.clone(),
            transformer_weights: TransformerWeights::Synthetic(placement),
            vae: AutoencoderKLWan::load(c.vae.clone(), &Weights::synthetic(gpu, "vae", placement))?,
            scheduler_config: c.scheduler.clone(),
            schedule: None,
        })
    }

    /// The scheduler of the run: the folder's (or `p.scheduler`), with `p.flow_shift` if given.
    pub fn scheduler(&self, p: &GenerateParams) -> Result<Box<dyn Scheduler>> {
        let cfg = self.scheduler_config.with_overrides(&p.scheduler_config)?;
        let cfg = match p.flow_shift {
            Some(s) => cfg.with_flow_shift(s)?,
            None => cfg,
        };
        schedulers::from_config(&cfg, p.scheduler)
    }

    /// Latent shape (1, C, (F−1)/4+1, H/8, W/8).
    pub fn latent_shape(&self, p: &GenerateParams) -> [usize; 5] {
        let (t, s) = (self.vae.config.temporal_scale(), self.vae.config.spatial_scale());
        [1, self.transformer_config.in_channels, (p.num_frames - 1) / t + 1, p.height / s, p.width / s]
    }

    /// What [`encode_prompt`](Self::encode_prompt) allocates, from placeholder ids.
    fn placeholder_prompt(&self, p: &GenerateParams) -> Result<Tensor> {
        let rows = if p.guidance_scale > 1.0 { 2 } else { 1 };
        let n = p.max_sequence_length.unwrap_or(WAN_MAX_LENGTH);
        let embeds = self.text_encoder.encode_ids(&vec![vec![0u32; n]; rows], &vec![n; rows])?;
        self.gpu.next_schedule_phase()?;
        Ok(embeds)
    }

    /// The transformer with its weights on the device, for one denoising loop. Its weights are
    /// freed when it drops, so the VAE's causal caches never sit beside them: at 832×480×81
    /// the 1.3B model's 2.6 GiB of weights and the decode's 4.7 GiB would otherwise add up.
    /// Uploading again per video costs a read of the memory-mapped checkpoint.
    pub fn transformer(&self) -> Result<WanTransformer3DModel> {
        match &self.transformer_weights {
            TransformerWeights::Folder(dir, placement) => WanTransformer3DModel::from_dir(&self.gpu, dir, *placement),
            TransformerWeights::Synthetic(placement) => {
                WanTransformer3DModel::load(self.transformer_config.clone(), &Weights::synthetic(&self.gpu, "transformer", *placement))
            }
        }
    }
}

/// Where the transformer's weights come from.
enum TransformerWeights {
    Folder(PathBuf, Placement),
    /// A memory plan's (shape-only) weights.
    Synthetic(Placement),
}

/// Wan's transformer as the denoising loop sees it.
struct WanSteps<'a> {
    transformer: &'a WanTransformer3DModel,
    /// Index of the first step `times` holds.
    first: usize,
    contexts: Vec<Tensor>,
    times: Vec<WanTimeConditioning>,
    guidance: Option<f32>,
}

impl super::Denoiser for WanSteps<'_> {
    fn predict(&self, input: &Tensor, step: usize, row: usize) -> Result<Tensor> {
        self.transformer.forward_prepared(input, &self.times[step - self.first], &self.contexts[row])
    }
    fn guidance(&self, _step: usize) -> Option<f32> {
        self.guidance
    }
}

/// Plans a Wan generation. `gpu` must be a planning device.
pub fn plan_wan(gpu: &Arc<Gpu>, configs: &WanConfigs, p: &GenerateParams, placement: Placement) -> Result<MemoryPlan> {
    if !gpu.is_planning() {
        return Err(Error::Other("memory plans run on a planning device (Gpu::planner)".into()));
    }
    gpu.clear_schedule();
    gpu.trim();
    gpu.reset_peak();
    let planned = WanPipeline::synthetic(gpu, configs, placement).and_then(|pipe| {
        pipe.check(p)?;
        let weights = gpu.memory().live;
        super::plan::plan_run(gpu, weights, &mut |stage| {
            let embeds = pipe.placeholder_prompt(p)?;
            stage("prompt encoding");
            let latents = pipe.denoise_resumable(p, &embeds, &mut NoProgress, None, &mut |_, _, _| Ok(()))?;
            drop(embeds);
            stage("denoising");
            pipe.decode(&latents, &mut NoProgress)?;
            stage("decoding");
            Ok(())
        })
    });
    if planned.is_err() {
        drop(gpu.finish_trace());
        gpu.clear_schedule();
    }
    planned
}

impl super::VideoPipeline for WanPipeline {
    fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    fn scheduler_for(&self, p: &GenerateParams) -> Result<Box<dyn Scheduler>> {
        self.scheduler(p)
    }

    /// What `WanPipeline.check_inputs` raises (after [`adjust`]), naming the key.
    fn check(&self, p: &GenerateParams) -> Result<()> {
        let bad = |field: &str, msg: String| Err(Error::Other(format!("{field}: {msg}")));
        let m = self.vae.config.spatial_scale() * self.transformer_config.patch_size[1];
        if p.height == 0 || p.width == 0 || !p.height.is_multiple_of(16) || !p.width.is_multiple_of(16) {
            return bad("height/width", format!("{}×{} must be non-zero multiples of 16 for Wan (e.g. 832×480)", p.width, p.height));
        }
        if !p.height.is_multiple_of(m) || !p.width.is_multiple_of(m) {
            return bad("height/width", format!("{}×{} must be multiples of {m} for this model (VAE factor × patch)", p.width, p.height));
        }
        if p.num_frames == 0 || p.num_frames % self.vae.config.temporal_scale() != 1 {
            return bad("num_frames", format!("{} is not 4k+1 (1, 5, 9, …, 81)", p.num_frames));
        }
        if p.num_inference_steps == 0 {
            return bad("num_inference_steps", "must be at least 1".into());
        }
        if p.eta != 0.0 {
            return bad("eta", "WanPipeline has no eta (its schedulers are flow-matching ones); remove it".into());
        }
        if let Some(n) = p.max_sequence_length.filter(|&n| n == 0 || n > 4096) {
            return bad("max_sequence_length", format!("{n} is outside 1..=4096 (diffusers' default is 512)"));
        }
        Ok(())
    }

    /// (1 or 2, 512, d) embeddings: [negative, positive] when guided (negative "" by default).
    fn encode_prompt(&self, p: &GenerateParams, progress: &mut dyn Progress) -> Result<Tensor> {
        let tokenizer = self.tokenizer.as_ref().ok_or_else(|| Error::Other("this pipeline has no tokenizer".into()))?;
        let texts: Vec<&str> = if p.guidance_scale > 1.0 { vec![&p.negative_prompt, &p.prompt] } else { vec![&p.prompt] };
        let mut encoded = Vec::new();
        for t in texts {
            let e = tokenizer.encode_prompt(t, p.max_sequence_length.unwrap_or(WAN_MAX_LENGTH))?;
            if let Some(w) = tokenizer.truncation_warning(&e) {
                progress.note(&format!("warning: {w}"));
            }
            encoded.push(e);
        }
        let embeds = self.text_encoder.encode(&encoded)?;
        // The encoder's layers are gone; the denoising loop's tensors get buffers of their own.
        self.gpu.next_schedule_phase()?;
        Ok(embeds)
    }

    fn denoise_resumable(
        &self,
        p: &GenerateParams,
        embeds: &Tensor,
        progress: &mut dyn Progress,
        resume: Option<Checkpoint>,
        observe: &mut dyn FnMut(usize, &Tensor, &dyn Scheduler) -> Result<()>,
    ) -> Result<Tensor> {
        let mut sched = self.scheduler(p)?;
        let shape = self.latent_shape(p);
        let (first, latents) = super::denoise::start(&self.gpu, sched.as_mut(), p.num_inference_steps, &shape, resume, |s| {
            let mut noise = p.noise_dtype.randn(p.seed, shape.iter().product());
            let sigma = s.init_noise_sigma();
            if sigma != 1.0 {
                noise.iter_mut().for_each(|v| *v *= sigma);
            }
            Tensor::from_f32(&self.gpu, &shape, &noise)
        })?;
        let n = sched.timesteps().len();
        let transformer = self.transformer()?;
        let den = WanSteps {
            transformer: &transformer,
            first,
            contexts: (0..embeds.dim(0)).map(|r| transformer.prepare_context(&embeds.narrow0(r, 1)?)).collect::<Result<Vec<_>>>()?,
            times: sched.timesteps()[first..].iter().map(|&t| transformer.time_conditioning(&[t])).collect::<Result<Vec<_>>>()?,
            guidance: super::denoise::guidance(p.guidance_scale, embeds.dim(0)),
        };
        progress.stage("denoising", n - first);
        let latents = super::denoise::denoise_loop(&den, sched.as_mut(), latents, first..n, progress, observe)?;
        // The transformer's weights and activations are gone: the decode's caches get buffers
        // of their own instead of sharing (and keeping) the loop's.
        drop(den);
        drop(transformer);
        self.gpu.next_schedule_phase()?;
        Ok(latents)
    }

    /// Final latents → frames: de-normalised, decoded chunk by chunk (each chunk's frames read
    /// back as it is made, so the whole video never sits on the device).
    fn decode(&self, latents: &Tensor, progress: &mut dyn Progress) -> Result<Frames> {
        let z = self.vae.denormalize(latents)?;
        progress.stage("decoding", z.dim(2));
        let mut out = Frames::empty();
        self.vae.decode_with(&z, &mut |chunk| {
            progress.check_cancelled()?;
            let (n, h, w) = (chunk.dim(0), chunk.dim(2), chunk.dim(3));
            out.push_rgb(&chunk.to_f32()?, n, h, w, true);
            progress.tick();
            Ok(())
        })?;
        Ok(out)
    }

    fn use_plan(&mut self, plan: &MemoryPlan) -> Result<()> {
        self.gpu.install_schedule(&plan.schedule)?;
        self.schedule = Some(plan.schedule.clone());
        Ok(())
    }

    fn planned(&self) -> Option<&crate::gpu::schedule::Schedule> {
        self.schedule.as_ref()
    }
}
