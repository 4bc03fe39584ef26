//! diffusers' `UniPCMultistepScheduler` (UniPC: a multistep predictor UniP plus a corrector UniC
//! that reuses the model output of the step it corrects), as Wan ships it: bh2, order 2,
//! predict-x0, `flow_prediction` on flow-matching sigmas shifted by `flow_shift`, lower-order
//! final step, final sigma zero. bh1, order 1, `final_sigmas_type: sigma_min`,
//! `disable_corrector`, `shift_terminal`, `predict_x0: false` and the beta-schedule (epsilon,
//! v-prediction, sample) configurations run too; what needs more (Karras/exponential/beta
//! sigmas, dynamic shifting, thresholding, `solver_p`, order 3+) is refused naming the key, and
//! so are the combinations whose last step diffusers computes as NaN (bh1, predict_x0 off or
//! no lower-order final step, each with a final sigma of zero).
//!
//! Scalars follow torch's float32 arithmetic on 0-dim tensors in the code's evaluation order
//! (including its 2×2 `linalg.solve`); each update is one or two fused `a·x + b·y (+ c·z)`
//! dispatches whose coefficients combine those scalars in f64.
//!
//! Precision note: diffusers' Wan reference runs the transformer in bf16, and there the
//! product σ·v of a 0-dim f32 sigma with the bf16 model output is rounded to bf16 before the
//! f32 subtraction. This engine's model output is f32, so `x0 = sample − σ·v` is all f32, as
//! diffusers computes it for an f32 model.

use super::config::{FinalSigmas, PredictionType, SchedulerConfig, TimestepSpacing};
use super::sigmas::{sigma_to_t, SigmaSchedule};
use super::threshold::Thresholding;
use super::{check_num_steps, check_step, spacing, Scheduler, SchedulerKind, SchedulerState};
use crate::error::{Error, Result};
use crate::ops::elementwise::{lincomb2, lincomb3};
use crate::tensor::Tensor;

const CLASS: &str = "UniPCMultistepScheduler";

// Names in its SchedulerState.
const X0_OLDER: &str = "model_outputs.0";
const X0_NEWER: &str = "model_outputs.1";
/// The data prediction two steps back (third order only).
const X0_OLDEST: &str = "model_outputs.-1";
const LAST_SAMPLE: &str = "last_sample";
const LOWER_ORDER_NUMS: &str = "lower_order_nums";
const THIS_ORDER: &str = "this_order";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prediction {
    Noise(PredictionType),
    /// Flow matching: the model predicts v = noise − x0, so x0 = sample − σ·v.
    Flow,
}

/// The flow-matching sigma schedule (`use_flow_sigmas`).
#[derive(Debug, Clone, Copy)]
struct FlowSigmas {
    shift: f64,
    shift_terminal: Option<f64>,
}

pub struct UniPcMultistepScheduler {
    num_train_timesteps: usize,
    /// √((1−ᾱ)/ᾱ) for every training timestep (beta schedules only; empty with flow sigmas).
    train_sigmas: Vec<f32>,
    flow: Option<FlowSigmas>,
    prediction: Prediction,
    predict_x0: bool,
    /// B(h) = e^h − 1 (bh2) rather than h (bh1).
    bh2: bool,
    solver_order: usize,
    lower_order_final: bool,
    disable_corrector: Vec<i64>,
    spacing: TimestepSpacing,
    steps_offset: i64,
    final_sigmas: FinalSigmas,
    /// Karras / exponential sigmas (beta schedules only) and their `sigma_min`/`sigma_max`.
    schedule: SigmaSchedule,
    sigma_bounds: (Option<f64>, Option<f64>),
    /// Applied to the data prediction (predict_x0 only, as diffusers).
    threshold: Option<Thresholding>,
    timesteps: Vec<f32>,
    /// One more than the timesteps: the sigma each step lands on.
    sigmas: Vec<f32>,
    history: History,
}

/// diffusers' state between steps, the tensors on the device.
#[derive(Default)]
struct History {
    /// The step that left this history; a step with another index starts afresh.
    last_step: Option<usize>,
    /// `model_outputs`: the data predictions of the latest steps, oldest first: [2] the newest,
    /// [1] the one before (order ≥ 2), [0] the one before that (order 3).
    x0: [Option<Tensor>; 3],
    /// The (corrected) sample the latest step started from.
    last_sample: Option<Tensor>,
    lower_order_nums: usize,
    this_order: usize,
}

