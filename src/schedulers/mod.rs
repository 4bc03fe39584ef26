//! Noise schedulers with diffusers' exact math and timestep spacing: DDIM (what ModelScope and
//! Zeroscope ship), DPM-Solver++ multistep, Euler, PNDM (what Stable Diffusion 1.x ships),
//! UniPC multistep (what Wan ships, on flow-matching sigmas) and flow-matching Euler.
//!
//! The split follows the engine's rule that nothing is read back inside the denoising loop:
//! every per-step coefficient (ᾱ, σ, λ, solver weights) is a handful of scalars computed on the
//! host, replicating torch's float32 scalar arithmetic where diffusers does it in float32, and
//! the latent update is one fused `a·x + b·y (+ c·z)` dispatch on the device
//! ([`lincomb2`](crate::ops::elementwise::lincomb2) / [`lincomb3`](crate::ops::elementwise::lincomb3)).
//! DPM-Solver's and UniPC's histories (previous data predictions, UniPC's last sample) stay on
//! the device; [`SchedulerState`] is how a checkpoint takes and gives them back.
//!
//! Steps are addressed by their index into [`Scheduler::timesteps`] (diffusers tracks the same
//! index internally as `step_index`; pipelines that start part-way, like video-to-video, call
//! `set_begin_index`, which is the index passed here).

pub mod config;
mod ddim;
mod dpm_solver;
mod euler;
mod euler_ancestral;
mod flow_match_euler;
mod sigmas;
mod pndm;
mod spacing;
mod threshold;
mod unipc;

pub use config::{FinalSigmas, PredictionType, SchedulerConfig, TimestepSpacing};
pub use ddim::DdimScheduler;
pub use dpm_solver::DpmSolverMultistepScheduler;
/// The name version-1 checkpoint files' single history tensor (always DPM-Solver's) has now.
pub(crate) use dpm_solver::HISTORY as DPM_SOLVER_HISTORY;
pub use euler::EulerDiscreteScheduler;
pub use euler_ancestral::EulerAncestralDiscreteScheduler;
pub use flow_match_euler::FlowMatchEulerDiscreteScheduler;
pub use pndm::PndmScheduler;
pub use unipc::UniPcMultistepScheduler;

use crate::error::{Error, Result};
use crate::latents::randn::TorchGenerator;
use crate::latents::NoiseDtype;
use crate::tensor::Tensor;
use std::path::Path;

