//! diffusers' `EulerDiscreteScheduler` (k-diffusion's Euler sampler, no churn: s_churn = 0), on
//! interpolated, Karras or exponential sigmas.

use super::config::{FinalSigmas, PredictionType, SchedulerConfig, TimestepSpacing};
use super::sigmas::{sigma_to_t, SigmaSchedule};
use super::{check_num_steps, check_step, spacing, Scheduler, SchedulerKind};
use crate::error::Result;
use crate::ops::elementwise::{lincomb2, scale};
use crate::tensor::Tensor;

const CLASS: &str = "EulerDiscreteScheduler";

pub struct EulerDiscreteScheduler {
    /// √((1−ᾱ)/ᾱ) for every training timestep, in torch's float32.
    train_sigmas: Vec<f32>,
    prediction: PredictionType,
    spacing: TimestepSpacing,
    steps_offset: i64,
    final_sigmas: FinalSigmas,
    /// `timestep_type: continuous` with v-prediction: the model sees t = 0.25·ln σ.
    continuous: bool,
    /// `interpolation_type: log_linear`: n + 1 sigmas log-linear from the largest training
    /// sigma to the smallest, whatever the timesteps (see `set_timesteps`).
    log_linear: bool,
    schedule: SigmaSchedule,
    /// `sigma_min` / `sigma_max` of the config: bounds of the Karras/exponential schedule
    /// (None: the interpolated schedule's own ends).
    sigma_bounds: (Option<f64>, Option<f64>),
    timesteps: Vec<f32>,
    /// One more than the timesteps: the sigma each step lands on.
    sigmas: Vec<f32>,
    init_noise_sigma: f32,
}

impl EulerDiscreteScheduler {
    pub fn new(cfg: &SchedulerConfig) -> Result<EulerDiscreteScheduler> {
        let log_linear = match cfg.interpolation_type.as_deref().unwrap_or("linear") {
            "linear" => false,
            "log_linear" => true,
            o => return Err(cfg.bad("interpolation_type", format!("\"{o}\" is not one of \"linear\", \"log_linear\""))),
        };
        let schedule = SigmaSchedule::from_config(cfg, CLASS)?;
        let prediction = cfg.prediction_type(CLASS)?;
        // "continuous" changes the timesteps only together with v_prediction (EDM-style 0.25·ln σ).
        let continuous = match cfg.timestep_type.as_deref().unwrap_or("discrete") {
            "discrete" => false,
            "continuous" => prediction == PredictionType::VPrediction,
            o => return Err(cfg.bad("timestep_type", format!("\"{o}\" is not one of \"discrete\", \"continuous\""))),
        };
        let train_sigmas: Vec<f32> = cfg.alphas_cumprod_for_sigmas()?.iter().map(|&a| ((1.0 - a) / a).sqrt()).collect();
        let spacing = cfg.timestep_spacing(TimestepSpacing::Linspace)?;
        let mut s = EulerDiscreteScheduler {
            prediction,
            spacing,
            steps_offset: cfg.steps_offset.unwrap_or(0),
            final_sigmas: cfg.final_sigmas()?,
            continuous,
            log_linear,
            schedule,
            sigma_bounds: (cfg.sigma_min, cfg.sigma_max),
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            init_noise_sigma: 1.0,
            train_sigmas,
        };
        s.init_noise_sigma = s.noise_sigma_of(&s.train_sigmas);
        Ok(s)
    }

    /// The sigmas of the current schedule (`scheduler.sigmas`), last one included.
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// diffusers' `init_noise_sigma` property: max σ, or √(max σ² + 1) for leading spacing.
    fn noise_sigma_of(&self, sigmas: &[f32]) -> f32 {
        let max = sigmas.iter().copied().fold(0.0f32, f32::max);
        match self.spacing {
            TimestepSpacing::Linspace | TimestepSpacing::Trailing => max,
            TimestepSpacing::Leading => (max * max + 1.0).sqrt(),
        }
    }
}

