//! diffusers' `WanPipeline.__call__` (Wan 2.1 text-to-video, and Wan 2.2 A14B's two experts),
//! step for step:
//! 1. settings as diffusers takes them: height/width multiples of 16 (an error otherwise),
//!    `num_frames` rounded down to 4k+1 with a warning;
//! 2. prompts cleaned (`prompt_clean` without ftfy), tokenized to 512 ids, UMT5 → embeddings
//!    trimmed to the real tokens and zero-filled to 512 rows (negative prompt "" when guided);
//! 3. float32 noise from the torch CPU stream, (1, 16, (F−1)/4+1, H/8, W/8);
//! 4. the shared denoising loop: the transformer once per prompt, guidance, UniPC (or flow
//!    Euler) with the model's `flow_shift`; the text MLP and every step's time conditioning are
//!    made once per video, so both guidance passes share them. A two-expert folder
//!    (`boundary_ratio` in model_index.json) runs `transformer` while t ≥ boundary_ratio·T with
//!    `guidance_scale` and `transformer_2` below it with `guidance_scale_2`, one expert on the
//!    device at a time (each segment of steps is its own memory phase);
//! 5. latents de-normalised (`x / (1/std) + mean`) and decoded by the causal VAE latent frame by
//!    latent frame (1 frame, then 4 per latent frame), clamped, postprocessed as diffusers'
//!    `output_type="np"`.

use super::{Checkpoint, Defaults, Frames, GenerateParams, MemoryPlan, NoProgress, Progress, VideoPipeline};
use crate::error::{Error, Result};
use crate::models::umt5::{UMT5Config, UMT5EncoderModel};
use crate::models::wan_transformer::{WanTimeConditioning, WanTransformer3DModel, WanTransformerConfig};
use crate::models::wan_vae::WanVaeTiling;
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
    /// Wan 2.2 A14B's low-noise expert (used only with a `boundary_ratio`).
    pub transformer_2: Option<WanTransformerConfig>,
    pub vae: AutoencoderKLWanConfig,
    pub text_encoder: UMT5Config,
    pub scheduler: SchedulerConfig,
    pub index: WanIndex,
}

/// What a WanPipeline's model_index.json registers besides its components (diffusers'
/// `register_to_config`): Wan 2.2 A14B's `boundary_ratio` (with `transformer_2`) and TI2V's
/// `expand_timesteps`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WanIndex {
    pub boundary_ratio: Option<f64>,
    /// Per-token timesteps. In text-to-video every token's timestep is the step's t, so the
    /// transformer's time conditioning is the scalar one broadcast (diffusers' per-token run
    /// differs only by GEMM-vs-GEMV rounding); t2v computes it once.
    pub expand_timesteps: bool,
    /// `transformer_2` names a component (not absent or `[null, null]`).
    pub transformer_2: bool,
}

impl WanIndex {
    pub fn from_json(text: &str, source: &str) -> Result<WanIndex> {
        let bad = |msg: String| Error::Config { path: source.into(), msg };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let boundary_ratio = match &v["boundary_ratio"] {
            serde_json::Value::Null => None,
            x => Some(x.as_f64().filter(|r| r.is_finite()).ok_or_else(|| bad(format!("boundary_ratio: {x} is not a number")))?),
        };
        let expand_timesteps = match &v["expand_timesteps"] {
            serde_json::Value::Null => false,
            x => x.as_bool().ok_or_else(|| bad(format!("expand_timesteps: {x} is not true or false")))?,
        };
        let transformer_2 = v["transformer_2"].as_array().is_some_and(|a| a.iter().any(|x| !x.is_null()));
        let index = WanIndex { boundary_ratio, expand_timesteps, transformer_2 };
        if index.boundary_ratio.is_some() && !index.transformer_2 {
            return Err(bad(format!(
                "boundary_ratio {} switches to transformer_2 below the boundary, but transformer_2 is not a component here (diffusers would fail at that step); remove boundary_ratio or add the low-noise expert",
                boundary_ratio.unwrap_or_default()
            )));
        }
        Ok(index)
    }

