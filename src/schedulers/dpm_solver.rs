//! diffusers' `DPMSolverMultistepScheduler`: DPM-Solver++ (data prediction) and its SDE variant
//! (`sde-dpmsolver++`, which adds fresh noise each step from the pipeline's torch generator),
//! order 1, 2 or 3, midpoint or heun second-order weights, lower-order steps at the start and end
//! as diffusers takes them, on interpolated, Karras or exponential sigmas, or on a
//! flow-matching model's shifted flow sigmas (`use_flow_sigmas`, `flow_prediction`: diffusers'
//! `DPMSolverMultistepScheduler.from_config(wan_pipe.scheduler.config)`, the "dpm++" solver of
//! Wan's own code).

use super::config::{FinalSigmas, PredictionType, SchedulerConfig, TimestepSpacing};
use super::sigmas::{sigma_to_t, SigmaSchedule};
use super::threshold::Thresholding;
use super::{check_num_steps, check_step, spacing, Scheduler, SchedulerKind, SchedulerState, StepNoise};
use crate::error::{Error, Result};
use crate::ops::elementwise::{lincomb2, lincomb3};
use crate::tensor::Tensor;

const CLASS: &str = "DPMSolverMultistepScheduler";
/// The name of its one history tensor in a [`SchedulerState`] (also what version-1 checkpoint
/// files, which held this tensor alone, are read as).
pub const HISTORY: &str = "previous_x0";
/// The data prediction of the step before that one (third order only).
pub const HISTORY2: &str = "previous_x0_2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SolverType {
    Midpoint,
    Heun,
}

pub struct DpmSolverMultistepScheduler {
    alphas_cumprod: Vec<f32>,
    /// `use_flow_sigmas`: the shift of the flow-matching schedule; α = 1 − σ there.
    flow_shift: Option<f64>,
    /// `prediction_type: flow_prediction`: the model predicts v = noise − x₀, so x̂₀ = x − σ·v.
    flow_prediction: bool,
    /// √((1−ᾱ)/ᾱ) for every training timestep, in torch's float32.
    train_sigmas: Vec<f32>,
    prediction: PredictionType,
    spacing: TimestepSpacing,
    steps_offset: i64,
    solver_order: usize,
    solver_type: SolverType,
    lower_order_final: bool,
    euler_at_final: bool,
    final_sigmas: FinalSigmas,
    lambda_min_clipped: f64,
    schedule: SigmaSchedule,
    /// `use_lu_lambdas` (Lu et al.'s uniform log-SNR steps), which diffusers checks after
    /// Karras and before exponential sigmas.
    lu_lambdas: bool,
    threshold: Option<Thresholding>,
    /// diffusers leaves Karras / Lu timesteps unrounded (then truncated) on the cosine schedule.
    cosine: bool,
    /// `sde-dpmsolver++` / `sde-dpmsolver`: each step adds fresh noise σ_t·√(1−e^{−2h})·z
    /// (σ_t·√(e^{2h}−1)·z for the latter), z drawn from `generator`.
    sde: bool,
    /// `dpmsolver` / `sde-dpmsolver`: DPM-Solver on the noise prediction ε (the history holds
    /// ε's, not x̂₀'s).
    noise_pred: bool,
    generator: Option<StepNoise>,
    timesteps: Vec<f32>,
    /// One more than the timesteps: the sigma each step lands on.
    sigmas: Vec<f32>,
    /// The data predictions of the previous steps, kept on the device, newest first (at most
    /// solver_order − 1 of them), with the step index of the newest.
    previous: Option<(usize, Vec<Tensor>)>,
}

