//! diffusers' `EulerAncestralDiscreteScheduler` ("Euler a"): Euler down to σ_down, then fresh
//! noise scaled by σ_up drawn from the pipeline's torch generator on every step.

use super::config::{PredictionType, SchedulerConfig, TimestepSpacing};
use super::{check_num_steps, check_step, spacing, Scheduler, SchedulerKind, StepNoise};
use crate::error::{Error, Result};
use crate::ops::elementwise::{lincomb2, lincomb3, scale};
use crate::tensor::Tensor;

const CLASS: &str = "EulerAncestralDiscreteScheduler";

pub struct EulerAncestralDiscreteScheduler {
    /// √((1−ᾱ)/ᾱ) for every training timestep, in torch's float32.
    train_sigmas: Vec<f32>,
    prediction: PredictionType,
    spacing: TimestepSpacing,
    steps_offset: i64,
    timesteps: Vec<f32>,
    /// One more than the timesteps, the last 0.
    sigmas: Vec<f32>,
    init_noise_sigma: f32,
    generator: Option<StepNoise>,
}

impl EulerAncestralDiscreteScheduler {
    pub fn new(cfg: &SchedulerConfig) -> Result<EulerAncestralDiscreteScheduler> {
        let prediction = cfg.prediction_type(CLASS)?;
        if prediction == PredictionType::Sample {
            return Err(cfg.bad("prediction_type", format!("\"sample\" is not supported by {CLASS} (diffusers raises NotImplementedError)")));
        }
        let train_sigmas: Vec<f32> = cfg.alphas_cumprod_for_sigmas()?.iter().map(|&a| ((1.0 - a) / a).sqrt()).collect();
        let mut s = EulerAncestralDiscreteScheduler {
            prediction,
            spacing: cfg.timestep_spacing(TimestepSpacing::Linspace)?,
            steps_offset: cfg.steps_offset.unwrap_or(0),
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            init_noise_sigma: 1.0,
            generator: None,
            train_sigmas,
        };
        s.init_noise_sigma = s.noise_sigma_of(&s.train_sigmas);
        Ok(s)
    }

    /// `init_noise_sigma`: max σ, or √(max σ² + 1) for leading spacing (as Euler).
    fn noise_sigma_of(&self, sigmas: &[f32]) -> f32 {
        let max = sigmas.iter().copied().fold(0.0f32, f32::max);
        match self.spacing {
            TimestepSpacing::Linspace | TimestepSpacing::Trailing => max,
            TimestepSpacing::Leading => (max * max + 1.0).sqrt(),
        }
    }
}

impl Scheduler for EulerAncestralDiscreteScheduler {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::EulerAncestral
    }

    fn set_timesteps(&mut self, n: usize) -> Result<()> {
        let train = self.train_sigmas.len();
        check_num_steps(n, train)?;
        let ts = spacing::euler(self.spacing, train, n, self.steps_offset);
        self.sigmas = ts.iter().map(|&t| spacing::interp(t as f64, &self.train_sigmas) as f32).chain([0.0]).collect();
        self.timesteps = ts;
        self.init_noise_sigma = self.noise_sigma_of(&self.sigmas);
        Ok(())
    }

    fn timesteps(&self) -> &[f32] {
        &self.timesteps
    }

    fn schedule_sigmas(&self) -> Option<&[f32]> {
        Some(&self.sigmas)
    }

    fn init_noise_sigma(&self) -> f32 {
        self.init_noise_sigma
    }

    fn is_stochastic(&self) -> bool {
        true
    }

    fn set_generator(&mut self, noise: StepNoise) {
        self.generator = Some(noise);
    }

    fn scale_model_input(&self, sample: &Tensor, step: usize) -> Result<Tensor> {
        check_step("scale_model_input", step, self.timesteps.len())?;
        let s = self.sigmas[step];
        let c = (s * s + 1.0).sqrt();
        scale(sample, (1.0 / c as f64) as f32)
    }

    fn step(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Result<Tensor> {
        check_step("step", step, self.timesteps.len())?;
        if model_output.shape() != sample.shape() {
            return Err(Error::Other(format!(
                "{CLASS} step: model output {:?} and sample {:?} differ in shape",
                model_output.shape(),
                sample.shape()
            )));
        }
        let gen = self.generator.as_mut().ok_or_else(|| {
            Error::Other(format!("{CLASS} draws noise each step: set_generator must give it the pipeline's generator first"))
        })?;
        let (sigma, sigma_to) = (self.sigmas[step], self.sigmas[step + 1]);
        // float32 scalars as torch forms them on 0-dim tensors
        let sigma_up = (sigma_to * sigma_to * (sigma * sigma - sigma_to * sigma_to) / (sigma * sigma)).sqrt();
        let sigma_down = (sigma_to * sigma_to - sigma_up * sigma_up).sqrt();
        let dt = (sigma_down - sigma) as f64;
        let s = sigma as f64;
        // prev = x + dt·(x − x̂₀)/σ + σ_up·z, linear in (x, model_output, z).
        let (cx, cm) = match self.prediction {
            // x̂₀ = x − σ·ε  ⇒  (x − x̂₀)/σ = ε
            PredictionType::Epsilon => (1.0, dt),
            // x̂₀ = v·(−σ/√q) + x/q with q = σ² + 1
            _ => {
                let q = sigma * sigma + 1.0;
                let c_out = (-sigma / q.sqrt()) as f64;
                (1.0 + dt / s * (1.0 - 1.0 / q as f64), -c_out * dt / s)
            }
        };
        // randn_tensor(model_output.shape, dtype=model_output.dtype, generator=generator)
        let z = gen.draw(sample, false)?;
        lincomb3(sample, cx as f32, model_output, cm as f32, &z, sigma_up)
    }

    fn add_noise(&self, original: &Tensor, noise: &Tensor, step: usize) -> Result<Tensor> {
        check_step("add_noise", step, self.timesteps.len())?;
        lincomb2(original, 1.0, noise, self.sigmas[step])
    }
}