pub trait Scheduler {
    fn kind(&self) -> SchedulerKind;
    /// Builds the inference schedule and clears any multistep history.
    fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<()>;
    /// diffusers' `scheduler.timesteps`: integers for DDIM, DPM-Solver and UniPC (exact in f32;
    /// UniPC's flow timesteps are `σ·1000` truncated toward zero, as its int64 cast does), float
    /// for Euler and FlowMatchEuler (fractional). This is what the denoiser is given.
    fn timesteps(&self) -> &[f32];
    /// diffusers' `scheduler.sigmas` (one more than the timesteps) for the sigma-based classes
    /// (DPM-Solver, Euler, UniPC, FlowMatchEuler); None for DDIM and PNDM.
    fn schedule_sigmas(&self) -> Option<&[f32]> {
        None
    }
    /// Scale of the initial noise: `latents = randn · init_noise_sigma`.
    fn init_noise_sigma(&self) -> f32;
    /// The UNet input for step `step` (Euler divides by √(σ²+1); the others return `sample`).
    fn scale_model_input(&self, sample: &Tensor, step: usize) -> Result<Tensor>;
    /// `scheduler.step(model_output, timesteps[step], sample).prev_sample` (DDIM with eta = 0).
    fn step(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Result<Tensor>;
    /// `scheduler.add_noise(original, noise, timesteps[step])`: the noised start of a
    /// video-to-video run that begins at `step`.
    fn add_noise(&self, original: &Tensor, noise: &Tensor, step: usize) -> Result<Tensor>;
    /// A copy with the same schedule and history (Python's `copy.deepcopy(scheduler)`, which
    /// Text2Video-Zero takes half-way through); None where not implemented.
    fn boxed_clone(&self) -> Option<Box<dyn Scheduler>> {
        None
    }
    /// Whether `step` draws fresh noise (sde-dpmsolver++, Euler ancestral): such a scheduler
    /// refuses to step until [`set_generator`](Self::set_generator) has given it the stream.
    fn is_stochastic(&self) -> bool {
        false
    }
    /// The torch CPU generator a stochastic `step` draws its noise from, continuing the stream
    /// exactly where diffusers' pipeline leaves it: diffusers passes the pipeline's one
    /// `generator` to `scheduler.step`, after `prepare_latents` has drawn the initial latents
    /// (text-to-video: `randn(latent_shape)`; video-to-video: the VAE posterior's sample, then
    /// `add_noise`'s noise). So a pipeline seeds `TorchGenerator::new(seed)`, draws what it
    /// draws before the loop from that generator, and hands it over here (see [`StepNoise`]
    /// for the dtype and the layout diffusers steps in). Every step draws one
    /// `randn(model_output.shape)`, the last step too. Ignored by deterministic schedulers.
    fn set_generator(&mut self, noise: StepNoise) {
        let _ = noise;
    }
    /// The pipelines' `eta` (η of the DDIM paper): diffusers passes it to `scheduler.step` only
    /// when the step takes it (DDIM) and ignores it otherwise. Returns whether this scheduler
    /// uses it; with η > 0 DDIM draws noise every step ([`is_stochastic`](Self::is_stochastic)).
    fn set_eta(&mut self, eta: f32) -> bool {
        let _ = eta;
        false
    }
    /// Hands back the generator [`set_generator`](Self::set_generator) gave, at its current
    /// position (Text2Video-Zero draws its forward-diffusion noise between two loops).
    fn take_generator(&mut self) -> Option<StepNoise> {
        None
    }
    /// Whether [`saved_state`](Self::saved_state) holds everything a loop resumed part-way needs
    /// (checkpoints before the last step are only taken and restored then). A scheduler whose
    /// history is not captured must keep the default, or resumed runs would silently differ.
    fn resumable(&self) -> bool {
        false
    }
    /// What a resumed loop needs besides the latents: the multistep history left by the last
    /// step run (DPM-Solver's previous data prediction; UniPC's two data predictions, last
    /// sample and order counters). None for one-step schedulers and before the first step.
    fn saved_state(&self) -> Option<SchedulerState> {
        None
    }
    /// Puts back what [`saved_state`](Self::saved_state) returned (after `set_timesteps`), so
    /// that `step(.., state.step + 1, ..)` computes what the uninterrupted loop would.
    fn restore_state(&mut self, state: SchedulerState) -> Result<()> {
        Err(Error::Other(format!("{} keeps no history to restore (step {})", self.kind().class_name(), state.step)))
    }
}

/// What a stochastic scheduler draws its per-step noise from: the pipeline's torch generator,
/// the dtype torch draws in (Euler ancestral: the model output's, float16 when the diffusers
/// pipeline runs in float16; DPM-Solver's SDE: always float32), and the layout diffusers
/// steps in. ModelScope's pipelines (TextToVideoSD, VideoToVideoSD) call `scheduler.step` on
/// latents reshaped to (B·F, C, h, w), so the noise comes in frames-first order while t2v steps
/// on (B, C, F, h, w): [`frames_first`](Self::frames_first) permutes each draw.
#[derive(Clone)]
pub struct StepNoise {
    gen: TorchGenerator,
    dtype: NoiseDtype,
    frames_first: bool,
}

impl StepNoise {
    /// Noise drawn in the sample's own layout (a scheduler stepping what diffusers steps).
    pub fn new(gen: TorchGenerator, dtype: NoiseDtype) -> StepNoise {
        StepNoise { gen, dtype, frames_first: false }
    }

    /// The generator at its current position.
    pub fn into_generator(self) -> TorchGenerator {
        self.gen
    }

    /// Samples are (B, C, F, h, w) and diffusers steps them as (B·F, C, h, w).
    pub fn frames_first(mut self) -> StepNoise {
        self.frames_first = true;
        self
    }