    /// A folder's model_index.json; none (a folder forced with `--pipeline wan`) is Wan 2.1's.
    pub fn from_dir(dir: &Path) -> Result<WanIndex> {
        let path = dir.join("model_index.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => WanIndex::from_json(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(WanIndex::default()),
            Err(e) => Err(Error::Config { path: path.display().to_string(), msg: e.to_string() }),
        }
    }

    /// Whether the low-noise expert runs at all (a `transformer_2` without a boundary never
    /// does, in diffusers too).
    pub fn two_experts(&self) -> bool {
        self.boundary_ratio.is_some() && self.transformer_2
    }
}

/// `WanPipeline.__call__`'s defaults, with the card's 16 fps.
pub const WAN_DEFAULTS: Defaults = Defaults { height: 480, width: 832, num_frames: 81, num_inference_steps: 50, guidance_scale: 5.0, fps: 16 };

/// Wan 2.2 TI2V-5B's card (the model with the Wan 2.2 VAE): 1280×704, 121 frames at 24 fps.
pub const WAN22_TI2V_DEFAULTS: Defaults = Defaults { height: 704, width: 1280, num_frames: 121, num_inference_steps: 50, guidance_scale: 5.0, fps: 24 };

/// The recommended negative prompt of the Wan 2.1 card (diffusers' docstring; config.yaml shows it).
pub const RECOMMENDED_NEGATIVE_PROMPT: &str = "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, messy background, three legs, many people in the background, walking backwards";

/// The architecture of a named Wan model (configs/<name>/, shipped in the binary).
pub fn wan_builtin_configs(name: &str) -> Result<WanConfigs> {
    let (t, v, e, s, i) = match name {
        "wan2.1-t2v-1.3b" => (
            include_str!("../../configs/wan2.1-t2v-1.3b/transformer/config.json"),
            include_str!("../../configs/wan2.1-t2v-1.3b/vae/config.json"),
            include_str!("../../configs/wan2.1-t2v-1.3b/text_encoder/config.json"),
            include_str!("../../configs/wan2.1-t2v-1.3b/scheduler/scheduler_config.json"),
            include_str!("../../configs/wan2.1-t2v-1.3b/model_index.json"),
        ),
        "wan2.1-t2v-14b" => (
            include_str!("../../configs/wan2.1-t2v-14b/transformer/config.json"),
            include_str!("../../configs/wan2.1-t2v-14b/vae/config.json"),
            include_str!("../../configs/wan2.1-t2v-14b/text_encoder/config.json"),
            include_str!("../../configs/wan2.1-t2v-14b/scheduler/scheduler_config.json"),
            include_str!("../../configs/wan2.1-t2v-14b/model_index.json"),
        ),
        "wan2.2-ti2v-5b" => (
            include_str!("../../configs/wan2.2-ti2v-5b/transformer/config.json"),
            include_str!("../../configs/wan2.2-ti2v-5b/vae/config.json"),
            include_str!("../../configs/wan2.2-ti2v-5b/text_encoder/config.json"),
            include_str!("../../configs/wan2.2-ti2v-5b/scheduler/scheduler_config.json"),
            include_str!("../../configs/wan2.2-ti2v-5b/model_index.json"),
        ),
        // Both experts have the 14B architecture (configs/wan2.2-t2v-a14b/README.md).
        "wan2.2-t2v-a14b" => (
            include_str!("../../configs/wan2.2-t2v-a14b/transformer/config.json"),
            include_str!("../../configs/wan2.2-t2v-a14b/vae/config.json"),
            include_str!("../../configs/wan2.2-t2v-a14b/text_encoder/config.json"),
            include_str!("../../configs/wan2.2-t2v-a14b/scheduler/scheduler_config.json"),
            include_str!("../../configs/wan2.2-t2v-a14b/model_index.json"),
        ),
        _ => return Err(Error::Other(format!("no built-in configs for '{name}'"))),
    };
    let json = |what: &str, e: serde_json::Error| Error::Config { path: format!("built-in {name} {what}"), msg: e.to_string() };
    let index = WanIndex::from_json(i, &format!("built-in {name} model_index.json"))?;
    let transformer: WanTransformerConfig = serde_json::from_str(t).map_err(|e| json("transformer", e))?;
    Ok(WanConfigs {
        transformer_2: index.transformer_2.then(|| transformer.clone()),
        transformer,
        vae: serde_json::from_str(v).map_err(|e| json("vae", e))?,
        text_encoder: serde_json::from_str(e).map_err(|e| json("text_encoder", e))?,
        scheduler: SchedulerConfig::from_json(s)?,
        index,
    })
}