impl Scheduler for EulerDiscreteScheduler {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::EulerDiscrete
    }

    fn set_timesteps(&mut self, n: usize) -> Result<()> {
        let train = self.train_sigmas.len();
        check_num_steps(n, train)?;
        let ts = spacing::euler(self.spacing, train, n, self.steps_offset);
        let last = match self.final_sigmas {
            FinalSigmas::Zero => 0.0,
            FinalSigmas::SigmaMin => self.train_sigmas[0],
        };
        let interp: Vec<f64> = if self.log_linear {
            // torch.linspace(log σ_max, log σ_min, n + 1).exp() in float32: n + 1 sigmas for n
            // timesteps, so diffusers' last step lands on σ_min, not on the final sigma.
            let (a, b) = (self.train_sigmas[train - 1].ln(), self.train_sigmas[0].ln());
            torch_linspace_f32(a, b, n + 1).iter().map(|&l| l.exp() as f64).collect()
        } else {
            ts.iter().map(|&t| spacing::interp(t as f64, &self.train_sigmas)).collect()
        };
        // Karras / exponential start from the interpolated schedule's ends (unlike DPM-Solver,
        // which starts from the training sigmas' ends); timesteps stay fractional.
        let (lo, hi) = (self.sigma_bounds.0.unwrap_or(interp[interp.len() - 1]), self.sigma_bounds.1.unwrap_or(interp[0]));
        let (sig, ts) = match self.schedule.convert(lo, hi, n) {
            None => (interp, ts),
            Some(sig) => {
                let log_sigmas: Vec<f32> = self.train_sigmas.iter().map(|s| s.ln()).collect();
                let ts = sig.iter().map(|&s| sigma_to_t(s, &log_sigmas) as f32).collect();
                (sig, ts)
            }
        };
        self.sigmas = sig.iter().map(|&s| s as f32).chain([last]).collect();
        // The denoiser's timesteps become 0.25·ln σ (float32, as torch on 0-dim tensors).
        self.timesteps = if self.continuous { self.sigmas[..n].iter().map(|&s| 0.25f32 * s.ln()).collect() } else { ts };
        self.init_noise_sigma = self.noise_sigma_of(&self.sigmas);
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
        self.init_noise_sigma
    }

    fn scale_model_input(&self, sample: &Tensor, step: usize) -> Result<Tensor> {
        check_step("scale_model_input", step, self.timesteps.len())?;
        let s = self.sigmas[step];
        let c = (s * s + 1.0).sqrt(); // torch divides by this float32 scalar
        scale(sample, (1.0 / c as f64) as f32)
    }

    fn step(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Result<Tensor> {
        check_step("step", step, self.timesteps.len())?;
        let sigma = self.sigmas[step];
        let dt = self.sigmas[step + 1] - sigma; // float32, as torch
        // x̂₀ from the prediction, d = (x − x̂₀)/σ, prev = x + d·dt: linear in (x, model_output).
        let (s, d) = (sigma as f64, dt as f64);
        let (cx, cm) = match self.prediction {
            // x̂₀ = x − σ·ε  ⇒  prev = x + dt·ε
            PredictionType::Epsilon => (1.0, d),
            // x̂₀ = v·(−σ/√q) + x/q with q = σ² + 1
            PredictionType::VPrediction => {
                let q = sigma * sigma + 1.0;
                let c_out = (-sigma / q.sqrt()) as f64;
                (1.0 + d / s * (1.0 - 1.0 / q as f64), -c_out * d / s)
            }
            // x̂₀ = m
            PredictionType::Sample => (1.0 + d / s, -d / s),
        };
        lincomb2(sample, cx as f32, model_output, cm as f32)
    }

    fn add_noise(&self, original: &Tensor, noise: &Tensor, step: usize) -> Result<Tensor> {
        check_step("add_noise", step, self.timesteps.len())?;
        lincomb2(original, 1.0, noise, self.sigmas[step])
    }
}

/// `torch.linspace(start, end, steps)` in float32 as torch 2.15's CPU kernel computes it: the
/// step in float32, the first half counted from `start`, the second back from `end`, each
/// element one fused multiply-add (checked against torch at 7–1001 steps).
fn torch_linspace_f32(start: f32, end: f32, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let halfway = steps / 2;
    (0..steps).map(|i| if i < halfway { step.mul_add(i as f32, start) } else { (-step).mul_add((steps - i - 1) as f32, end) }).collect()
}