impl DpmSolverMultistepScheduler {
    pub fn new(cfg: &SchedulerConfig) -> Result<DpmSolverMultistepScheduler> {
        // diffusers re-registers "deis" as dpmsolver++ and the UniPC/DEIS solver types as midpoint.
        let algorithm = cfg.algorithm_type.as_deref().unwrap_or("dpmsolver++");
        let (sde, noise_pred) = match algorithm {
            "dpmsolver++" | "deis" => (false, false),
            "sde-dpmsolver++" => (true, false),
            // The noise-prediction DPM-Solver (deprecated in diffusers, which still runs it).
            "dpmsolver" => (false, true),
            "sde-dpmsolver" => (true, true),
            o => {
                return Err(cfg.bad(
                    "algorithm_type",
                    format!("\"{o}\" is not one of \"dpmsolver++\", \"sde-dpmsolver++\", \"dpmsolver\", \"sde-dpmsolver\""),
                ))
            }
        };
        if noise_pred {
            // diffusers' own checks, and the cases it would crash on.
            if cfg.final_sigmas_type.as_deref().unwrap_or("zero") == "zero" {
                return Err(cfg.bad(
                    "final_sigmas_type",
                    format!("\"zero\" (the default) is refused by diffusers for algorithm_type \"{algorithm}\"; set final_sigmas_type \"sigma_min\""),
                ));
            }
            if cfg.prediction_type.as_deref() == Some("flow_prediction") {
                return Err(cfg.bad("prediction_type", format!("\"flow_prediction\" needs algorithm_type \"dpmsolver++\" (diffusers raises for \"{algorithm}\")")));
            }
            if sde && cfg.solver_order == Some(3) {
                return Err(cfg.bad("solver_order", "3 with algorithm_type \"sde-dpmsolver\": diffusers has no third-order update for it (its step fails); use 1 or 2"));
            }
        }
        let solver_type = match cfg.solver_type.as_deref().unwrap_or("midpoint") {
            "midpoint" | "logrho" | "bh1" | "bh2" => SolverType::Midpoint,
            "heun" => SolverType::Heun,
            o => return Err(cfg.bad("solver_type", format!("\"{o}\" is not one of \"midpoint\", \"heun\""))),
        };
        let solver_order = cfg.solver_order.unwrap_or(2);
        if !(1..=3).contains(&solver_order) {
            return Err(cfg.bad("solver_order", format!("{solver_order} is not one of 1, 2, 3 (2 is the default)")));
        }
        cfg.require_off("use_dynamic_shifting", cfg.use_dynamic_shifting, CLASS)?;
        if let Some(v) = &cfg.variance_type {
            return Err(cfg.bad("variance_type", format!("\"{v}\" (learned variance) is not supported; remove the key")));
        }
        let schedule = SigmaSchedule::from_config(cfg, CLASS)?;
        let flow_shift = match cfg.use_flow_sigmas == Some(true) {
            false => None,
            true => Some(cfg.flow_shift.unwrap_or(1.0)),
        };
        if flow_shift.is_some() {
            // diffusers checks Karras, Lu and exponential sigmas before flow sigmas, so it would
            // build them from the beta schedule a flow model does not use, then step them with
            // flow's α = 1 − σ.
            let other = if schedule == SigmaSchedule::Karras {
                Some("use_karras_sigmas")
            } else if schedule == SigmaSchedule::Exponential {
                Some("use_exponential_sigmas")
            } else if schedule == SigmaSchedule::Beta {
                Some("use_beta_sigmas")
            } else if cfg.use_lu_lambdas == Some(true) {
                Some("use_lu_lambdas")
            } else {
                None
            };
            if let Some(key) = other {
                return Err(cfg.bad(
                    key,
                    "true together with use_flow_sigmas is not supported: diffusers then builds the beta schedule's sigmas (up to ~157) and steps them as flow sigmas, α = 1 − σ < 0, so its latents become NaN; use the flow sigmas with flow_shift",
                ));
            }
            if sde {
                // The only flow-matching pipeline is WanPipeline, which calls step() without its
                // generator: diffusers would draw this noise from torch's unseeded global stream.
                return Err(cfg.bad(
                    "algorithm_type",
                    "an SDE algorithm_type on flow sigmas is not supported: WanPipeline steps the scheduler without its generator, so diffusers draws the SDE noise from torch's unseeded global stream and no seed gives the same video twice; use \"dpmsolver++\"",
                ));
            }
        }
        if let Some(shift) = flow_shift {
            if !(shift.is_finite() && shift > 0.0) {
                return Err(cfg.bad("flow_shift", format!("must be a positive number, got {shift}")));
            }
        }
        let flow_prediction = cfg.prediction_type.as_deref() == Some("flow_prediction");
        let alphas_cumprod = cfg.alphas_cumprod_for_sigmas()?;
        let train_sigmas = alphas_cumprod.iter().map(|&a| ((1.0 - a) / a).sqrt()).collect();
        Ok(DpmSolverMultistepScheduler {
            flow_shift,
            flow_prediction,
            // (flow_prediction is read above; the enum has the noise-model kinds)
            prediction: if flow_prediction { PredictionType::Sample } else { cfg.prediction_type(CLASS)? },
            spacing: cfg.timestep_spacing(TimestepSpacing::Linspace)?,
            steps_offset: cfg.steps_offset.unwrap_or(0),
            solver_order,
            solver_type,
            lower_order_final: cfg.lower_order_final.unwrap_or(true),
            euler_at_final: cfg.euler_at_final.unwrap_or(false),
            final_sigmas: cfg.final_sigmas()?,
            lambda_min_clipped: cfg.lambda_min_clipped.unwrap_or(f64::NEG_INFINITY),
            threshold: Thresholding::from_config(cfg)?,
            cosine: cfg.beta_schedule.as_deref() == Some("squaredcos_cap_v2"),
            lu_lambdas: cfg.use_lu_lambdas == Some(true) && schedule != SigmaSchedule::Karras,
            schedule,
            sde,
            noise_pred,
            generator: None,
            alphas_cumprod,
            train_sigmas,
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            previous: None,
        })
    }

