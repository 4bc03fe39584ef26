//! diffusers' `PNDMScheduler` with `skip_prk_steps` (pseudo linear multistep, PLMS), what
//! Stable Diffusion 1.x ships. Its schedule repeats the second timestep
//! (`[t_{n-1}, t_{n-2}, t_{n-2}, t_{n-3}, …, t_0]`, n + 1 entries): the first two steps form a
//! Heun-like pair from the same sample, later ones combine up to four past noise predictions.
//!
//! The history (noise predictions, the sample of the first step) lives on the device. Like
//! diffusers' scheduler it is addressed by a counter, not by the timestep: Text2Video-Zero
//! copies the scheduler half-way and resumes the copy on a batch of F frames whose history was
//! made on one; torch broadcasts the one-frame history over the frames, and so does [`step`].

use super::config::{PredictionType, SchedulerConfig, TimestepSpacing};
use super::{check_num_steps, check_step, spacing, Scheduler, SchedulerKind};
use crate::error::{Error, Result};
use crate::ops::elementwise::{lincomb2, lincomb3};
use crate::ops::layout::repeat_interleave;
use crate::tensor::Tensor;

const CLASS: &str = "PNDMScheduler";

#[derive(Clone)]
pub struct PndmScheduler {
    alphas_cumprod: Vec<f32>,
    /// ᾱ past the end of the schedule: 1 with set_alpha_to_one, else ᾱ_0 (PNDM's default).
    final_alpha_cumprod: f32,
    prediction: PredictionType,
    spacing: TimestepSpacing,
    steps_offset: i64,
    num_inference_steps: usize,
    timesteps: Vec<i64>,
    timesteps_f32: Vec<f32>,
    /// The last (up to) four noise predictions, oldest first (diffusers' `ets`).
    ets: Vec<Tensor>,
    counter: usize,
    /// The sample of the first step, reused by the second (`cur_sample`).
    cur_sample: Option<Tensor>,
}

impl PndmScheduler {
    pub fn new(cfg: &SchedulerConfig) -> Result<PndmScheduler> {
        if cfg.skip_prk_steps != Some(true) {
            return Err(cfg.bad(
                "skip_prk_steps",
                "PNDM's Runge-Kutta warm-up (skip_prk_steps false, the class default) is not implemented; Stable Diffusion ships \"skip_prk_steps\": true — set it, or choose --scheduler ddim",
            ));
        }
        let prediction = cfg.prediction_type(CLASS)?;
        if prediction == PredictionType::Sample {
            return Err(cfg.bad("prediction_type", "\"sample\" is not supported by PNDMScheduler (diffusers raises too)"));
        }
        let alphas_cumprod = cfg.without_zero_snr().alphas_cumprod()?;
        let final_alpha_cumprod = if cfg.set_alpha_to_one.unwrap_or(false) { 1.0 } else { alphas_cumprod[0] };
        Ok(PndmScheduler {
            final_alpha_cumprod,
            prediction,
            spacing: cfg.timestep_spacing(TimestepSpacing::Leading)?,
            steps_offset: cfg.steps_offset.unwrap_or(0),
            alphas_cumprod,
            num_inference_steps: 0,
            timesteps: Vec::new(),
            timesteps_f32: Vec::new(),
            ets: Vec::new(),
            counter: 0,
            cur_sample: None,
        })
    }

    fn alpha_cumprod(&self, t: i64) -> f32 {
        if t < 0 {
            self.final_alpha_cumprod
        } else {
            self.alphas_cumprod[t as usize]
        }
    }

    /// `_get_prev_sample`: x_{t−δ} from x_t and the (combined) model output, formula (9) of
    /// the PNDM paper, with torch's float32 scalar arithmetic.
    fn prev_sample(&self, sample: &Tensor, t: i64, prev_t: i64, model_output: &Tensor) -> Result<Tensor> {
        let a = self.alpha_cumprod(t);
        let a_prev = self.alpha_cumprod(prev_t);
        let (b, b_prev) = (1.0 - a, 1.0 - a_prev);
        let eps = match self.prediction {
            PredictionType::VPrediction => lincomb2(model_output, a.sqrt(), sample, b.sqrt())?,
            _ => model_output.clone(),
        };
        let sample_coeff = (a_prev / a).sqrt();
        let denom = a * b_prev.sqrt() + (a * b * a_prev).sqrt();
        lincomb2(sample, sample_coeff, &eps, -((a_prev - a) / denom))
    }
}

