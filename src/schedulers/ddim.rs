//! diffusers' `DDIMScheduler`, as ModelScope and Zeroscope ship it (η = 0: deterministic; the
//! pipelines' `eta` > 0 adds σ_t·z with z drawn from the pipeline's generator every step),
//! with its x̂₀ clipping (`clip_sample`, the class default, which a Stable Diffusion folder's
//! PNDM file without the key gets when run as DDIM) and dynamic thresholding.
//!
//! Clipping stays on the device (one clamp between two fused combinations); thresholding reads
//! x̂₀ back (see [`threshold`](super::threshold)).

use super::config::{PredictionType, SchedulerConfig, TimestepSpacing};
use super::threshold::Thresholding;
use super::{check_num_steps, check_step, spacing, Scheduler, SchedulerKind, StepNoise};
use crate::error::{Error, Result};
use crate::ops::elementwise::{clamp_sym, lincomb2, lincomb3, scale};
use crate::tensor::Tensor;

const CLASS: &str = "DDIMScheduler";

#[derive(Clone)]
pub struct DdimScheduler {
    alphas_cumprod: Vec<f32>,
    /// ᾱ used when the previous timestep falls below 0 (1, or ᾱ_0 with set_alpha_to_one=false).
    final_alpha_cumprod: f32,
    prediction: PredictionType,
    /// x̂₀ handling before the update (thresholding wins over clipping, as in diffusers).
    x0: X0Rule,
    spacing: TimestepSpacing,
    steps_offset: i64,
    /// The requested step count: DDIM's previous timestep is always `t - train / n`, even
    /// for linspace and trailing spacings whose timesteps are not that far apart (a diffusers
    /// quirk kept for equality).
    num_inference_steps: usize,
    timesteps: Vec<i64>,
    timesteps_f32: Vec<f32>,
    /// η: 0 unless the pipeline's `eta` says otherwise.
    eta: f32,
    generator: Option<StepNoise>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum X0Rule {
    Keep,
    /// `x̂₀.clamp(-range, range)`.
    Clip(f32),
    Threshold(Thresholding),
}

impl DdimScheduler {
    pub fn new(cfg: &SchedulerConfig) -> Result<DdimScheduler> {
        // diffusers' DDIM defaults: clip_sample true (so a file without the key clips), range 1,
        // thresholding false (it wins over clipping when on).
        let x0 = if let Some(t) = Thresholding::from_config(cfg)? {
            X0Rule::Threshold(t)
        } else if cfg.clip_sample.unwrap_or(true) {
            let range = cfg.clip_sample_range.unwrap_or(1.0);
            if !(range.is_finite() && range >= 0.0) {
                return Err(cfg.bad("clip_sample_range", format!("must be a finite number ≥ 0, got {range}")));
            }
            X0Rule::Clip(range as f32)
        } else {
            X0Rule::Keep
        };
        let alphas_cumprod = cfg.alphas_cumprod()?;
        let final_alpha_cumprod = if cfg.set_alpha_to_one.unwrap_or(true) { 1.0 } else { alphas_cumprod[0] };
        Ok(DdimScheduler {
            final_alpha_cumprod,
            prediction: cfg.prediction_type(CLASS)?,
            x0,
            spacing: cfg.timestep_spacing(TimestepSpacing::Leading)?,
            steps_offset: cfg.steps_offset.unwrap_or(0),
            alphas_cumprod,
            num_inference_steps: 0,
            timesteps: Vec::new(),
            timesteps_f32: Vec::new(),
            eta: 0.0,
            generator: None,
        })
    }

    /// ᾱ at a timestep; negative timesteps (past the end of the schedule) use the final ᾱ.
    fn alpha_cumprod(&self, t: i64) -> f32 {
        if t < 0 {
            self.final_alpha_cumprod
        } else {
            self.alphas_cumprod[t as usize]
        }
    }
}

impl Scheduler for DdimScheduler {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Ddim
    }

    fn set_timesteps(&mut self, n: usize) -> Result<()> {
        let train = self.alphas_cumprod.len();
        check_num_steps(n, train)?;
        let ts = spacing::ddim(self.spacing, train, n, self.steps_offset);
        // diffusers indexes ᾱ with these: past the end it raises, and at -1 (trailing spacing
        // where np.arange yields one step too many, e.g. 61 steps) it silently takes the
        // noisiest ᾱ for the final step. Neither is a usable schedule.
        if let Some(&t) = ts.iter().find(|&&t| t < 0 || t as usize >= train) {
            return Err(Error::Other(format!(
                "DDIM with {:?} spacing, {n} steps and steps_offset {} yields timestep {t}, outside 0..{train} (diffusers would index ᾱ out of range); choose another number of steps",
                self.spacing, self.steps_offset
            )));
        }
        self.num_inference_steps = n;
        self.timesteps_f32 = ts.iter().map(|&t| t as f32).collect();
        self.timesteps = ts;
        Ok(())
    }

    fn timesteps(&self) -> &[f32] {
        &self.timesteps_f32
    }

    fn resumable(&self) -> bool {
        // No history: the latents are the whole state, unless steps draw from the generator,
        // whose position a checkpoint does not hold.
        self.eta == 0.0
    }

