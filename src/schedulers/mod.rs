//! Noise schedulers with diffusers' exact math and timestep spacing: DDIM (what ModelScope and
//! Zeroscope ship), DPM-Solver++ multistep, Euler, and PNDM (what Stable Diffusion 1.x ships).
//!
//! The split follows the engine's rule that nothing is read back inside the denoising loop:
//! every per-step coefficient (ᾱ, σ, λ, solver weights) is a handful of scalars computed on the
//! host, replicating torch's float32 scalar arithmetic where diffusers does it in float32, and
//! the latent update is one fused `a·x + b·y (+ c·z)` dispatch on the device
//! ([`lincomb2`](crate::ops::elementwise::lincomb2) / [`lincomb3`](crate::ops::elementwise::lincomb3)).
//! DPM-Solver's history (its previous data prediction) stays on the device.
//!
//! Steps are addressed by their index into [`Scheduler::timesteps`] (diffusers tracks the same
//! index internally as `step_index`; pipelines that start part-way, like video-to-video, call
//! `set_begin_index`, which is the index passed here).

pub mod config;
mod ddim;
mod dpm_solver;
mod euler;
mod pndm;
mod spacing;

pub use config::{FinalSigmas, PredictionType, SchedulerConfig, TimestepSpacing};
pub use ddim::DdimScheduler;
pub use dpm_solver::DpmSolverMultistepScheduler;
pub use euler::EulerDiscreteScheduler;
pub use pndm::PndmScheduler;

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::Path;

pub trait Scheduler {
    fn kind(&self) -> SchedulerKind;
    /// Builds the inference schedule and clears any multistep history.
    fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<()>;
    /// diffusers' `scheduler.timesteps`: integers for DDIM and DPM-Solver (exact in f32), float
    /// for Euler (its linspace timesteps are fractional). This is what the UNet is given.
    fn timesteps(&self) -> &[f32];
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
    /// Whether [`saved_state`](Self::saved_state) holds everything a loop resumed part-way needs
    /// (checkpoints before the last step are only taken and restored then). A scheduler whose
    /// history is not captured must keep the default, or resumed runs would silently differ.
    fn resumable(&self) -> bool {
        false
    }
    /// What a resumed loop needs besides the latents: the multistep history (DPM-Solver's
    /// previous data prediction and the step it belongs to). None for one-step schedulers.
    fn saved_state(&self) -> Option<(usize, &Tensor)> {
        None
    }
    /// Puts back what [`saved_state`](Self::saved_state) returned (after `set_timesteps`).
    fn restore_state(&mut self, step: usize, _history: Tensor) -> Result<()> {
        Err(Error::Other(format!("{} keeps no history to restore (step {step})", self.kind().class_name())))
    }
}

/// The scheduler classes this crate implements (user names: `ddim`, `dpm++`, `euler`, `pndm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum SchedulerKind {
    Ddim,
    DpmSolverMultistep,
    EulerDiscrete,
    Pndm,
}

impl SchedulerKind {
    pub const ALL: [SchedulerKind; 4] =
        [SchedulerKind::Ddim, SchedulerKind::DpmSolverMultistep, SchedulerKind::EulerDiscrete, SchedulerKind::Pndm];

    pub fn class_name(self) -> &'static str {
        match self {
            SchedulerKind::Ddim => "DDIMScheduler",
            SchedulerKind::DpmSolverMultistep => "DPMSolverMultistepScheduler",
            SchedulerKind::EulerDiscrete => "EulerDiscreteScheduler",
            SchedulerKind::Pndm => "PNDMScheduler",
        }
    }

    /// The short name users write (`scheduler: dpm++` in config.yaml).
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Ddim => "ddim",
            SchedulerKind::DpmSolverMultistep => "dpm++",
            SchedulerKind::EulerDiscrete => "euler",
            SchedulerKind::Pndm => "pndm",
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
            "dpm++" | "dpmsolver++" | "dpm-solver++" | "dpmpp" | "dpm++2m" | "dpm++ 2m" | "dpmsolvermultistep" => {
                Ok(SchedulerKind::DpmSolverMultistep)
            }
            "euler" | "eulerdiscrete" => Ok(SchedulerKind::EulerDiscrete),
            "pndm" | "plms" => Ok(SchedulerKind::Pndm),
            _ => SchedulerKind::from_class_name(s.trim())
                .ok_or_else(|| format!("unknown scheduler '{s}'; choose one of: ddim, dpm++, euler, pndm")),
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

pub fn from_config(cfg: &SchedulerConfig, kind: Option<SchedulerKind>) -> Result<Box<dyn Scheduler>> {
    let kind = match kind {
        Some(k) => k,
        None => {
            let class = cfg.class_name.as_deref().ok_or_else(|| {
                cfg.bad("_class_name", "missing; choose a scheduler explicitly (ddim, dpm++, euler, pndm)")
            })?;
            SchedulerKind::from_class_name(class).ok_or_else(|| {
                cfg.bad(
                    "_class_name",
                    format!("{class} is not implemented; choose one of ddim, dpm++, euler, pndm (they run on this file's betas)"),
                )
            })?
        }
    };
    Ok(match kind {
        SchedulerKind::Ddim => Box::new(DdimScheduler::new(cfg)?),
        SchedulerKind::DpmSolverMultistep => Box::new(DpmSolverMultistepScheduler::new(cfg)?),
        SchedulerKind::EulerDiscrete => Box::new(EulerDiscreteScheduler::new(cfg)?),
        SchedulerKind::Pndm => Box::new(PndmScheduler::new(cfg)?),
    })
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