    /// The sigmas of the current schedule (`scheduler.sigmas`), last one included.
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// Where the schedule starts once lambda_min_clipped cuts off the noisy timesteps whose
    /// λ(t) = log α_t − log σ_t lies below it (diffusers' `last_timestep`,
    /// `num_train_timesteps - searchsorted(flip(lambda_t), lambda_min_clipped)`).
    fn last_timestep(&self) -> usize {
        let below = self
            .alphas_cumprod
            .iter()
            .filter(|&&a| ((a.sqrt().ln() - (1.0 - a).sqrt().ln()) as f64) < self.lambda_min_clipped)
            .count();
        self.alphas_cumprod.len() - below
    }
}

impl DpmSolverMultistepScheduler {
    /// The noise-prediction DPM-Solver's update (`dpmsolver`, `sde-dpmsolver`), history of ε's:
    ///   x_t = (α_t/α_s)·x − k·σ_t(e^h − 1)·D0 + w1·D1 + w2·D2 (+ σ_t·√(e^{2h} − 1)·z),
    /// k = 1 (ODE) or 2 (SDE); D1, D2 as in the data-prediction update.
    fn noise_update(&mut self, sample: &Tensor, m0: &Tensor, history: &[Tensor], step: usize, at: (f32, f32, f32, f32, f32)) -> Result<Tensor> {
        let (alpha_s, alpha_t, sigma_t, lambda_s, h) = at;
        let eh = h.exp();
        let cx = alpha_t / alpha_s;
        let base = sigma_t * (eh - 1.0);
        let c_d0 = if self.sde { -(2.0 * base) } else { -base };
        let heun1 = sigma_t * ((eh - 1.0) / h - 1.0);
        // D1's weight at second order (midpoint or heun), D1's and D2's at third.
        let second = match (self.sde, self.solver_type) {
            (false, SolverType::Midpoint) => -0.5 * base as f64,
            (false, SolverType::Heun) => -(heun1 as f64),
            (true, SolverType::Midpoint) => -(base as f64),
            (true, SolverType::Heun) => -((2.0 * heun1) as f64),
        };
        let third = (-(heun1 as f64), -((sigma_t * ((eh - 1.0 - h) / (h * h) - 0.5)) as f64));
        let w = self.history_weights(history.len(), step, lambda_s, h, c_d0 as f64, second, third)?;
        let cn = sigma_t * ((2.0 * h).exp() - 1.0).sqrt();
        self.combine(sample, cx, m0, history, w, cn)
    }