    fn is_stochastic(&self) -> bool {
        self.eta > 0.0
    }

    fn set_generator(&mut self, noise: StepNoise) {
        self.generator = Some(noise);
    }

    fn set_eta(&mut self, eta: f32) -> bool {
        self.eta = eta;
        true
    }

    fn take_generator(&mut self) -> Option<StepNoise> {
        self.generator.take()
    }

    fn init_noise_sigma(&self) -> f32 {
        1.0
    }

    fn scale_model_input(&self, sample: &Tensor, step: usize) -> Result<Tensor> {
        check_step("scale_model_input", step, self.timesteps.len())?;
        Ok(sample.clone())
    }

    fn step(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Result<Tensor> {
        check_step("step", step, self.timesteps.len())?;
        let t = self.timesteps[step];
        let prev_t = t - (self.alphas_cumprod.len() / self.num_inference_steps) as i64;
        let a = self.alpha_cumprod(t);
        let a_prev = self.alpha_cumprod(prev_t);
        // The float32 scalars torch forms (`alpha_prod_t ** 0.5`, `(1 - alpha_prod_t_prev) ** 0.5`, …);
        // std_dev_t is 0 with eta = 0.
        let sa = a.sqrt() as f64;
        let sb = (1.0 - a).sqrt() as f64;
        let sa_prev = a_prev.sqrt() as f64;
        // η > 0: σ_t = η·√((1−ᾱ_prev)/(1−ᾱ) · (1 − ᾱ/ᾱ_prev)), the direction's weight becomes
        // √(1 − ᾱ_prev − σ_t²) and σ_t·z is added (float32 scalars, as torch forms them).
        let std = if self.eta > 0.0 { self.eta * (((1.0 - a_prev) / (1.0 - a)) * (1.0 - a / a_prev)).sqrt() } else { 0.0 };
        let sd_prev = if self.eta > 0.0 { (1.0 - a_prev - std * std).sqrt() as f64 } else { (1.0 - a_prev).sqrt() as f64 };
        let z = match (&mut self.generator, self.eta > 0.0) {
            (_, false) => None,
            (Some(g), true) => Some(g.draw(sample, false)?),
            (None, true) => return Err(Error::Other(format!("{CLASS} with eta > 0 draws noise each step: set_generator must give it the pipeline's generator first"))),
        };
        // x̂₀ = x0x·x + x0m·m and ε̂ = ex·x + em·m for each prediction type.
        let (x0x, x0m, ex, em) = match self.prediction {
            // x̂₀ = (x − √(1−ᾱ)·ε)/√ᾱ, ε̂ = ε
            PredictionType::Epsilon => (1.0 / sa, -sb / sa, 0.0, 1.0),
            // x̂₀ = √ᾱ·x − √(1−ᾱ)·v, ε̂ = √ᾱ·v + √(1−ᾱ)·x
            PredictionType::VPrediction => (sa, -sb, sb, sa),
            // x̂₀ = m, ε̂ = (x − √ᾱ·m)/√(1−ᾱ)
            PredictionType::Sample => (0.0, 1.0, 1.0 / sb, -sa / sb),
        };
        // prev = √ᾱ_prev·x̂₀ + √(1−ᾱ_prev)·ε̂; ε̂ is the unclipped one, as in diffusers.
        match self.x0 {
            X0Rule::Keep => {
                let (cx, cm) = (sa_prev * x0x + sd_prev * ex, sa_prev * x0m + sd_prev * em);
                match &z {
                    None => lincomb2(sample, cx as f32, model_output, cm as f32),
                    Some(z) => lincomb3(sample, cx as f32, model_output, cm as f32, z, std),
                }
            }
            X0Rule::Clip(_) | X0Rule::Threshold(_) => {
                let x0 = if x0x.is_finite() {
                    lincomb2(sample, x0x as f32, model_output, x0m as f32)?
                } else {
                    // ᾱ = 0 (a zero-terminal-SNR schedule at t = T−1): diffusers' (x − √(1−ᾱ)·ε)/√ᾱ
                    // is ±∞, which the clip turns into ±range; ∞·x − ∞·ε would be NaN.
                    scale(&lincomb2(sample, 1.0, model_output, -sb as f32)?, f32::INFINITY)?
                };
                let x0 = match self.x0 {
                    X0Rule::Clip(range) => clamp_sym(&x0, range)?,
                    X0Rule::Threshold(t) => t.apply(&x0)?,
                    X0Rule::Keep => x0,
                };
                let prev = lincomb3(&x0, sa_prev as f32, sample, (sd_prev * ex) as f32, model_output, (sd_prev * em) as f32)?;
                match &z {
                    None => Ok(prev),
                    Some(z) => lincomb2(&prev, 1.0, z, std),
                }
            }
        }
    }

    fn add_noise(&self, original: &Tensor, noise: &Tensor, step: usize) -> Result<Tensor> {
        check_step("add_noise", step, self.timesteps.len())?;
        let a = self.alpha_cumprod(self.timesteps[step]);
        lincomb2(original, a.sqrt(), noise, (1.0 - a).sqrt())
    }

    fn boxed_clone(&self) -> Option<Box<dyn Scheduler>> {
        Some(Box::new(self.clone()))
    }
}