/// The configs of a WanPipeline folder; a missing component is named with what would work.
pub fn wan_folder_configs(dir: &Path) -> Result<WanConfigs> {
    let index = require_wan_components(dir)?;
    let transformer = WanTransformerConfig::from_file(&dir.join("transformer/config.json"))?;
    let transformer_2 = match index.two_experts() {
        true => Some(expert_config(dir, &transformer)?),
        false => None,
    };
    Ok(WanConfigs {
        index,
        transformer_2,
        transformer,
        vae: AutoencoderKLWanConfig::from_file(&dir.join("vae/config.json"))?,
        text_encoder: UMT5Config::from_file(&dir.join("text_encoder/config.json"))?,
        scheduler: SchedulerConfig::from_file(&dir.join("scheduler/scheduler_config.json"))?,
    })
}

/// transformer_2/config.json, which must fit the first expert's latents (the pipeline takes
/// channels and patch from `transformer`).
fn expert_config(dir: &Path, first: &WanTransformerConfig) -> Result<WanTransformerConfig> {
    let path = dir.join("transformer_2/config.json");
    let c = WanTransformerConfig::from_file(&path)?;
    if (c.in_channels, c.out_channels, c.patch_size) != (first.in_channels, first.out_channels, first.patch_size) {
        return Err(Error::Config {
            path: path.display().to_string(),
            msg: format!(
                "in/out channels {:?}/{:?} and patch {:?} differ from transformer/'s {:?}/{:?} and {:?}: both experts denoise the same latents",
                c.in_channels, c.out_channels, c.patch_size, first.in_channels, first.out_channels, first.patch_size
            ),
        });
    }
    Ok(c)
}

/// The components a WanPipeline folder needs, and its model_index.json's keys.
fn require_wan_components(dir: &Path) -> Result<WanIndex> {
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
    let index = WanIndex::from_dir(dir)?;
    if index.two_experts() && !dir.join("transformer_2").is_dir() {
        return Err(Error::Other(format!(
            "{}: model_index.json names transformer_2 (Wan 2.2's low-noise expert) with boundary_ratio {}, but the folder has no transformer_2/",
            dir.display(),
            index.boundary_ratio.unwrap_or_default()
        )));
    }
    Ok(index)
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
    /// Wan 2.2 A14B: the low-noise expert and the boundary ratio (None: one transformer).
    expert_2: Option<(WanTransformerConfig, TransformerWeights, f64)>,
    pub vae: AutoencoderKLWan,
    pub scheduler_config: SchedulerConfig,
    pub schedule: Option<crate::gpu::schedule::Schedule>,
    /// Transformer blocks the installed plan streams from host memory (`blocks.N`, both
    /// experts alike).
    pub streamed: Vec<String>,
    /// The installed plan decodes in diffusers' spatial tiles (see `MemoryPlan::vae_tiling`).
    pub vae_tiling: Option<WanVaeTiling>,
}