    /// `randn_tensor(sample.shape, generator, dtype)` in diffusers' step layout, uploaded in
    /// the sample's; `float32` forces torch's float32 draw (DPM-Solver's SDE).
    pub(crate) fn draw(&mut self, sample: &Tensor, float32: bool) -> Result<Tensor> {
        let n = sample.numel();
        let z: Vec<f32> = match if float32 { NoiseDtype::Float32 } else { self.dtype } {
            NoiseDtype::Float32 => self.gen.randn(n),
            NoiseDtype::Float16 => self.gen.randn_f16(n).into_iter().map(f32::from).collect(),
            NoiseDtype::Bfloat16 => self.gen.randn_bf16(n).into_iter().map(f32::from).collect(),
        };
        let z = match (self.frames_first, sample.shape()) {
            (false, _) => z,
            (true, &[b, c, f, h, w]) => {
                let hw = h * w;
                let mut out = vec![0f32; n];
                for bi in 0..b {
                    for fi in 0..f {
                        for ci in 0..c {
                            let src = ((bi * f + fi) * c + ci) * hw;
                            let dst = ((bi * c + ci) * f + fi) * hw;
                            out[dst..dst + hw].copy_from_slice(&z[src..src + hw]);
                        }
                    }
                }
                out
            }
            (true, s) => return Err(Error::Other(format!("frames-first step noise needs a (B, C, F, h, w) sample, got {s:?}"))),
        };
        Tensor::from_f32(sample.gpu(), sample.shape(), &z)
    }
}

/// A multistep scheduler's history between two steps, as [`Scheduler::saved_state`] gives it
/// and [`Scheduler::restore_state`] takes it back: named device tensors and named integers.
/// The names belong to the scheduler class (a checkpoint never changes class); restoring
/// checks them and refuses a state that lacks one it needs.
#[derive(Debug, Clone)]
pub struct SchedulerState {
    /// The last step run: the state belongs to it and the next step is `step + 1`.
    pub step: usize,
    pub scalars: Vec<(String, i64)>,
    pub tensors: Vec<(String, Tensor)>,
}

impl SchedulerState {
    pub fn new(step: usize) -> SchedulerState {
        SchedulerState { step, scalars: Vec::new(), tensors: Vec::new() }
    }

    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    pub fn scalar(&self, name: &str) -> Option<i64> {
        self.scalars.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }

    /// Refuses names the class does not know (a state of another class or version).
    fn check_names(&self, class: &str, scalars: &[&str], tensors: &[&str]) -> Result<()> {
        let bad = self.scalars.iter().map(|(n, _)| n).filter(|n| !scalars.contains(&n.as_str()));
        let bad: Vec<&String> = bad.chain(self.tensors.iter().map(|(n, _)| n).filter(|n| !tensors.contains(&n.as_str()))).collect();
        if !bad.is_empty() {
            return Err(Error::Other(format!(
                "{class}: saved state has unknown entries {bad:?} (expected scalars {scalars:?}, tensors {tensors:?})"
            )));
        }
        Ok(())
    }
}

/// The schedulers this crate implements, by the names users write. Most are one diffusers class
/// each; `dpm++-karras`, `dpm++-sde` and `dpm++-sde-karras` are DPMSolverMultistepScheduler with
/// `use_karras_sigmas=True` and/or `algorithm_type="sde-dpmsolver++"` passed to its
/// `from_config` (the UIs' "DPM++ 2M Karras", "DPM++ 2M SDE", "DPM++ 2M SDE Karras"), and
/// `euler-a` is EulerAncestralDiscreteScheduler.
///
/// On a flow-matching model (see [`SchedulerConfig::is_flow`]: Wan's UniPC config with
/// `use_flow_sigmas`, or a FlowMatchEuler config) `euler` means flow-matching Euler with the
/// model's shift, as diffusers users write `FlowMatchEulerDiscreteScheduler(shift=flow_shift)`,
/// and `unipc` / `dpm++` mean UniPC / DPM-Solver++ on flow sigmas with that shift (the SDE and
/// Karras variants are refused there, with the reason); [`from_config`] resolves this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum SchedulerKind {
    Ddim,
    DpmSolverMultistep,
    EulerDiscrete,
    Pndm,
    UniPcMultistep,
    FlowMatchEuler,
    /// DPM-Solver++ on Karras sigmas.
    DpmSolverKarras,
    /// SDE-DPM-Solver++ (stochastic).
    DpmSolverSde,
    /// SDE-DPM-Solver++ on Karras sigmas (stochastic).
    DpmSolverSdeKarras,
    /// EulerAncestralDiscreteScheduler (stochastic).
    EulerAncestral,
}

