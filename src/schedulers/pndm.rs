//! diffusers' `PNDMScheduler`: pseudo linear multistep (PLMS) steps, after PNDM's Runge-Kutta
//! warm-up (`skip_prk_steps: false`, the class default) or without it (`skip_prk_steps: true`,
//! what Stable Diffusion 1.x ships).
//!
//! Without PRK the schedule repeats the second timestep (`[t_{n-1}, t_{n-2}, t_{n-2}, t_{n-3},
//! …, t_0]`, n + 1 entries): the first two steps form a Heun-like pair from the same sample,
//! later ones combine up to four past noise predictions. With PRK the first 12 entries are
//! three Runge-Kutta steps of four evaluations each over the noisiest four timesteps (with
//! half-way points `t + train/n/2`), which leave three noise predictions for PLMS to start from;
//! then PLMS runs over `t_{n-4} … t_0` (n + 9 entries in all).
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
    /// PNDM's Runge-Kutta warm-up (`skip_prk_steps: false`).
    prk: bool,
    /// How many of the timesteps are PRK evaluations (12 with PRK, else 0).
    prk_len: usize,
    /// The Runge-Kutta sum of the current PRK step (`cur_model_output`).
    cur_model_output: Option<Tensor>,
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
            prk: cfg.skip_prk_steps != Some(true),
            prk_len: 0,
            cur_model_output: None,
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

impl PndmScheduler {
    /// `step_prk`: the four evaluations of one Runge-Kutta step (counter mod 4), all from the
    /// sample of the first, to `t − train/n/2` (odd evaluations stay at t) with the weights
    /// 1/6, 1/3, 1/3, 1/6 summed into `cur_model_output`.
    fn step_prk(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Result<Tensor> {
        let half = (self.alphas_cumprod.len() / self.num_inference_steps / 2) as i64;
        let diff = if self.counter % 2 == 1 { 0 } else { half };
        let prev_t = self.timesteps[step] - diff;
        let t = self.timesteps[self.counter / 4 * 4];
        let rows = model_output.dim(0);
        let acc = |cur: &Option<Tensor>, w: f32| -> Result<Tensor> {
            match cur {
                Some(c) => lincomb2(&rows_like(c, rows)?, 1.0, model_output, w),
                None => crate::ops::elementwise::scale(model_output, w),
            }
        };
        let combined = match self.counter % 4 {
            0 => {
                self.cur_model_output = Some(acc(&None, 1.0 / 6.0)?);
                if self.ets.len() > 3 {
                    self.ets.remove(0);
                }
                self.ets.push(model_output.clone());
                self.cur_sample = Some(sample.clone());
                model_output.clone()
            }
            1 | 2 => {
                self.cur_model_output = Some(acc(&self.cur_model_output, 1.0 / 3.0)?);
                model_output.clone()
            }
            _ => {
                let m = acc(&self.cur_model_output, 1.0 / 6.0)?;
                self.cur_model_output = None;
                m
            }
        };
        let cur = match &self.cur_sample {
            Some(s) => rows_like(s, rows)?,
            None => sample.clone(),
        };
        let prev = self.prev_sample(&cur, t, prev_t, &combined)?;
        self.counter += 1;
        Ok(prev)
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
        let (prk, plms): (Vec<i64>, Vec<i64>) = if self.prk {
            // diffusers broadcasts the last four timesteps against four offsets: fewer fail there.
            if n < 4 {
                return Err(Error::Other(format!(
                    "PNDM with PRK steps (skip_prk_steps false) needs at least 4 inference steps, got {n} (diffusers fails to broadcast too)"
                )));
            }
            let half = (train / n / 2) as i64;
            // repeat(2) + tile([0, half]) over the last four, then [:-1].repeat(2)[1:-1], reversed.
            let pairs: Vec<i64> = asc[n - 4..].iter().flat_map(|&t| [t, t + half]).collect();
            let mut prk: Vec<i64> = pairs[..7].iter().flat_map(|&t| [t, t]).collect::<Vec<_>>()[1..13].to_vec();
            prk.reverse();
            let plms: Vec<i64> = asc[..n - 3].iter().rev().copied().collect();
            (prk, plms)
        } else {
            // concatenate([ts[:-1], ts[-2:-1], ts[-1:]])[::-1]
            let mut plms: Vec<i64> = asc[..n - 1].to_vec();
            if n >= 2 {
                plms.push(asc[n - 2]);
            }
            plms.push(asc[n - 1]);
            plms.reverse();
            (Vec::new(), plms)
        };
        if let Some(&t) = prk.iter().chain(&plms).find(|&&t| t < 0 || t as usize >= train) {
            return Err(Error::Other(format!(
                "PNDM with {:?} spacing, {n} steps and steps_offset {} yields timestep {t}, outside 0..{train}; choose another number of steps",
                self.spacing, self.steps_offset
            )));
        }
        self.prk_len = prk.len();
        let all: Vec<i64> = prk.into_iter().chain(plms).collect();
        self.num_inference_steps = n;
        self.timesteps_f32 = all.iter().map(|&t| t as f32).collect();
        self.timesteps = all;
        self.ets.clear();
        self.counter = 0;
        self.cur_sample = None;
        self.cur_model_output = None;
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
        if self.counter < self.prk_len {
            return self.step_prk(model_output, step, sample);
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
