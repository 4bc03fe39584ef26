//! diffusers' `FlowMatchEulerDiscreteScheduler`: Euler steps of a flow-matching ODE,
//! `x ← x + (σ_{i+1} − σ_i)·v`. What `--scheduler euler` means on a flow model (Wan).
//!
//! The shift is applied twice, as diffusers does: in `__init__` (float32, to the 1000 training
//! sigmas, which fixes σ_max and σ_min) and again in `set_timesteps` (float64, to the linspace
//! between them). Timesteps are `σ·1000` in float32, not integers. `shift_terminal`,
//! `invert_sigmas` and Karras/exponential/beta sigmas (converted after the shift, between the shifted
//! schedule's own ends) run. Refused, naming the key: dynamic shifting (WanPipeline passes no
//! `mu`, so diffusers raises), stochastic sampling (WanPipeline calls `step` without its
//! generator, so diffusers' noise comes from torch's unseeded global stream and no seed
//! reproduces it).
//!
//! diffusers casts each step's result to the model output's dtype; the model output here is
//! f32, so nothing is rounded further.

use super::config::SchedulerConfig;
use super::sigmas::SigmaSchedule;
use super::unipc::stretch_to_terminal;
use super::{check_num_steps, check_step, spacing, Scheduler, SchedulerKind};
use crate::error::Result;
use crate::ops::elementwise::lincomb2;
use crate::tensor::Tensor;

const CLASS: &str = "FlowMatchEulerDiscreteScheduler";

pub struct FlowMatchEulerDiscreteScheduler {
    num_train_timesteps: usize,
    shift: f64,
    shift_terminal: Option<f64>,
    /// `use_karras_sigmas` / `use_exponential_sigmas`.
    schedule: SigmaSchedule,
    invert_sigmas: bool,
    /// The shifted training schedule's ends (float32 values, as Python floats).
    sigma_max: f64,
    sigma_min: f64,
    timesteps: Vec<f32>,
    /// One more than the timesteps: the sigma each step lands on (0, or 1 when inverted).
    sigmas: Vec<f32>,
}

impl FlowMatchEulerDiscreteScheduler {
    pub fn new(cfg: &SchedulerConfig) -> Result<FlowMatchEulerDiscreteScheduler> {
        let schedule = SigmaSchedule::from_config(cfg, CLASS)?;
        if cfg.use_dynamic_shifting == Some(true) {
            return Err(cfg.bad(
                "use_dynamic_shifting",
                format!("true is not supported for {CLASS} (the pipeline would pass a resolution-dependent mu); use a fixed shift"),
            ));
        }
        if cfg.stochastic_sampling == Some(true) {
            return Err(cfg.bad(
                "stochastic_sampling",
                format!("true is not supported for {CLASS}: WanPipeline steps it without its generator, so diffusers draws that noise from torch's unseeded global stream and no seed reproduces it; remove the key or set it to false"),
            ));
        }
        match cfg.time_shift_type.as_deref().unwrap_or("exponential") {
            "exponential" | "linear" => {}
            o => return Err(cfg.bad("time_shift_type", format!("\"{o}\" is not one of \"exponential\", \"linear\""))),
        }
        let shift = cfg.shift.unwrap_or(1.0);
        if !(shift.is_finite() && shift > 0.0) {
            return Err(cfg.bad("shift", format!("must be a positive number, got {shift}")));
        }
        let shift_terminal = cfg.shift_terminal.filter(|&t| t != 0.0);
        if let Some(t) = shift_terminal {
            if !(t.is_finite() && t < 1.0) {
                return Err(cfg.bad("shift_terminal", format!("must be below 1, got {t}")));
            }
        }
        let train = cfg.num_train_timesteps()?;
        // __init__: sigmas = shift·s / (1 + (shift − 1)·s) over s = t/T, t = T … 1, in float32
        // (torch casts the Python scalars to float32).
        let init = |t: usize| -> f32 {
            let s = t as f32 / train as f32;
            (shift as f32 * s) / (1.0 + (shift - 1.0) as f32 * s)
        };
        Ok(FlowMatchEulerDiscreteScheduler {
            num_train_timesteps: train,
            shift,
            shift_terminal,
            schedule,
            invert_sigmas: cfg.invert_sigmas.unwrap_or(false),
            sigma_max: init(train) as f64,
            sigma_min: init(1) as f64,
            timesteps: Vec::new(),
            sigmas: Vec::new(),
        })
    }

    /// The sigmas of the current schedule (`scheduler.sigmas`), last one included.
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// The shift in use.
    pub fn shift(&self) -> f64 {
        self.shift
    }
}

impl Scheduler for FlowMatchEulerDiscreteScheduler {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::FlowMatchEuler
    }

    fn set_timesteps(&mut self, n: usize) -> Result<()> {
        let train = self.num_train_timesteps;
        check_num_steps(n, train)?;
        let t = train as f64;
        let shift = self.shift;
        // numpy float64: linspace of timesteps, /T, shifted again, optionally stretched.
        let mut s: Vec<f64> = spacing::linspace(self.sigma_max * t, self.sigma_min * t, n)
            .iter()
            .map(|&ts| ts / t)
            .map(|s| shift * s / (1.0 + (shift - 1.0) * s))
            .collect();
        if let Some(term) = self.shift_terminal {
            stretch_to_terminal(&mut s, term)?;
        }
        // FlowMatchEuler has no sigma_min/sigma_max config: the shifted schedule's own ends.
        if let Some(conv) = self.schedule.convert(s[s.len() - 1], s[0], n) {
            s = conv;
        }
        // torch float32 from here on.
        let mut sigmas: Vec<f32> = s.iter().map(|&s| s as f32).collect();
        if self.invert_sigmas {
            sigmas.iter_mut().for_each(|s| *s = 1.0 - *s);
        }
        self.timesteps = sigmas.iter().map(|&s| s * train as f32).collect();
        sigmas.push(if self.invert_sigmas { 1.0 } else { 0.0 });
        self.sigmas = sigmas;
        Ok(())
    }

    fn timesteps(&self) -> &[f32] {
        &self.timesteps
    }

    fn schedule_sigmas(&self) -> Option<&[f32]> {
        Some(&self.sigmas)
    }

    fn resumable(&self) -> bool {
        true // no history: the latents are the whole state
    }

    fn init_noise_sigma(&self) -> f32 {
        1.0 // the class has none; flow pipelines start from plain randn
    }

    fn scale_model_input(&self, sample: &Tensor, step: usize) -> Result<Tensor> {
        check_step("scale_model_input", step, self.timesteps.len())?;
        Ok(sample.clone())
    }

    fn step(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Result<Tensor> {
        check_step("step", step, self.timesteps.len())?;
        let dt = self.sigmas[step + 1] - self.sigmas[step]; // float32, as torch
        lincomb2(sample, 1.0, model_output, dt)
    }

    /// diffusers' `scale_noise` (this class's add_noise): σ·noise + (1 − σ)·sample.
    fn add_noise(&self, original: &Tensor, noise: &Tensor, step: usize) -> Result<Tensor> {
        check_step("add_noise", step, self.timesteps.len())?;
        let sigma = self.sigmas[step];
        lincomb2(original, 1.0 - sigma, noise, sigma)
    }

    fn boxed_clone(&self) -> Option<Box<dyn Scheduler>> {
        Some(Box::new(FlowMatchEulerDiscreteScheduler {
            timesteps: self.timesteps.clone(),
            sigmas: self.sigmas.clone(),
            ..*self
        }))
    }
}