impl SchedulerKind {
    /// The plain class of each diffusers class comes first (what [`from_class_name`] finds).
    pub const ALL: [SchedulerKind; 10] = [
        SchedulerKind::Ddim,
        SchedulerKind::DpmSolverMultistep,
        SchedulerKind::EulerDiscrete,
        SchedulerKind::Pndm,
        SchedulerKind::UniPcMultistep,
        SchedulerKind::FlowMatchEuler,
        SchedulerKind::DpmSolverKarras,
        SchedulerKind::DpmSolverSde,
        SchedulerKind::DpmSolverSdeKarras,
        SchedulerKind::EulerAncestral,
    ];

    pub fn class_name(self) -> &'static str {
        match self {
            SchedulerKind::Ddim => "DDIMScheduler",
            SchedulerKind::DpmSolverMultistep
            | SchedulerKind::DpmSolverKarras
            | SchedulerKind::DpmSolverSde
            | SchedulerKind::DpmSolverSdeKarras => "DPMSolverMultistepScheduler",
            SchedulerKind::EulerDiscrete => "EulerDiscreteScheduler",
            SchedulerKind::Pndm => "PNDMScheduler",
            SchedulerKind::UniPcMultistep => "UniPCMultistepScheduler",
            SchedulerKind::FlowMatchEuler => "FlowMatchEulerDiscreteScheduler",
            SchedulerKind::EulerAncestral => "EulerAncestralDiscreteScheduler",
        }
    }

    /// The short name users write (`scheduler: dpm++` in config.yaml).
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Ddim => "ddim",
            SchedulerKind::DpmSolverMultistep => "dpm++",
            SchedulerKind::EulerDiscrete => "euler",
            SchedulerKind::Pndm => "pndm",
            SchedulerKind::UniPcMultistep => "unipc",
            SchedulerKind::FlowMatchEuler => "flow-euler",
            SchedulerKind::DpmSolverKarras => "dpm++-karras",
            SchedulerKind::DpmSolverSde => "dpm++-sde",
            SchedulerKind::DpmSolverSdeKarras => "dpm++-sde-karras",
            SchedulerKind::EulerAncestral => "euler-a",
        }
    }

    pub fn from_class_name(class: &str) -> Option<SchedulerKind> {
        SchedulerKind::ALL.into_iter().find(|k| k.class_name() == class)
    }
}

impl std::fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SchedulerKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let k = s.trim().to_ascii_lowercase();
        match k.as_str() {
            "ddim" => Ok(SchedulerKind::Ddim),
            "dpm++" | "dpm" | "dpmsolver" | "dpmsolver++" | "dpm-solver++" | "dpmpp" | "dpm++2m" | "dpm++ 2m" | "dpmsolvermultistep" => {
                Ok(SchedulerKind::DpmSolverMultistep)
            }
            "dpm++-karras" | "dpm++ 2m karras" | "dpm++2m-karras" | "dpmpp-karras" | "dpmpp_2m_karras" => Ok(SchedulerKind::DpmSolverKarras),
            "dpm++-sde" | "dpm++ 2m sde" | "dpm++2m-sde" | "dpmpp-sde" | "dpmpp_2m_sde" | "sde-dpmsolver++" => Ok(SchedulerKind::DpmSolverSde),
            "dpm++-sde-karras" | "dpm++ 2m sde karras" | "dpm++2m-sde-karras" | "dpmpp-sde-karras" | "dpmpp_2m_sde_karras" => {
                Ok(SchedulerKind::DpmSolverSdeKarras)
            }
            "euler-a" | "euler_a" | "euler a" | "euler-ancestral" | "eulerancestral" | "eulerancestraldiscrete" => {
                Ok(SchedulerKind::EulerAncestral)
            }
            "euler" | "eulerdiscrete" => Ok(SchedulerKind::EulerDiscrete),
            "pndm" | "plms" => Ok(SchedulerKind::Pndm),
            "unipc" | "unipc-multistep" | "unipcmultistep" => Ok(SchedulerKind::UniPcMultistep),
            "flow-euler" | "flow_euler" | "floweuler" | "flowmatch-euler" | "flow-match-euler" | "flowmatcheuler"
            | "flowmatcheulerdiscrete" => Ok(SchedulerKind::FlowMatchEuler),
            _ => SchedulerKind::from_class_name(s.trim())
                .ok_or_else(|| format!("unknown scheduler '{s}'; choose one of: {}", CHOOSE_NAMES)),
        }
    }
}