impl WanPipeline {
    pub fn from_dir(gpu: &Arc<Gpu>, dir: &Path, placement: Placement) -> Result<WanPipeline> {
        let index = require_wan_components(dir)?;
        // The transformers' files are checked now (config, keys and shapes), not at the first run.
        let planner = Gpu::planner(&crate::gpu::AdapterSelector::from_env())?;
        drop(WanTransformer3DModel::from_dir(&planner, &dir.join("transformer"), placement)?);
        let first = WanTransformerConfig::from_file(&dir.join("transformer/config.json"))?;
        let expert_2 = match index.boundary_ratio.filter(|_| index.two_experts()) {
            Some(ratio) => {
                let c = expert_config(dir, &first)?;
                drop(WanTransformer3DModel::from_dir(&planner, &dir.join("transformer_2"), placement)?);
                Some((c, TransformerWeights::Folder(dir.join("transformer_2"), placement), ratio))
            }
            None => None,
        };
        Ok(WanPipeline {
            expert_2,
            gpu: gpu.clone(),
            dir: dir.to_path_buf(),
            tokenizer: Some(T5Tokenizer::from_dir(&dir.join("tokenizer"))?),
            text_encoder: UMT5EncoderModel::from_dir(gpu, &dir.join("text_encoder"), placement)?,
            transformer_config: WanTransformerConfig::from_file(&dir.join("transformer/config.json"))?,
            transformer_weights: TransformerWeights::Folder(dir.join("transformer"), placement),
            vae: AutoencoderKLWan::from_dir(gpu, &dir.join("vae"), placement)?,
            scheduler_config: SchedulerConfig::from_file(&dir.join("scheduler/scheduler_config.json"))?,
            schedule: None,
            streamed: Vec::new(),
            vae_tiling: None,
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
            expert_2: match (&c.transformer_2, c.index.boundary_ratio.filter(|_| c.index.two_experts())) {
                (Some(t2), Some(ratio)) => Some((t2.clone(), TransformerWeights::Synthetic(placement), ratio)),
                _ => None,
            },
            vae: AutoencoderKLWan::load(c.vae.clone(), &Weights::synthetic(gpu, "vae", placement))?,
            scheduler_config: c.scheduler.clone(),
            schedule: None,
            streamed: Vec::new(),
            vae_tiling: None,
        })
    }

    /// The scheduler of the run: the folder's (or `p.scheduler`), with `p.flow_shift` if given.
    pub fn scheduler(&self, p: &GenerateParams) -> Result<Box<dyn Scheduler>> {
        schedulers::from_config(&self.run_scheduler_config(p)?, p.scheduler)
    }

    fn run_scheduler_config(&self, p: &GenerateParams) -> Result<SchedulerConfig> {
        let cfg = self.scheduler_config.with_overrides(&p.scheduler_config)?;
        match p.flow_shift {
            Some(s) => cfg.with_flow_shift(s),
            None => Ok(cfg),
        }
    }

    /// Which expert runs each of the scheduler's timesteps: 0 (`transformer`) while
    /// t ≥ boundary_ratio·num_train_timesteps, 1 (`transformer_2`) below. torch compares the
    /// timestep tensor with the Python float in float32, and so does this.
    fn experts_of(&self, p: &GenerateParams, timesteps: &[f32]) -> Result<Vec<usize>> {
        let Some((_, _, ratio)) = &self.expert_2 else { return Ok(vec![0; timesteps.len()]) };
        let boundary = (ratio * self.run_scheduler_config(p)?.num_train_timesteps()? as f64) as f32;
        Ok(timesteps.iter().map(|&t| if t >= boundary { 0 } else { 1 }).collect())
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
        self.expert(0)
    }