/// `x` broadcast to `rows` rows the way torch broadcasts a batch of one.
fn rows_like(x: &Tensor, rows: usize) -> Result<Tensor> {
    match x.dim(0) {
        r if r == rows => Ok(x.clone()),
        1 => repeat_interleave(x, rows),
        r => Err(Error::Other(format!("PNDM history has {r} rows, the step {rows}: only a batch of one broadcasts"))),
    }
}

impl Scheduler for PndmScheduler {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Pndm
    }

    fn set_timesteps(&mut self, n: usize) -> Result<()> {
        let train = self.alphas_cumprod.len();
        check_num_steps(n, train)?;
        // PNDM's `_timesteps` are DDIM's, ascending.
        let mut asc = spacing::ddim(self.spacing, train, n, self.steps_offset);
        asc.reverse();
        if let Some(&t) = asc.iter().find(|&&t| t < 0 || t as usize >= train) {
            return Err(Error::Other(format!(
                "PNDM with {:?} spacing, {n} steps and steps_offset {} yields timestep {t}, outside 0..{train}; choose another number of steps",
                self.spacing, self.steps_offset
            )));
        }
        // concatenate([ts[:-1], ts[-2:-1], ts[-1:]])[::-1]
        let mut plms: Vec<i64> = asc[..n - 1].to_vec();
        if n >= 2 {
            plms.push(asc[n - 2]);
        }
        plms.push(asc[n - 1]);
        plms.reverse();
        self.num_inference_steps = n;
        self.timesteps_f32 = plms.iter().map(|&t| t as f32).collect();
        self.timesteps = plms;
        self.ets.clear();
        self.counter = 0;
        self.cur_sample = None;
        Ok(())
    }

    fn timesteps(&self) -> &[f32] {
        &self.timesteps_f32
    }

    fn init_noise_sigma(&self) -> f32 {
        1.0
    }

    fn scale_model_input(&self, sample: &Tensor, step: usize) -> Result<Tensor> {
        check_step("scale_model_input", step, self.timesteps.len())?;
        Ok(sample.clone())
    }

    /// `step_plms`. `step` indexes the timesteps; the history is the counter's, as in diffusers.
    fn step(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Result<Tensor> {
        check_step("step", step, self.timesteps.len())?;
        // Checked before the history changes: a refused step leaves the scheduler as it was.
        if model_output.shape() != sample.shape() {
            return Err(Error::Other(format!(
                "PNDM step: model output {:?} and sample {:?} differ in shape",
                model_output.shape(),
                sample.shape()
            )));
        }
        let ratio = (self.alphas_cumprod.len() / self.num_inference_steps) as i64;
        let mut t = self.timesteps[step];
        let mut prev_t = t - ratio;
        if self.counter != 1 {
            if self.ets.len() > 3 {
                self.ets.remove(0);
            }
            self.ets.push(model_output.clone());
        } else {
            prev_t = t;
            t += ratio;
        }
        let rows = model_output.dim(0);
        let e = |i: usize| rows_like(&self.ets[self.ets.len() - i], rows);
        let mut sample = sample.clone();
        let combined = match (self.ets.len(), self.counter) {
            (1, 0) => {
                self.cur_sample = Some(sample.clone());
                model_output.clone()
            }
            (1, 1) => {
                sample = match self.cur_sample.take() {
                    Some(s) => rows_like(&s, rows)?,
                    None => sample,
                };
                lincomb2(model_output, 0.5, &e(1)?, 0.5)?
            }
            (2, _) => lincomb2(&e(1)?, 1.5, &e(2)?, -0.5)?,
            (3, _) => lincomb3(&e(1)?, 23.0 / 12.0, &e(2)?, -16.0 / 12.0, &e(3)?, 5.0 / 12.0)?,
            _ => {
                let head = lincomb3(&e(1)?, 55.0 / 24.0, &e(2)?, -59.0 / 24.0, &e(3)?, 37.0 / 24.0)?;
                lincomb2(&head, 1.0, &e(4)?, -9.0 / 24.0)?
            }
        };
        let prev = self.prev_sample(&sample, t, prev_t, &combined)?;
        self.counter += 1;
        Ok(prev)
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