impl TryFrom<String> for SchedulerKind {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

/// Reads `scheduler_config.json` and builds its `_class_name`, or `kind` from the same file
/// the way diffusers' `Kind.from_config(pipe.scheduler.config)` does (see [`config`]).
pub fn from_config_file(path: &Path, kind: Option<SchedulerKind>) -> Result<Box<dyn Scheduler>> {
    from_config(&SchedulerConfig::from_file(path)?, kind)
}

/// The generator a text-to-video pipeline hands a stochastic scheduler
/// ([`Scheduler::set_generator`]): `torch.Generator().manual_seed(seed)` after the initial
/// latents' `randn(drawn, dtype=dtype)`, which diffusers' `prepare_latents` draws from the same
/// generator before the first `scheduler.step(..., generator=generator)`.
pub fn generator_after_latents(seed: u64, drawn: usize, dtype: NoiseDtype) -> TorchGenerator {
    let mut gen = TorchGenerator::new(seed);
    match dtype {
        NoiseDtype::Float32 => drop(gen.randn(drawn)),
        NoiseDtype::Float16 => drop(gen.randn_f16(drawn)),
        NoiseDtype::Bfloat16 => drop(gen.randn_bf16(drawn)),
    }
    gen
}

/// Every user name, for messages.
const CHOOSE_NAMES: &str = "ddim, dpm++, dpm++-karras, dpm++-sde, dpm++-sde-karras, euler, euler-a, pndm, unipc, flow-euler";

pub fn from_config(cfg: &SchedulerConfig, kind: Option<SchedulerKind>) -> Result<Box<dyn Scheduler>> {
    const CHOOSE: &str = "choose one of ddim, dpm++, dpm++-karras, dpm++-sde, dpm++-sde-karras, euler, euler-a, pndm, unipc, flow-euler";
    let kind = match kind {
        Some(k) => k,
        None => {
            let class = cfg.class_name.as_deref().ok_or_else(|| cfg.bad("_class_name", format!("missing; {CHOOSE}")))?;
            SchedulerKind::from_class_name(class).ok_or_else(|| {
                cfg.bad("_class_name", format!("{class} is not implemented; {CHOOSE} (they run on this file's schedule)"))
            })?
        }
    };
    let file_kind = cfg.class_name.as_deref().and_then(SchedulerKind::from_class_name);
    Ok(match kind {
        SchedulerKind::Ddim => Box::new(DdimScheduler::new(not_flow(cfg, kind)?)?),
        // On a flow model DPM-Solver++ runs its flow sigmas (the file's use_flow_sigmas /
        // flow_prediction / flow_shift carry over in from_config, as in diffusers).
        SchedulerKind::DpmSolverMultistep => Box::new(DpmSolverMultistepScheduler::new(&multistep_on(cfg, file_kind))?),
        // `from_config(config, use_karras_sigmas=True)` / `algorithm_type="sde-dpmsolver++"`:
        // an override replaces the file's value and its rival sigma flags stay as the file has
        // them (diffusers then raises if two are on; so does DpmSolverMultistepScheduler::new).
        SchedulerKind::DpmSolverKarras | SchedulerKind::DpmSolverSde | SchedulerKind::DpmSolverSdeKarras => {
            let mut c = multistep_on(cfg, file_kind);
            if matches!(kind, SchedulerKind::DpmSolverKarras | SchedulerKind::DpmSolverSdeKarras) {
                c.use_karras_sigmas = Some(true);
            }
            if matches!(kind, SchedulerKind::DpmSolverSde | SchedulerKind::DpmSolverSdeKarras) {
                c.algorithm_type = Some("sde-dpmsolver++".into());
            }
            Box::new(DpmSolverMultistepScheduler::new(&c)?)
        }
        SchedulerKind::EulerAncestral => Box::new(EulerAncestralDiscreteScheduler::new(not_flow(cfg, kind)?)?),
        // A flow model's `euler` is flow-matching Euler with its shift.
        SchedulerKind::EulerDiscrete if cfg.is_flow() => Box::new(FlowMatchEulerDiscreteScheduler::new(&as_flow_euler(cfg))?),
        SchedulerKind::EulerDiscrete => Box::new(EulerDiscreteScheduler::new(cfg)?),
        SchedulerKind::Pndm => Box::new(PndmScheduler::new(not_flow(cfg, kind)?)?),
        // A FlowMatchEuler file carries the shift as `shift` and no flow flags: UniPC runs it on
        // flow sigmas (diffusers' from_config would silently fall back to betas).
        SchedulerKind::UniPcMultistep => Box::new(UniPcMultistepScheduler::new(&multistep_on(cfg, file_kind))?),
        SchedulerKind::FlowMatchEuler if cfg.is_flow() => Box::new(FlowMatchEulerDiscreteScheduler::new(&as_flow_euler(cfg))?),
        SchedulerKind::FlowMatchEuler => Box::new(FlowMatchEulerDiscreteScheduler::new(cfg)?),
    })
}

/// The config a multistep solver (UniPC, DPM-Solver++) reads: the file's own, or for a
/// FlowMatchEuler file (which carries its shift as `shift` and no flow flags) the flow sigmas
/// with that shift. diffusers' from_config would silently fall back to betas there.
fn multistep_on(cfg: &SchedulerConfig, file_kind: Option<SchedulerKind>) -> SchedulerConfig {
    let mut c = cfg.clone();
    if file_kind == Some(SchedulerKind::FlowMatchEuler) {
        c.use_flow_sigmas = Some(true);
        c.prediction_type = Some("flow_prediction".into());
        c.flow_shift = Some(cfg.model_flow_shift());
    }
    c
}

/// A flow model's config as FlowMatchEuler reads it: diffusers'
/// `FlowMatchEulerDiscreteScheduler.from_config(config, shift=flow_shift)`.
fn as_flow_euler(cfg: &SchedulerConfig) -> SchedulerConfig {
    let mut c = cfg.clone();
    c.shift = Some(cfg.model_flow_shift());
    c
}

/// Refuses a noise-prediction scheduler on a flow-matching model's config, naming the key that
/// makes it one (its betas would be defaults that have nothing to do with the model).
fn not_flow(cfg: &SchedulerConfig, kind: SchedulerKind) -> Result<&SchedulerConfig> {
    if !cfg.is_flow() {
        return Ok(cfg);
    }
    let why = if cfg.prediction_type.as_deref() == Some("flow_prediction") {
        "prediction_type"
    } else if cfg.use_flow_sigmas == Some(true) {
        "use_flow_sigmas"
    } else {
        "_class_name"
    };
    Err(cfg.bad(
        why,
        format!("this is a flow-matching model's scheduler config; {} does not run flow matching here (use unipc, dpm++ or euler)", kind.name()),
    ))
}

/// Checks `num_inference_steps` against the training schedule (diffusers' DDIM raises the same;
/// DPM-Solver and Euler would silently build duplicate timesteps).
fn check_num_steps(n: usize, train: usize) -> Result<()> {
    if n == 0 || n > train {
        return Err(Error::Other(format!("num_inference_steps must be between 1 and {train} (num_train_timesteps), got {n}")));
    }
    Ok(())
}

/// Checks a step index against the schedule set by `set_timesteps`.
fn check_step(op: &str, step: usize, len: usize) -> Result<()> {
    if len == 0 {
        return Err(Error::Other(format!("scheduler {op}: call set_timesteps first")));
    }
    if step >= len {
        return Err(Error::Other(format!("scheduler {op}: step {step} is past the last of {len} timesteps")));
    }
    Ok(())
}