    /// The weights on m0, m1, m2 of an update from the `n` previous outputs it uses: D0's weight
    /// `d0w`, D1's at second order, (D1's, D2's) at third — D1 = (m0 − m1)/r0 at second order,
    /// and see [`third_order`]; r0, r1 are the previous steps' λ-intervals over h (float32, as torch).
    #[allow(clippy::too_many_arguments)]
    fn history_weights(&self, n: usize, step: usize, lambda_s: f32, h: f32, d0w: f64, second: f64, third: (f64, f64)) -> Result<(f64, f64, f64)> {
        let flow = self.flow_shift.is_some();
        let lambda_back = |k: usize| alpha_sigma_lambda(self.sigmas[step - k], flow).2;
        Ok(match n {
            0 => (d0w, 0.0, 0.0),
            1 => {
                let inv_r0 = (1.0 / ((lambda_s - lambda_back(1)) / h)) as f64;
                (d0w + second * inv_r0, -second * inv_r0, 0.0)
            }
            2 => {
                let (lambda_s1, lambda_s2) = (lambda_back(1), lambda_back(2));
                third_order(d0w, third.0, third.1, (lambda_s - lambda_s1) / h, (lambda_s1 - lambda_s2) / h)
            }
            _ => return Err(Error::Other(format!("{CLASS}: at most two previous outputs"))),
        })
    }

    /// cx·x + w0·m0 + w1·m1 + w2·m2 over the history given, and with the SDE cn·z, z a fresh
    /// float32 `randn` from the pipeline's generator (whatever the pipeline's dtype, as diffusers).
    fn combine(&mut self, sample: &Tensor, cx: f32, m0: &Tensor, history: &[Tensor], w: (f64, f64, f64), cn: f32) -> Result<Tensor> {
        let (w0, w1, w2) = w;
        let out = match history {
            [] => lincomb2(sample, cx, m0, w0 as f32)?,
            [m1] => lincomb3(sample, cx, m0, w0 as f32, m1, w1 as f32)?,
            [m1, m2, ..] => {
                let x = lincomb3(sample, cx, m0, w0 as f32, m1, w1 as f32)?;
                lincomb2(&x, 1.0, m2, w2 as f32)?
            }
        };
        if !self.sde {
            return Ok(out);
        }
        let gen = self.generator.as_mut().ok_or_else(|| Error::Other(format!("{CLASS}: no generator")))?;
        let noise = gen.draw(sample, true)?;
        lincomb2(&out, 1.0, &noise, cn)
    }

    /// One DPM-Solver++ update of order 1 + `history.len()` (history newest first: the data
    /// predictions of the previous steps), as diffusers' first/second/third-order updates, each
    /// written as weights on x, m0, m1, m2 (and the SDE's noise):
    ///   ODE: x_t = (σ_t/σ_s)·x − A·D0 + w1·D1 + w2·D2, A = α_t(e^{−h} − 1);
    ///   SDE: x_t = (σ_t/σ_s·e^{−h})·x + B·D0 + w1·D1 + w2·D2 + σ_t·√(1 − e^{−2h})·z,
    ///        B = α_t(1 − e^{−2h}), z a fresh float32 `randn` from the pipeline's generator.
    /// The scalars are float32 as torch computes them on 0-dim tensors; the weights are
    /// combined in f64 and applied in one pass.
    fn update(&mut self, sample: &Tensor, m0: &Tensor, history: &[Tensor], step: usize) -> Result<Tensor> {
        let flow = self.flow_shift.is_some();
        let (alpha_s, sigma_s, lambda_s) = alpha_sigma_lambda(self.sigmas[step], flow);
        let (alpha_t, sigma_t, lambda_t) = alpha_sigma_lambda(self.sigmas[step + 1], flow);
        let h = lambda_t - lambda_s;
        if self.noise_pred {
            return self.noise_update(sample, m0, history, step, (alpha_s, alpha_t, sigma_t, lambda_s, h));
        }
        let (cx, c_d0) = if self.sde {
            let e2h = (-2.0f32 * h).exp();
            ((sigma_t / sigma_s) * (-h).exp(), alpha_t * (1.0 - e2h))
        } else {
            (sigma_t / sigma_s, -(alpha_t * ((-h).exp() - 1.0)))
        };
        // D1's weight at second order (midpoint's ∓½·{A, B} or heun's own), D1's and D2's at third.
        let second = match (self.sde, self.solver_type) {
            (false, SolverType::Midpoint) => -0.5 * (alpha_t * ((-h).exp() - 1.0)) as f64,
            (false, SolverType::Heun) => (alpha_t * (((-h).exp() - 1.0) / h + 1.0)) as f64,
            (true, SolverType::Midpoint) => 0.5 * c_d0 as f64,
            (true, SolverType::Heun) => (alpha_t * ((1.0 - (-2.0f32 * h).exp()) / (-2.0 * h) + 1.0)) as f64,
        };
        let third = if self.sde {
            let e2h = (-2.0f32 * h).exp();
            let two_h = 2.0 * h;
            ((alpha_t * ((1.0 - e2h) / (-2.0 * h) + 1.0)) as f64, (alpha_t * ((1.0 - e2h - 2.0 * h) / (two_h * two_h) - 0.5)) as f64)
        } else {
            let em = (-h).exp();
            ((alpha_t * ((em - 1.0) / h + 1.0)) as f64, -((alpha_t * ((em - 1.0 + h) / (h * h) - 0.5)) as f64))
        };
        let w = self.history_weights(history.len(), step, lambda_s, h, c_d0 as f64, second, third)?;
        let cn = sigma_t * (1.0 - (-2.0f32 * h).exp()).sqrt();
        self.combine(sample, cx, m0, history, w, cn)
    }
}

