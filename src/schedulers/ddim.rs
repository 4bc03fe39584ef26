//! diffusers' `DDIMScheduler` with eta = 0 (deterministic), as ModelScope and Zeroscope ship it,
//! with its x̂₀ clipping (`clip_sample`, the class default, which a Stable Diffusion folder's
//! PNDM file without the key gets when run as DDIM) and dynamic thresholding.
//!
//! Clipping stays on the device (one clamp between two fused combinations). Thresholding needs
//! a per-sample quantile of |x̂₀|, a sort over the whole latent: that step reads the sample and
//! model output back and computes it on the host in torch's float32 op order, the one
//! read-back inside a denoising loop this crate makes, and only when a config asks for it
//! (diffusers calls thresholding "unsuitable for latent-space models").

use super::config::{PredictionType, SchedulerConfig, TimestepSpacing};
use super::{check_num_steps, check_step, spacing, Scheduler, SchedulerKind};
use crate::error::{Error, Result};
use crate::ops::elementwise::{clamp_sym, lincomb2, lincomb3};
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
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum X0Rule {
    Keep,
    /// `x̂₀.clamp(-range, range)`.
    Clip(f32),
    /// Dynamic thresholding (Imagen): s = quantile(|x̂₀|, ratio) per sample, clamped to
    /// [1, max]; x̂₀ = clamp(x̂₀, −s, s)/s.
    Threshold { ratio: f32, max: f32 },
}

impl DdimScheduler {
    pub fn new(cfg: &SchedulerConfig) -> Result<DdimScheduler> {
        // diffusers' DDIM defaults: clip_sample true (so a file without the key clips), range 1,
        // thresholding false with ratio 0.995 and max 1.
        let x0 = if cfg.thresholding == Some(true) {
            let ratio = cfg.dynamic_thresholding_ratio.unwrap_or(0.995);
            if !(0.0..=1.0).contains(&ratio) {
                return Err(cfg.bad("dynamic_thresholding_ratio", format!("must be a quantile in [0, 1], got {ratio}")));
            }
            let max = cfg.sample_max_value.unwrap_or(1.0);
            if !(max.is_finite() && max >= 1.0) {
                return Err(cfg.bad("sample_max_value", format!("must be a finite number ≥ 1 (the threshold's lower bound), got {max}")));
            }
            X0Rule::Threshold { ratio: ratio as f32, max: max as f32 }
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

impl DdimScheduler {
    /// The step with dynamic thresholding, on the host in torch's float32 op order
    /// (`[sa, sb, sa_prev, sd_prev]` are √ᾱ, √(1−ᾱ), √ᾱ_prev, √(1−ᾱ_prev)).
    fn thresholded_step(&self, model_output: &Tensor, sample: &Tensor, coef: [f32; 4], ratio: f32, max: f32) -> Result<Tensor> {
        let [sa, sb, sa_prev, sd_prev] = coef;
        if model_output.shape() != sample.shape() || sample.shape().is_empty() {
            return Err(Error::Other(format!(
                "DDIM step: model output {:?} and sample {:?} must have the same (batched) shape",
                model_output.shape(),
                sample.shape()
            )));
        }
        let (x, m) = (sample.to_f32()?, model_output.to_f32()?);
        let (mut x0, eps): (Vec<f32>, Vec<f32>) = x
            .iter()
            .zip(&m)
            .map(|(&x, &m)| match self.prediction {
                PredictionType::Epsilon => ((x - sb * m) / sa, m),
                PredictionType::VPrediction => (sa * x - sb * m, sa * m + sb * x),
                PredictionType::Sample => (m, (x - sa * m) / sb),
            })
            .unzip();
        let per = x0.len() / sample.dim(0).max(1);
        if per > 0 {
            for row in x0.chunks_mut(per) {
                let s = torch_quantile(row.iter().map(|v| v.abs()).collect(), ratio).clamp(1.0, max);
                for v in row.iter_mut() {
                    *v = v.clamp(-s, s) / s;
                }
            }
        }
        let prev: Vec<f32> = x0.iter().zip(&eps).map(|(&x0, &e)| sa_prev * x0 + sd_prev * e).collect();
        Tensor::from_f32(sample.gpu(), sample.shape(), &prev)
    }
}

/// `torch.quantile(v, q)` (linear interpolation) in float32: rank q·(n−1), the two neighbours
/// in sorted order, `lerp` as torch computes it.
fn torch_quantile(mut v: Vec<f32>, q: f32) -> f32 {
    v.sort_by(f32::total_cmp);
    let rank = q * (v.len() - 1) as f32;
    let below = rank as usize; // toType(kLong): truncation
    let above = (rank.ceil() as usize).min(v.len() - 1);
    let w = rank - below as f32;
    let (a, b) = (v[below], v[above]);
    if w < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
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
        true // no history: the latents are the whole state
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
        let sd_prev = (1.0 - a_prev).sqrt() as f64;
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
                lincomb2(sample, cx as f32, model_output, cm as f32)
            }
            X0Rule::Clip(range) => {
                let x0 = clamp_sym(&lincomb2(sample, x0x as f32, model_output, x0m as f32)?, range)?;
                lincomb3(&x0, sa_prev as f32, sample, (sd_prev * ex) as f32, model_output, (sd_prev * em) as f32)
            }
            X0Rule::Threshold { ratio, max } => {
                let f = |v: f64| v as f32;
                let coef = [f(sa), f(sb), f(sa_prev), f(sd_prev)];
                self.thresholded_step(model_output, sample, coef, ratio, max)
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