    /// Expert `k` (0: `transformer`, 1: `transformer_2`) with its weights on the device.
    fn expert(&self, k: usize) -> Result<WanTransformer3DModel> {
        let (config, weights, name) = match (k, &self.expert_2) {
            (0, _) => (&self.transformer_config, &self.transformer_weights, "transformer"),
            (_, Some((c, w, _))) => (c, w, "transformer_2"),
            (_, None) => return Err(Error::Other("this Wan folder has one transformer".into())),
        };
        match weights {
            TransformerWeights::Folder(dir, placement) => WanTransformer3DModel::from_dir_streaming(&self.gpu, dir, *placement, &self.streamed),
            TransformerWeights::Synthetic(placement) => {
                WanTransformer3DModel::load_streaming(config.clone(), Weights::synthetic(&self.gpu, name, *placement), &self.streamed)
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

/// Wan's transformer as the denoising loop sees it. A step's time conditioning (the time
/// embedding and every block's modulation: 40 × 120 KiB for the 14B) is made at its first pass
/// and shared by the guidance pass after it, then replaced by the next step's — only one step's
/// is ever on the device.
struct WanSteps<'a> {
    transformer: &'a WanTransformer3DModel,
    /// Index of the first step `timesteps` holds.
    first: usize,
    contexts: Vec<Tensor>,
    timesteps: Vec<f32>,
    current: std::cell::RefCell<Option<(usize, WanTimeConditioning)>>,
    guidance: Option<f32>,
}

impl super::Denoiser for WanSteps<'_> {
    fn predict(&self, input: &Tensor, step: usize, row: usize) -> Result<Tensor> {
        let mut current = self.current.borrow_mut();
        if current.as_ref().map(|c| c.0) != Some(step) {
            *current = None;
            let t = *self.timesteps.get(step - self.first).ok_or_else(|| Error::Other(format!("wan: no timestep for step {step}")))?;
            *current = Some((step, self.transformer.time_conditioning(&[t])?));
        }
        match current.as_ref() {
            Some((_, time)) => self.transformer.forward_prepared(input, time, &self.contexts[row]),
            None => Err(Error::Other("wan: no time conditioning".into())),
        }
    }
    fn guidance(&self, _step: usize) -> Option<f32> {
        self.guidance
    }
}

/// Plans a Wan generation. `gpu` must be a planning device.
pub fn plan_wan(gpu: &Arc<Gpu>, configs: &WanConfigs, p: &GenerateParams, placement: Placement) -> Result<MemoryPlan> {
    plan_wan_streaming(gpu, configs, p, placement, &[], None)
}

/// The transformer's blocks with their device bytes (streaming units), measured on the
/// planning device `gpu` from the config.
pub fn wan_units(gpu: &Arc<Gpu>, configs: &WanConfigs, placement: Placement) -> Result<Vec<(String, u64)>> {
    let units = WanTransformer3DModel::load(configs.transformer.clone(), Weights::synthetic(gpu, "transformer", placement))?.units();
    gpu.trim();
    Ok(units)
}

/// [`plan_wan`] with the transformer blocks named in `streamed` uploaded per forward, and the
/// VAE decode tiled as `tiling` says (None: untiled).
pub fn plan_wan_streaming(
    gpu: &Arc<Gpu>,
    configs: &WanConfigs,
    p: &GenerateParams,
    placement: Placement,
    streamed: &[String],
    tiling: Option<WanVaeTiling>,
) -> Result<MemoryPlan> {
    if !gpu.is_planning() {
        return Err(Error::Other("memory plans run on a planning device (Gpu::planner)".into()));
    }
    gpu.clear_schedule();
    gpu.trim();
    gpu.reset_peak();
    let planned = WanPipeline::synthetic(gpu, configs, placement).and_then(|mut pipe| {
        pipe.streamed = streamed.to_vec();
        pipe.vae_tiling = tiling;
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
        .map(|mut plan| {
            let [_, _, _, h, w] = pipe.latent_shape(p);
            plan.vae_tiling = tiling.filter(|t| pipe.vae.uses_tiling(h, w, t));
            plan
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
        match (p.guidance_scale_2, &self.expert_2) {
            (Some(_), None) => {
                return bad(
                    "guidance_scale_2",
                    "only two-expert Wan 2.2 folders (boundary_ratio and transformer_2 in model_index.json) have a second guidance scale (diffusers raises too)".into(),
                )
            }
            (Some(g), Some(_)) if !g.is_finite() => return bad("guidance_scale_2", format!("{g} is not a number")),
            _ => {}
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
        let experts = self.experts_of(p, sched.timesteps())?;
        progress.stage("denoising", n - first);
        let mut latents = latents;
        // Runs of steps with the same expert: one expert's weights on the device at a time, each
        // run its own memory phase (the latents and the scheduler's history carry over).
        let mut start = first;
        while start < n {
            let k = experts[start];
            let end = (start..n).find(|&i| experts[i] != k).unwrap_or(n);
            let transformer = self.expert(k)?;
            // diffusers guides iff guidance_scale > 1 (then the negative prompt is encoded); the
            // low-noise expert then guides with guidance_scale_2 whatever its value.
            let guidance = match k {
                0 => super::denoise::guidance(p.guidance_scale, embeds.dim(0)),
                _ => (embeds.dim(0) == 2).then(|| p.guidance_scale_2.unwrap_or(p.guidance_scale)),
            };
            let den = WanSteps {
                transformer: &transformer,
                first: start,
                contexts: (0..embeds.dim(0)).map(|r| transformer.prepare_context(&embeds.narrow0(r, 1)?)).collect::<Result<Vec<_>>>()?,
                timesteps: sched.timesteps()[start..end].to_vec(),
                current: Default::default(),
                guidance,
            };
            latents = super::denoise::denoise_loop(&den, sched.as_mut(), latents, start..end, progress, observe)?;
            // The expert's weights and activations are gone: the next expert (or the decode's
            // caches) get buffers of their own instead of sharing (and keeping) these.
            drop(den);
            drop(transformer);
            self.gpu.next_schedule_phase()?;
            start = end;
        }
        Ok(latents)
    }

    /// Final latents → frames: de-normalised, decoded chunk by chunk (each chunk's frames read
    /// back as it is made, so the whole video never sits on the device).
    fn decode(&self, latents: &Tensor, progress: &mut dyn Progress) -> Result<Frames> {
        let z = self.vae.denormalize(latents)?;
        if let Some(t) = self.vae_tiling.filter(|t| self.vae.uses_tiling(z.dim(3), z.dim(4), t)) {
            progress.note(&format!(
                "the VAE decodes in {}×{}-pixel tiles blended as diffusers' vae.enable_tiling() does (the untiled decode does not fit the memory budget)",
                t.tile_sample_min_width, t.tile_sample_min_height
            ));
            progress.stage("decoding (tiled)", self.vae.tiles(z.dim(3), z.dim(4), &t)? * z.dim(2));
            let v = self.vae.decode_tiled_with(&z, &t, &mut || {
                progress.check_cancelled()?;
                progress.tick();
                Ok(())
            })?;
            let mut out = Frames::empty();
            // A planning device reads nothing back: its tiled decode has sizes but no data.
            if !self.gpu.is_planning() {
                out.push_rgb(&v.data, v.frames, v.height, v.width, true);
            }
            return Ok(out);
        }
        progress.stage("decoding", z.dim(2));
        let mut out = Frames::empty();
        self.vae.decode_with(&z, &mut |chunk| {
            progress.check_cancelled()?;
            let (n, h, w) = (chunk.dim(0), chunk.dim(2), chunk.dim(3));
            if !self.gpu.is_planning() {
                out.push_rgb(&chunk.to_f32()?, n, h, w, true);
            }
            progress.tick();
            Ok(())
        })?;
        Ok(out)
    }

    fn use_plan(&mut self, plan: &MemoryPlan) -> Result<()> {
        self.streamed = plan.streamed().to_vec();
        self.vae_tiling = plan.vae_tiling;
        self.gpu.install_schedule(&plan.schedule)?;
        self.schedule = Some(plan.schedule.clone());
        Ok(())
    }

    fn planned(&self) -> Option<&crate::gpu::schedule::Schedule> {
        self.schedule.as_ref()
    }
}