/// The third-order update's weights on m0, m1, m2 from the weight of D0 and those of D1 and D2:
/// with r0, r1 the previous steps' λ-intervals over h (float32, as torch),
/// D1_0 = (m0 − m1)/r0, D1_1 = (m1 − m2)/r1, D1 = D1_0 + r0/(r0 + r1)·(D1_0 − D1_1) and
/// D2 = (D1_0 − D1_1)/(r0 + r1).
fn third_order(d0w: f64, d1w: f64, d2w: f64, r0: f32, r1: f32) -> (f64, f64, f64) {
    let (a, b) = ((1.0 / r0) as f64, (1.0 / r1) as f64);
    let (q, p) = ((r0 / (r0 + r1)) as f64, (1.0 / (r0 + r1)) as f64);
    (d0w + d1w * (a + q * a) + d2w * p * a, -d1w * (a + q * (a + b)) - d2w * p * (a + b), d1w * q * b + d2w * p * b)
}

/// diffusers' `_sigma_to_alpha_sigma_t` and λ = log α − log σ, in float32 as torch does them
/// on 0-dim tensors (glibc's logf/expf in both). Flow sigmas: α = 1 − σ, σ_t = σ.
fn alpha_sigma_lambda(sigma: f32, flow: bool) -> (f32, f32, f32) {
    let (alpha, sigma_t) = if flow {
        (1.0 - sigma, sigma)
    } else {
        let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
        (alpha, sigma * alpha)
    };
    (alpha, sigma_t, alpha.ln() - sigma_t.ln())
}

impl Scheduler for DpmSolverMultistepScheduler {
    fn kind(&self) -> SchedulerKind {
        match (self.sde, self.schedule == SigmaSchedule::Karras) {
            (false, false) => SchedulerKind::DpmSolverMultistep,
            (false, true) => SchedulerKind::DpmSolverKarras,
            (true, false) => SchedulerKind::DpmSolverSde,
            (true, true) => SchedulerKind::DpmSolverSdeKarras,
        }
    }