impl UniPcMultistepScheduler {
    pub fn new(cfg: &SchedulerConfig) -> Result<UniPcMultistepScheduler> {
        let bh2 = match cfg.solver_type.as_deref().unwrap_or("bh2") {
            "bh1" => false,
            // diffusers re-registers the DPM-Solver names as bh2.
            "bh2" | "midpoint" | "heun" | "logrho" => true,
            o => return Err(cfg.bad("solver_type", format!("\"{o}\" is not one of \"bh1\", \"bh2\""))),
        };
        let solver_order = cfg.solver_order.unwrap_or(2);
        if !(1..=3).contains(&solver_order) {
            return Err(cfg.bad("solver_order", format!("{solver_order} is not one of 1, 2, 3 (2 is the default)")));
        }
        let schedule = SigmaSchedule::from_config(cfg, CLASS)?;
        if matches!(schedule, SigmaSchedule::Exponential | SigmaSchedule::Beta) && cfg.use_flow_sigmas == Some(true) {
            let key = if schedule == SigmaSchedule::Beta { "use_beta_sigmas" } else { "use_exponential_sigmas" };
            return Err(cfg.bad(
                key,
                "true together with use_flow_sigmas is not supported: diffusers then steps the beta schedule's sigmas (up to ~157) as flow sigmas, α = 1 − σ < 0, and its latents become NaN; use use_karras_sigmas or the flow sigmas",
            ));
        }
        if cfg.use_dynamic_shifting == Some(true) {
            return Err(cfg.bad(
                "use_dynamic_shifting",
                format!("true is not supported for {CLASS} (its shift comes from the pipeline per resolution); use a fixed flow_shift"),
            ));
        }
        if cfg.solver_p.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(cfg.bad("solver_p", "a separate predictor scheduler is not supported; remove the key or set it to null"));
        }
        let predict_x0 = cfg.predict_x0.unwrap_or(true);
        let prediction = match cfg.prediction_type.as_deref() {
            Some("flow_prediction") if predict_x0 => Prediction::Flow,
            Some("flow_prediction") => {
                return Err(cfg.bad("prediction_type", format!("\"flow_prediction\" needs predict_x0 = true in {CLASS}")));
            }
            _ => Prediction::Noise(cfg.prediction_type(CLASS)?),
        };
        let use_flow = cfg.use_flow_sigmas.unwrap_or(false);
        // diffusers' `if self.config.shift_terminal:` (0 is off).
        let shift_terminal = cfg.shift_terminal.filter(|&t| t != 0.0);
        if let Some(t) = shift_terminal {
            if !use_flow {
                return Err(cfg.bad("shift_terminal", "is only supported with use_flow_sigmas = true"));
            }
            if !(t.is_finite() && t < 1.0) {
                return Err(cfg.bad("shift_terminal", format!("must be below 1, got {t}")));
            }
        }
        let flow = if use_flow {
            let shift = cfg.flow_shift.unwrap_or(1.0);
            if !(shift.is_finite() && shift > 0.0) {
                return Err(cfg.bad("flow_shift", format!("must be a positive number, got {shift}")));
            }
            Some(FlowSigmas { shift, shift_terminal })
        } else {
            None
        };
        // The betas are built by diffusers either way but only used without flow sigmas (and
        // for Karras sigmas, which it converts to flow sigmas as σ/(σ + 1)).
        let train_sigmas = match flow {
            Some(_) if schedule == SigmaSchedule::Interpolated => Vec::new(),
            _ => cfg.alphas_cumprod_for_sigmas()?.iter().map(|&a| ((1.0 - a) / a).sqrt()).collect(),
        };
        let lower_order_final = cfg.lower_order_final.unwrap_or(true);
        let final_sigmas = cfg.final_sigmas()?;
        if final_sigmas == FinalSigmas::Zero {
            // Checked with diffusers 0.42.1: B(h) = h = −∞, σ_t·hφ₁ = 0·∞ or D1/rk with rk = −0
            // on the step to σ = 0 make its result NaN/inf.
            let broken = if !bh2 {
                Some(("solver_type", "\"bh1\""))
            } else if !predict_x0 {
                Some(("predict_x0", "false"))
            } else if solver_order >= 2 && !lower_order_final {
                Some(("lower_order_final", "false"))
            } else {
                None
            };
            if let Some((field, value)) = broken {
                return Err(cfg.bad(
                    field,
                    format!("{value} with final_sigmas_type \"zero\" makes diffusers' last step NaN/inf; use final_sigmas_type \"sigma_min\""),
                ));
            }
        }
        Ok(UniPcMultistepScheduler {
            num_train_timesteps: cfg.num_train_timesteps()?,
            train_sigmas,
            flow,
            prediction,
            predict_x0,
            bh2,
            solver_order,
            lower_order_final,
            disable_corrector: cfg.disable_corrector.clone().unwrap_or_default(),
            spacing: cfg.timestep_spacing(TimestepSpacing::Linspace)?,
            steps_offset: cfg.steps_offset.unwrap_or(0),
            final_sigmas,
            schedule,
            sigma_bounds: (cfg.sigma_min, cfg.sigma_max),
            threshold: Thresholding::from_config(cfg)?,
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            history: History::default(),
        })
    }

    /// The sigmas of the current schedule (`scheduler.sigmas`), last one included.
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// The flow shift in use (None on a beta schedule).
    pub fn flow_shift(&self) -> Option<f64> {
        self.flow.map(|f| f.shift)
    }

    /// diffusers' `_sigma_to_alpha_sigma_t`, float32 as torch computes it on 0-dim tensors.
    fn alpha_sigma(&self, sigma: f32) -> (f32, f32) {
        match self.flow {
            Some(_) => (1.0 - sigma, sigma),
            None => {
                let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
                (alpha, sigma * alpha)
            }
        }
    }

    /// (α, σ, λ = ln α − ln σ) at `sigmas[i]`.
    fn at(&self, i: usize) -> (f32, f32, f32) {
        let (a, s) = self.alpha_sigma(self.sigmas[i]);
        (a, s, a.ln() - s.ln())
    }

    /// The scalars shared by UniP and UniC for the interval from `sigmas[s0]` to `sigmas[t]`:
    /// (coefficient of x, of m0 (α·hφ₁ or σ·hφ₁), of the residual (α·B or σ·B), h, hh, hφ₁).
    fn interval(&self, s0: usize, t: usize) -> Interval {
        let (alpha_t, sigma_t, lambda_t) = self.at(t);
        let (alpha_s0, sigma_s0, lambda_s0) = self.at(s0);
        let h = lambda_t - lambda_s0;
        let hh = if self.predict_x0 { -h } else { h };
        let h_phi_1 = hh.exp_m1();
        let b_h = if self.bh2 { hh.exp_m1() } else { hh };
        let (cx, cm, cb) = if self.predict_x0 {
            (sigma_t / sigma_s0, alpha_t * h_phi_1, alpha_t * b_h)
        } else {
            (alpha_t / alpha_s0, sigma_t * h_phi_1, sigma_t * b_h)
        };
        Interval { lambda_s0, h, hh, h_phi_1, b_h, cx, cm, cb }
    }

    /// `rk = (λ(sigmas[si]) − λ_s0) / h`.
    fn rk(&self, si: usize, iv: &Interval) -> f32 {
        (self.at(si).2 - iv.lambda_s0) / iv.h
    }

    /// `convert_model_output`: the data prediction (or, with predict_x0 off, the noise).
    fn convert(&self, model_output: &Tensor, step: usize, sample: &Tensor) -> Result<Tensor> {
        let sigma = self.sigmas[step];
        let (alpha_t, sigma_t) = self.alpha_sigma(sigma);
        let (a, s) = (alpha_t as f64, sigma_t as f64);
        let x0 = match (self.prediction, self.predict_x0) {
            (Prediction::Flow, _) => lincomb2(sample, 1.0, model_output, -sigma),
            (Prediction::Noise(PredictionType::Epsilon), true) => lincomb2(sample, (1.0 / a) as f32, model_output, (-s / a) as f32),
            (Prediction::Noise(PredictionType::Sample), true) => Ok(model_output.clone()),
            (Prediction::Noise(PredictionType::VPrediction), true) => lincomb2(sample, alpha_t, model_output, -sigma_t),
            (Prediction::Noise(PredictionType::Epsilon), false) => Ok(model_output.clone()),
            (Prediction::Noise(PredictionType::Sample), false) => lincomb2(sample, (1.0 / s) as f32, model_output, (-a / s) as f32),
            (Prediction::Noise(PredictionType::VPrediction), false) => lincomb2(sample, sigma_t, model_output, alpha_t),
        }?;
        match &self.threshold {
            Some(t) if self.predict_x0 || self.prediction == Prediction::Flow => t.apply(&x0),
            _ => Ok(x0),
        }
    }

    /// `multistep_uni_c_bh_update` at step `step` (≥ 1) of order `order`: corrects `this_sample`
    /// (the previous predictor's result) using this step's converted output `m_t`.
    fn corrector(&self, step: usize, order: usize, m_t: &Tensor, this_sample: &Tensor) -> Result<Tensor> {
        let missing = || Error::Other(format!("{CLASS}: corrector history missing at step {step}"));
        let x = self.history.last_sample.as_ref().ok_or_else(missing)?;
        let m0 = self.history.x0[2].as_ref().ok_or_else(missing)?;
        let _ = this_sample; // replaced by the correction, as in diffusers
        let iv = self.interval(step - 1, step);
        let (cx, cm, cb) = (iv.cx as f64, iv.cm as f64, iv.cb as f64);
        match order {
            1 => {
                // x_t = cx·x − cm·m0 − cb·(0.5·(m_t − m0))
                let rho = 0.5f64;
                lincomb3(x, cx as f32, m0, (-cm + cb * rho) as f32, m_t, (-cb * rho) as f32)
            }
            2 => {
                let mi = self.history.x0[1].as_ref().ok_or_else(missing)?;
                let rk = self.rk(step - 2, &iv);
                let [b1, b2, _] = iv.b();
                let (rho0, rho1) = solve_unipc_2x2(rk, b1, b2);
                let (rho0, rho1, inv_rk) = (rho0 as f64, rho1 as f64, 1.0 / rk as f64);
                // x_t = cx·x − cm·m0 − cb·(ρ0·(mi − m0)/rk + ρ1·(m_t − m0))
                let partial =
                    lincomb3(x, cx as f32, m0, (-cm + cb * rho0 * inv_rk + cb * rho1) as f32, mi, (-cb * rho0 * inv_rk) as f32)?;
                lincomb2(&partial, 1.0, m_t, (-cb * rho1) as f32)
            }
            _ => {
                let m1 = self.history.x0[1].as_ref().ok_or_else(missing)?;
                let m2 = self.history.x0[0].as_ref().ok_or_else(missing)?;
                let (r1, r2) = (self.rk(step - 2, &iv), self.rk(step - 3, &iv));
                let rho = solve_lu([[1.0, 1.0, 1.0], [r1, r2, 1.0], [r1 * r1, r2 * r2, 1.0]], iv.b());
                let (q1, q2, qt) = (rho[0] as f64 / r1 as f64, rho[1] as f64 / r2 as f64, rho[2] as f64);
                // x_t = cx·x − cm·m0 − cb·(ρ0·(m1 − m0)/r1 + ρ1·(m2 − m0)/r2 + ρ2·(m_t − m0))
                let partial = lincomb3(x, cx as f32, m0, (-cm + cb * (q1 + q2 + qt)) as f32, m1, (-cb * q1) as f32)?;
                lincomb3(&partial, 1.0, m2, (-cb * q2) as f32, m_t, (-cb * qt) as f32)
            }
        }
    }

    /// `multistep_uni_p_bh_update` at step `step` of order `order`, with the history already
    /// shifted (x0[2] is this step's data prediction).
    fn predictor(&self, step: usize, order: usize, sample: &Tensor) -> Result<Tensor> {
        let missing = || Error::Other(format!("{CLASS}: predictor history missing at step {step}"));
        let m0 = self.history.x0[2].as_ref().ok_or_else(missing)?;
        let iv = self.interval(step, step + 1);
        let (cx, cm, cb) = (iv.cx as f64, iv.cm as f64, iv.cb as f64);
        match order {
            // x_t = cx·x − cm·m0 (on the final step to σ = 0 this is m0 itself)
            1 => lincomb2(sample, cx as f32, m0, (-cm) as f32),
            2 => {
                let mi = self.history.x0[1].as_ref().ok_or_else(missing)?;
                let inv_rk = 1.0 / self.rk(step - 1, &iv) as f64;
                // x_t = cx·x − cm·m0 − cb·0.5·(mi − m0)/rk  (ρ_p = 0.5 hard-coded for order 2)
                lincomb3(sample, cx as f32, m0, (-cm + 0.5 * cb * inv_rk) as f32, mi, (-0.5 * cb * inv_rk) as f32)
            }
            _ => {
                let m1 = self.history.x0[1].as_ref().ok_or_else(missing)?;
                let m2 = self.history.x0[0].as_ref().ok_or_else(missing)?;
                let (r1, r2) = (self.rk(step - 1, &iv), self.rk(step - 2, &iv));
                let [b1, b2, _] = iv.b();
                // ρ_p = solve(R[:-1, :-1], b[:-1]) with R's rows rks⁰, rks¹
                let rho = solve_lu([[1.0, 1.0], [r1, r2]], [b1, b2]);
                let (q1, q2) = (rho[0] as f64 / r1 as f64, rho[1] as f64 / r2 as f64);
                // x_t = cx·x − cm·m0 − cb·(ρ0·(m1 − m0)/r1 + ρ1·(m2 − m0)/r2)
                let partial = lincomb3(sample, cx as f32, m0, (-cm + cb * (q1 + q2)) as f32, m1, (-cb * q1) as f32)?;
                lincomb2(&partial, 1.0, m2, (-cb * q2) as f32)
            }
        }
    }
}

struct Interval {
    lambda_s0: f32,
    h: f32,
    hh: f32,
    h_phi_1: f32,
    b_h: f32,
    cx: f32,
    cm: f32,
    cb: f32,
}

impl Interval {
    /// The right-hand side of UniPC's systems, as diffusers' loop forms it in float32:
    /// b_i = hφ_k·i!/B(h) with hφ_1 = hφ₁/hh − 1, hφ_2 = hφ_1/hh − 1/2, hφ_3 = hφ_2/hh − 1/6.
    fn b(&self) -> [f32; 3] {
        let h_phi_k = self.h_phi_1 / self.hh - 1.0;
        let b1 = h_phi_k / self.b_h;
        let h_phi_k = h_phi_k / self.hh - 0.5;
        let b2 = (h_phi_k * 2.0) / self.b_h;
        let h_phi_k = h_phi_k / self.hh - 1.0 / 6.0;
        let b3 = (h_phi_k * 6.0) / self.b_h;
        [b1, b2, b3]
    }
}

/// `torch.linalg.solve(a, b)` for UniPC's third-order systems, in float32 the way LAPACK's
/// `sgetrf` + `sgetrs` go: partial pivoting (the first of equal pivots wins), the column below
/// the pivot scaled by its reciprocal, the trailing block updated, then the two triangular
/// solves column by column (the upper one multiplying by reciprocal diagonals). The 2×2 of
/// order 2 has its bit-exact closed form below.
pub(crate) fn solve_lu<const N: usize>(mut a: [[f32; N]; N], mut b: [f32; N]) -> [f32; N] {
    for k in 0..N {
        let p = (k..N).fold(k, |p, i| if a[i][k].abs() > a[p][k].abs() { i } else { p });
        a.swap(k, p);
        b.swap(k, p);
        let inv = 1.0 / a[k][k];
        for i in k + 1..N {
            a[i][k] *= inv;
            for j in k + 1..N {
                a[i][j] -= a[i][k] * a[k][j];
            }
        }
    }
    for k in 0..N {
        for i in k + 1..N {
            b[i] -= b[k] * a[i][k];
        }
    }
    for k in (0..N).rev() {
        b[k] *= 1.0 / a[k][k];
        for i in 0..k {
            b[i] -= b[k] * a[i][k];
        }
    }
    b
}