    fn set_timesteps(&mut self, n: usize) -> Result<()> {
        let train = self.alphas_cumprod.len();
        check_num_steps(n, train)?;
        // Timesteps may leave 0..train (trailing spacing can end at -1, leading with an offset
        // can reach train): diffusers' np.interp then clamps to the end sigmas, and so does this.
        let ts = spacing::dpm(self.spacing, train, self.last_timestep(), n, self.steps_offset);
        // Karras / exponential: sigmas between the training extremes, timesteps mapped back
        // (Karras rounds them half to even, exponential truncates them in the int64 cast).
        let log_sigmas: Vec<f32> = self.train_sigmas.iter().map(|s| s.ln()).collect();
        let converted = if self.lu_lambdas {
            // _convert_to_lu: log σ linear from the largest training log σ to the smallest
            // (ρ = 1), in float64 from numpy's float32 logs; rounded timesteps like Karras.
            let (lmin, lmax) = (log_sigmas[0] as f64, log_sigmas[train - 1] as f64);
            Some(spacing::linspace(0.0, 1.0, n).iter().map(|&r| (lmax + r * (lmin - lmax)).exp()).collect::<Vec<f64>>())
        } else {
            self.schedule.convert(self.train_sigmas[0] as f64, self.train_sigmas[train - 1] as f64, n)
        };
        // Flow sigmas replace the spaced timesteps: σ = shift(1 − linspace(1, 1/T, n+1)), flipped,
        // the trailing 0 dropped (not UniPC's arithmetic: this one starts below σ = 1), and
        // timesteps σ·T truncated to int64, in numpy's float64.
        let converted = match self.flow_shift {
            Some(shift) => Some(
                spacing::linspace(1.0, 1.0 / train as f64, n + 1)
                    .iter()
                    .rev()
                    .take(n)
                    .map(|&a| {
                        let s = 1.0 - a;
                        shift * s / (1.0 + (shift - 1.0) * s)
                    })
                    .collect::<Vec<f64>>(),
            ),
            None => converted,
        };
        let (ts, converted) = match converted {
            None => (ts, None),
            Some(sig) if self.flow_shift.is_some() => (sig.iter().map(|&s| (s * train as f64) as i64).collect(), Some(sig)),
            Some(sig) => {
                let t = sig.iter().map(|&s| sigma_to_t(s, &log_sigmas));
                let ts: Vec<i64> = match self.schedule {
                    SigmaSchedule::Exponential | SigmaSchedule::Beta if !self.lu_lambdas => t.map(|t| t as i64).collect(),
                    _ if self.cosine => t.map(|t| t as i64).collect(),
                    _ => t.map(|t| t.round_ties_even() as i64).collect(),
                };
                (ts, Some(sig))
            }
        };
        // diffusers starts a fresh schedule at the *second* occurrence of a repeated first
        // timestep; steps here are plain indices, so refuse rather than differ.
        match ts.first() {
            None => return Err(Error::Other(format!("DPM-Solver with {n} steps: lambda_min_clipped leaves no timesteps"))),
            Some(&t0) if ts.iter().filter(|&&t| t == t0).count() > 1 => {
                return Err(Error::Other(format!("DPM-Solver with {n} steps repeats timestep {t0}; use fewer steps")));
            }
            Some(_) => {}
        }
        let last = match self.final_sigmas {
            FinalSigmas::Zero => 0.0,
            FinalSigmas::SigmaMin => self.train_sigmas[0],
        };
        self.sigmas = match converted {
            Some(sig) => sig.iter().map(|&s| s as f32).chain([last]).collect(),
            None => ts.iter().map(|&t| spacing::interp(t as f64, &self.train_sigmas) as f32).chain([last]).collect(),
        };
        self.timesteps = ts.iter().map(|&t| t as f32).collect();
        self.previous = None;
        Ok(())
    }

    fn timesteps(&self) -> &[f32] {
        &self.timesteps
    }

    fn schedule_sigmas(&self) -> Option<&[f32]> {
        Some(&self.sigmas)
    }

    fn resumable(&self) -> bool {
        // Its history is saved_state; the SDE's generator position is not.
        !self.sde
    }

    fn init_noise_sigma(&self) -> f32 {
        1.0
    }

    fn is_stochastic(&self) -> bool {
        self.sde
    }

    fn set_generator(&mut self, noise: StepNoise) {
        self.generator = Some(noise);
    }

    fn scale_model_input(&self, sample: &Tensor, step: usize) -> Result<Tensor> {
        check_step("scale_model_input", step, self.timesteps.len())?;
        Ok(sample.clone())
    }

    fn step(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Result<Tensor> {
        let len = self.timesteps.len();
        check_step("step", step, len)?;
        if self.sde && self.generator.is_none() {
            return Err(Error::Other(format!(
                "{CLASS} with algorithm_type sde-dpmsolver++ draws noise each step: set_generator must give it the pipeline's generator first"
            )));
        }
        // The history belongs to the step just before; anything else starts afresh (diffusers
        // would silently pair outputs of unrelated steps).
        let history: Vec<Tensor> = match self.previous.take() {
            Some((i, h)) if i + 1 == step => h,
            _ => Vec::new(),
        };
        let (alpha_s, sigma_s, _) = alpha_sigma_lambda(self.sigmas[step], self.flow_shift.is_some());

        // convert_model_output: the data prediction x̂₀.
        let m0 = if self.noise_pred { self.noise_of(model_output, sample, alpha_s, sigma_s)? } else { match self.prediction {
            // x̂₀ = x − σ·v with the schedule's σ itself (diffusers reads `self.sigmas` here).
            _ if self.flow_prediction => lincomb2(sample, 1.0, model_output, -self.sigmas[step])?,
            PredictionType::Epsilon => {
                lincomb2(sample, (1.0 / alpha_s as f64) as f32, model_output, (-(sigma_s as f64) / alpha_s as f64) as f32)?
            }
            PredictionType::VPrediction => lincomb2(sample, alpha_s, model_output, -sigma_s)?,
            PredictionType::Sample => model_output.clone(),
        } };
        let m0 = match &self.threshold {
            Some(t) if !self.noise_pred => t.apply(&m0)?,
            _ => m0,
        };

        // diffusers' order choice: lower orders while the history fills, and at the end.
        let lower_order_final = step + 1 == len
            && (self.euler_at_final || (self.lower_order_final && len < 15) || self.final_sigmas == FinalSigmas::Zero);
        let lower_order_second = step + 2 == len && self.lower_order_final && len < 15;
        let order = if self.solver_order == 1 || history.is_empty() || lower_order_final {
            1
        } else if self.solver_order == 2 || history.len() < 2 || lower_order_second {
            2
        } else {
            3
        };
        let out = self.update(sample, &m0, &history[..order - 1], step)?;
        let mut kept = Vec::with_capacity(2);
        kept.push(m0);
        kept.extend(history);
        kept.truncate(self.solver_order - 1);
        self.previous = Some((step, kept));
        Ok(out)
    }

    fn saved_state(&self) -> Option<SchedulerState> {
        if self.sde {
            return None; // the generator's position is not captured (resumable() is false)
        }
        self.previous.as_ref().map(|(i, h)| {
            let mut s = SchedulerState::new(*i);
            for (name, m) in [HISTORY, HISTORY2].into_iter().zip(h) {
                s.tensors.push((name.into(), m.clone()));
            }
            s
        })
    }

    fn restore_state(&mut self, state: SchedulerState) -> Result<()> {
        check_step("restore_state", state.step, self.timesteps.len())?;
        state.check_names(CLASS, &[], &[HISTORY, HISTORY2])?;
        let mut h = Vec::new();
        for name in [HISTORY, HISTORY2] {
            if let Some(m) = state.tensor(name) {
                h.push(m.clone());
            }
        }
        if h.is_empty() && self.solver_order > 1 {
            return Err(Error::Other(format!("{CLASS}: saved state lacks '{HISTORY}'")));
        }
        h.truncate(self.solver_order - 1);
        self.previous = Some((state.step, h));
        Ok(())
    }

    fn add_noise(&self, original: &Tensor, noise: &Tensor, step: usize) -> Result<Tensor> {
        check_step("add_noise", step, self.timesteps.len())?;
        let (alpha, sigma, _) = alpha_sigma_lambda(self.sigmas[step], self.flow_shift.is_some());
        lincomb2(original, alpha, noise, sigma)
    }
}

impl DpmSolverMultistepScheduler {
    /// `convert_model_output` of the noise-prediction DPM-Solver: ε, thresholded through x̂₀
    /// when thresholding is on (x̂₀ = (x − σε)/α, thresholded, ε = (x − α·x̂₀)/σ).
    fn noise_of(&self, model_output: &Tensor, sample: &Tensor, alpha: f32, sigma: f32) -> Result<Tensor> {
        let (a, s) = (alpha as f64, sigma as f64);
        let eps = match self.prediction {
            PredictionType::Epsilon => model_output.clone(),
            PredictionType::Sample => lincomb2(sample, (1.0 / s) as f32, model_output, (-a / s) as f32)?,
            PredictionType::VPrediction => lincomb2(model_output, alpha, sample, sigma)?,
        };
        match &self.threshold {
            None => Ok(eps),
            Some(t) => {
                let x0 = t.apply(&lincomb2(sample, (1.0 / a) as f32, &eps, (-s / a) as f32)?)?;
                lincomb2(sample, (1.0 / s) as f32, &x0, (-a / s) as f32)
            }
        }
    }
}