/// `torch.linalg.solve([[1, 1], [r, 1]], [b1, b2])` in float32 on the CPU, bit for bit: LAPACK
/// `sgetrf` (partial pivoting; the first row wins ties; the pivot column is scaled by the
/// pivot's reciprocal) and `sgetrs` (its triangular solves multiply by reciprocal diagonals).
/// Checked against torch 2.15 (MKL) on 40 000 random systems with r near ±1 and in
/// [−3, −0.3]. The closed form (b1 − b2)/(1 − r) can differ in the last bit.
pub(crate) fn solve_unipc_2x2(r: f32, b1: f32, b2: f32) -> (f32, f32) {
    if r.abs() > 1.0 {
        // rows swapped: [[r, 1], [1, 1]] · x = [b2, b1]
        let l = 1.0 / r;
        let u22 = 1.0 - l;
        let y2 = b1 - l * b2;
        let x2 = y2 * (1.0 / u22);
        let x1 = (b2 - x2) * (1.0 / r);
        (x1, x2)
    } else {
        let u22 = 1.0 - r;
        let y2 = b2 - r * b1;
        let x2 = y2 * (1.0 / u22);
        (b1 - x2, x2)
    }
}

impl Scheduler for UniPcMultistepScheduler {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::UniPcMultistep
    }

    fn set_timesteps(&mut self, n: usize) -> Result<()> {
        let train = self.num_train_timesteps;
        check_num_steps(n, train)?;
        let (timesteps, sigmas): (Vec<f32>, Vec<f32>) = match self.flow {
            Some(_) if self.schedule == SigmaSchedule::Karras => {
                // Karras sigmas of the beta schedule, mapped into (0, 1) as σ/(σ + 1); the
                // timesteps σ·T truncated (numpy float64, then int64). The shift is not used.
                let (lo, hi) = (
                    self.sigma_bounds.0.unwrap_or(self.train_sigmas[0] as f64),
                    self.sigma_bounds.1.unwrap_or(self.train_sigmas[train - 1] as f64),
                );
                let sig: Vec<f64> = self.schedule.convert(lo, hi, n).unwrap_or_default().iter().map(|&s| s / (s + 1.0)).collect();
                let last = match self.final_sigmas {
                    FinalSigmas::Zero => 0.0,
                    FinalSigmas::SigmaMin => sig[n - 1],
                };
                let ts = sig.iter().map(|&s| (s * train as f64) as i64 as f32).collect();
                (ts, sig.iter().chain([&last]).map(|&s| s as f32).collect())
            }
            Some(flow) => {
                // numpy float64 throughout, then float32 sigmas and int64-truncated timesteps.
                let mut s: Vec<f64> = spacing::linspace(1.0, 1.0 / train as f64, n + 1)[..n]
                    .iter()
                    .map(|&s| flow.shift * s / (1.0 + (flow.shift - 1.0) * s))
                    .collect();
                if let Some(t) = flow.shift_terminal {
                    stretch_to_terminal(&mut s, t)?;
                }
                if (s[0] - 1.0).abs() < 1e-6 {
                    s[0] -= 1e-6; // keeps log σ finite at the first step
                }
                let last = match self.final_sigmas {
                    FinalSigmas::Zero => 0.0,
                    FinalSigmas::SigmaMin => s[n - 1],
                };
                let ts = s.iter().map(|&s| (s * train as f64) as i64 as f32).collect();
                (ts, s.iter().chain([&last]).map(|&s| s as f32).collect())
            }
            None if self.schedule != SigmaSchedule::Interpolated => {
                // Between the training sigmas' ends (or sigma_min/sigma_max); Karras rounds the
                // timesteps half to even, exponential truncates them; sigma_min's last sigma is
                // the schedule's own last one.
                let (lo, hi) = (
                    self.sigma_bounds.0.unwrap_or(self.train_sigmas[0] as f64),
                    self.sigma_bounds.1.unwrap_or(self.train_sigmas[train - 1] as f64),
                );
                let sig = self.schedule.convert(lo, hi, n).unwrap_or_default();
                let log_sigmas: Vec<f32> = self.train_sigmas.iter().map(|s| s.ln()).collect();
                let t = sig.iter().map(|&s| sigma_to_t(s, &log_sigmas));
                let ts: Vec<i64> = match self.schedule {
                    SigmaSchedule::Karras => t.map(|t| t.round_ties_even() as i64).collect(),
                    _ => t.map(|t| t as i64).collect(),
                };
                if ts.iter().filter(|&&t| t == ts[0]).count() > 1 {
                    return Err(Error::Other(format!("UniPC with {n} steps repeats timestep {}; use fewer steps", ts[0])));
                }
                let last = match self.final_sigmas {
                    FinalSigmas::Zero => 0.0,
                    FinalSigmas::SigmaMin => sig[n - 1],
                };
                (ts.iter().map(|&t| t as f32).collect(), sig.iter().chain([&last]).map(|&s| s as f32).collect())
            }
            None => {
                let ts = spacing::dpm(self.spacing, train, train, n, self.steps_offset);
                // As DPM-Solver: a repeated first timestep makes diffusers start at the second
                // occurrence; steps here are plain indices, so refuse rather than differ.
                if let Some(&t0) = ts.first() {
                    if ts.iter().filter(|&&t| t == t0).count() > 1 {
                        return Err(Error::Other(format!("UniPC with {n} steps repeats timestep {t0}; use fewer steps")));
                    }
                }
                let last = match self.final_sigmas {
                    FinalSigmas::Zero => 0.0,
                    FinalSigmas::SigmaMin => self.train_sigmas[0],
                };
                let sigmas = ts.iter().map(|&t| spacing::interp(t as f64, &self.train_sigmas) as f32).chain([last]).collect();
                (ts.iter().map(|&t| t as f32).collect(), sigmas)
            }
        };
        self.timesteps = timesteps;
        self.sigmas = sigmas;
        self.history = History::default();
        Ok(())
    }

    fn timesteps(&self) -> &[f32] {
        &self.timesteps
    }

    fn schedule_sigmas(&self) -> Option<&[f32]> {
        Some(&self.sigmas)
    }

    fn resumable(&self) -> bool {
        true // its history is saved_state
    }

    fn init_noise_sigma(&self) -> f32 {
        1.0
    }

    fn scale_model_input(&self, sample: &Tensor, step: usize) -> Result<Tensor> {
        check_step("scale_model_input", step, self.timesteps.len())?;
        Ok(sample.clone())
    }

    fn step(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Result<Tensor> {
        let len = self.timesteps.len();
        check_step("step", step, len)?;
        // The history belongs to the step just before; anything else starts afresh, as
        // diffusers does after set_timesteps + set_begin_index(step).
        if self.history.last_step.map(|s| s + 1) != Some(step) {
            self.history = History::default();
        }
        let m_t = self.convert(model_output, step, sample)?;
        let use_corrector =
            step > 0 && !self.disable_corrector.contains(&(step as i64 - 1)) && self.history.last_sample.is_some();
        let sample = if use_corrector { self.corrector(step, self.history.this_order, &m_t, sample)? } else { sample.clone() };

        let h = &mut self.history;
        // model_outputs shifted by one; only solver_order of them are kept.
        h.x0[0] = if self.solver_order == 3 { h.x0[1].take() } else { None };
        h.x0[1] = if self.solver_order >= 2 { h.x0[2].take() } else { None };
        h.x0[2] = Some(m_t);
        let order = if self.lower_order_final { self.solver_order.min(len - step) } else { self.solver_order };
        h.this_order = order.min(h.lower_order_nums + 1);
        h.last_sample = Some(sample.clone());
        let prev = self.predictor(step, self.history.this_order, &sample)?;
        let h = &mut self.history;
        h.lower_order_nums = (h.lower_order_nums + 1).min(self.solver_order);
        h.last_step = Some(step);
        Ok(prev)
    }

    fn saved_state(&self) -> Option<SchedulerState> {
        let h = &self.history;
        let mut s = SchedulerState::new(h.last_step?);
        s.scalars.push((LOWER_ORDER_NUMS.into(), h.lower_order_nums as i64));
        s.scalars.push((THIS_ORDER.into(), h.this_order as i64));
        for (name, t) in [(X0_OLDEST, &h.x0[0]), (X0_OLDER, &h.x0[1]), (X0_NEWER, &h.x0[2]), (LAST_SAMPLE, &h.last_sample)] {
            if let Some(t) = t {
                s.tensors.push((name.into(), t.clone()));
            }
        }
        Some(s)
    }

    fn restore_state(&mut self, state: SchedulerState) -> Result<()> {
        check_step("restore_state", state.step, self.timesteps.len())?;
        state.check_names(CLASS, &[LOWER_ORDER_NUMS, THIS_ORDER], &[X0_OLDEST, X0_OLDER, X0_NEWER, LAST_SAMPLE])?;
        let order = self.solver_order as i64;
        let scalar = |name: &str, lo: i64| -> Result<usize> {
            match state.scalar(name) {
                Some(v) if (lo..=order).contains(&v) => Ok(v as usize),
                v => Err(Error::Other(format!("{CLASS}: saved state's {name} is {v:?}, expected {lo}..={order}"))),
            }
        };
        let lower_order_nums = scalar(LOWER_ORDER_NUMS, 1)?;
        let this_order = scalar(THIS_ORDER, 1)?;
        let need = |name: &str| {
            state.tensor(name).cloned().ok_or_else(|| Error::Other(format!("{CLASS}: saved state lacks '{name}'")))
        };
        // After k steps the history holds min(k, solver_order) predictions: lower_order_nums.
        let kept = |name: &str, needed: bool| match state.tensor(name) {
            Some(t) => Ok(Some(t.clone())),
            None if needed => Err(Error::Other(format!("{CLASS}: saved state lacks '{name}'"))),
            None => Ok(None),
        };
        let older = kept(X0_OLDER, self.solver_order >= 2 && lower_order_nums >= 2)?;
        let oldest = kept(X0_OLDEST, self.solver_order >= 3 && lower_order_nums >= 3)?;
        self.history = History {
            last_step: Some(state.step),
            x0: [oldest, older, Some(need(X0_NEWER)?)],
            last_sample: Some(need(LAST_SAMPLE)?),
            lower_order_nums,
            this_order,
        };
        Ok(())
    }

    fn add_noise(&self, original: &Tensor, noise: &Tensor, step: usize) -> Result<Tensor> {
        check_step("add_noise", step, self.timesteps.len())?;
        let (alpha, sigma) = self.alpha_sigma(self.sigmas[step]);
        lincomb2(original, alpha, noise, sigma)
    }
}

/// diffusers' `stretch_shift_to_terminal` (numpy float64): rescales 1 − σ so the last sigma
/// becomes `terminal`. A schedule whose last sigma is 1 (one step) would divide 0 by 0 there
/// (NaN sigmas): refused.
pub(crate) fn stretch_to_terminal(s: &mut [f64], terminal: f64) -> Result<()> {
    let Some(&last) = s.last() else { return Ok(()) };
    let scale = (1.0 - last) / (1.0 - terminal);
    if scale == 0.0 || !scale.is_finite() {
        return Err(Error::Other(format!(
            "shift_terminal: with {} step(s) the last shifted sigma is {last}, and stretching it to {terminal} divides by zero (diffusers gets NaN sigmas); use more steps",
            s.len()
        )));
    }
    for v in s.iter_mut() {
        *v = 1.0 - ((1.0 - *v) / scale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::solve_unipc_2x2;
    use crate::weights::{SafeTensors, StoredDType};

    /// Bit for bit against torch.linalg.solve on the systems in tests/fixtures/schedulers.wan.*
    /// (made by tools/reference/scheduler_fixtures.py).
    #[test]
    fn solve_matches_torch_bit_for_bit() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schedulers.wan.safetensors");
        let st = SafeTensors::open(&path).unwrap();
        let info = &st.tensors["unipc_solve2"];
        assert_eq!(info.dtype, StoredDType::F32);
        let v: Vec<f32> = bytemuck::pod_collect_to_vec(st.bytes(info));
        assert!(v.len() >= 5 * 400, "{} systems", v.len() / 5);
        for row in v.chunks_exact(5) {
            let (rho0, rho1) = solve_unipc_2x2(row[0], row[1], row[2]);
            assert_eq!((rho0.to_bits(), rho1.to_bits()), (row[3].to_bits(), row[4].to_bits()), "r = {:e}, b = {:?}", row[0], &row[1..3]);
        }
    }
}
