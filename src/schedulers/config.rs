//! `scheduler/scheduler_config.json`, read the way diffusers reads it.
//!
//! Every field is an `Option` because the defaults belong to the class, not to the file:
//! `timestep_spacing` defaults to "leading" for DDIM but "linspace" for DPM-Solver and Euler,
//! `clip_sample` exists only for DDIM, and so on. diffusers' `from_config` also passes on only
//! the keys that were *in the file* (it drops the defaults it filled in, via
//! `_use_default_values`), so `DPMSolverMultistepScheduler.from_config(ddim.config)` sees
//! exactly the file's keys that DPM-Solver has and its own defaults for the rest. Keeping the
//! raw file values and resolving defaults per class reproduces both rules. Keys a class does
//! not know are ignored, as diffusers ignores them (`skip_prk_steps` in the ms-1.7b file).

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer};
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SchedulerConfig {
    /// Where the values came from, for error messages (the file path).
    #[serde(skip)]
    pub source: String,
    /// The file's keys as written, so overrides can be laid over them ([`Self::with_overrides`]).
    #[serde(skip)]
    raw: serde_json::Map<String, serde_json::Value>,
    #[serde(rename = "_class_name")]
    pub class_name: Option<String>,

    // Shared by DDIM, DPM-Solver and Euler (same defaults in all three unless noted).
    pub num_train_timesteps: Option<usize>,
    pub beta_start: Option<f64>,
    pub beta_end: Option<f64>,
    pub beta_schedule: Option<String>,
    pub trained_betas: Option<serde_json::Value>,
    pub prediction_type: Option<String>,
    pub timestep_spacing: Option<String>,
    pub steps_offset: Option<i64>,
    pub rescale_betas_zero_snr: Option<bool>,
    /// DDIM, DPM-Solver and UniPC: dynamic thresholding of x̂₀ (pixel-space models).
    pub thresholding: Option<bool>,
    pub dynamic_thresholding_ratio: Option<f64>,
    pub sample_max_value: Option<f64>,
    /// DPM-Solver and Euler.
    pub final_sigmas_type: Option<String>,
    pub use_karras_sigmas: Option<bool>,
    pub use_exponential_sigmas: Option<bool>,
    pub use_beta_sigmas: Option<bool>,

    // DDIM (and set_alpha_to_one: PNDM, default false there).
    pub clip_sample: Option<bool>,
    pub clip_sample_range: Option<f64>,
    pub set_alpha_to_one: Option<bool>,

    // PNDMScheduler only.
    pub skip_prk_steps: Option<bool>,

    // DPMSolverMultistepScheduler only.
    pub solver_order: Option<usize>,
    pub algorithm_type: Option<String>,
    pub solver_type: Option<String>,
    pub lower_order_final: Option<bool>,
    pub euler_at_final: Option<bool>,
    pub use_lu_lambdas: Option<bool>,
    pub use_flow_sigmas: Option<bool>,
    pub use_dynamic_shifting: Option<bool>,
    #[serde(default, deserialize_with = "python_float")]
    pub lambda_min_clipped: Option<f64>,
    pub variance_type: Option<String>,

    // EulerDiscreteScheduler only.
    pub interpolation_type: Option<String>,
    pub timestep_type: Option<String>,

    // UniPCMultistepScheduler (also solver_order, solver_type, lower_order_final,
    // use_flow_sigmas, use_dynamic_shifting above).
    pub predict_x0: Option<bool>,
    /// Step indices whose following corrector is skipped (diffusers' list of ints).
    pub disable_corrector: Option<Vec<i64>>,
    /// A scheduler object in Python; any non-null value is refused.
    pub solver_p: Option<serde_json::Value>,
    /// The flow-matching shift of UniPC's (and DPM-Solver's) `use_flow_sigmas` schedule.
    pub flow_shift: Option<f64>,
    /// Karras/exponential/beta sigma bounds (UniPC); unused unless one of those is on.
    pub sigma_min: Option<f64>,
    pub sigma_max: Option<f64>,
    /// UniPC and FlowMatchEuler: stretch the shifted schedule to end at this sigma.
    pub shift_terminal: Option<f64>,
    pub time_shift_type: Option<String>,

    // FlowMatchEulerDiscreteScheduler only.
    /// Its name for the flow shift.
    pub shift: Option<f64>,
    pub invert_sigmas: Option<bool>,
    pub stochastic_sampling: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionType {
    Epsilon,
    Sample,
    VPrediction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestepSpacing {
    Leading,
    Linspace,
    Trailing,
}

/// The last sigma of DPM-Solver's and Euler's schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalSigmas {
    Zero,
    SigmaMin,
}

impl SchedulerConfig {
    pub fn from_file(path: &Path) -> Result<SchedulerConfig> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config { path: source.clone(), msg: e.to_string() })?;
        let mut cfg = SchedulerConfig::from_json(&text).map_err(|e| match e {
            Error::Config { msg, .. } => Error::Config { path: source.clone(), msg },
            e => e,
        })?;
        cfg.source = source;
        Ok(cfg)
    }

    pub fn from_json(text: &str) -> Result<SchedulerConfig> {
        let bad = |e: serde_json::Error| Error::Config { path: "<scheduler config>".into(), msg: e.to_string() };
        let raw: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&quote_nonfinite(text)).map_err(bad)?;
        let mut cfg: SchedulerConfig = serde_json::from_value(serde_json::Value::Object(raw.clone())).map_err(bad)?;
        cfg.source = "<scheduler config>".into();
        cfg.raw = raw;
        cfg.register_as_own_class();
        Ok(cfg)
    }

    /// What the file's own class writes back into its config when diffusers loads it
    /// (`register_to_config` in `__init__`): another class's `from_config(pipe.scheduler.config)`
    /// reads these values, not the file's. UniPC turns the DPM-Solver solver types into bh2;
    /// DPM-Solver turns UniPC's and "logrho" into midpoint and "deis" into dpmsolver++.
    fn register_as_own_class(&mut self) {
        let set = |cfg: &mut SchedulerConfig, key: &str, value: &str| {
            cfg.raw.insert(key.into(), serde_json::Value::String(value.into()));
            match key {
                "solver_type" => cfg.solver_type = Some(value.into()),
                _ => cfg.algorithm_type = Some(value.into()),
            }
        };
        match self.class_name.as_deref() {
            Some("UniPCMultistepScheduler") => {
                if matches!(self.solver_type.as_deref(), Some("midpoint" | "heun" | "logrho")) {
                    set(self, "solver_type", "bh2");
                }
            }
            Some("DPMSolverMultistepScheduler") => {
                if matches!(self.solver_type.as_deref(), Some("logrho" | "bh1" | "bh2")) {
                    set(self, "solver_type", "midpoint");
                }
                if self.algorithm_type.as_deref() == Some("deis") {
                    set(self, "algorithm_type", "dpmsolver++");
                }
            }
            _ => {}
        }
    }

    /// The config with `overrides` laid over the file's keys: diffusers'
    /// `Scheduler.from_config(pipe.scheduler.config, **overrides)` (config.yaml's
    /// `scheduler_config`, `--scheduler-config KEY=VALUE`). A key no scheduler here knows is an
    /// error naming it (diffusers would warn and drop it: a typo should not pass silently); a
    /// value of the wrong type names the key and the type expected.
    pub fn with_overrides(&self, overrides: &serde_json::Map<String, serde_json::Value>) -> Result<SchedulerConfig> {
        if overrides.is_empty() {
            return Ok(self.clone());
        }
        let known = field_names();
        let origin = format!("{} with scheduler_config overrides", self.source);
        let mut raw = self.raw.clone();
        for (k, v) in overrides {
            if k.starts_with('_') || !known.contains(&k.as_str()) {
                let options: Vec<&str> = known.iter().filter(|f| !f.starts_with('_')).copied().collect();
                return Err(Error::Config {
                    path: origin,
                    msg: format!("scheduler_config.{k}: not a scheduler option t2v knows (the class is chosen with --scheduler; options: {})", options.join(", ")),
                });
            }
            raw.insert(k.clone(), v.clone());
        }
        let mut cfg: SchedulerConfig = serde_json::from_value(serde_json::Value::Object(raw.clone())).map_err(|e| {
            // serde names the type, not the key: find the override that fails on its own.
            let key = overrides.iter().find(|(k, v)| {
                let one = serde_json::Map::from_iter([((*k).clone(), (*v).clone())]);
                serde_json::from_value::<SchedulerConfig>(serde_json::Value::Object(one)).is_err()
            });
            let msg = match key {
                Some((k, v)) => format!("scheduler_config.{k}: {v} — {e}"),
                None => format!("scheduler_config: {e}"),
            };
            Error::Config { path: origin.clone(), msg }
        })?;
        cfg.source = origin;
        cfg.raw = raw;
        Ok(cfg)
    }

    /// An error naming the file and the field.
    pub(crate) fn bad(&self, field: &str, msg: impl std::fmt::Display) -> Error {
        Error::Config { path: self.source.clone(), msg: format!("{field}: {msg}") }
    }

    pub(crate) fn num_train_timesteps(&self) -> Result<usize> {
        match self.num_train_timesteps.unwrap_or(1000) {
            0 => Err(self.bad("num_train_timesteps", "must be at least 1")),
            n => Ok(n),
        }
    }

    pub(crate) fn prediction_type(&self, class: &str) -> Result<PredictionType> {
        match self.prediction_type.as_deref().unwrap_or("epsilon") {
            "epsilon" => Ok(PredictionType::Epsilon),
            "sample" => Ok(PredictionType::Sample),
            "v_prediction" => Ok(PredictionType::VPrediction),
            // Euler's backwards-compatible spelling of "sample".
            "original_sample" if class == "EulerDiscreteScheduler" => Ok(PredictionType::Sample),
            o => Err(self.bad("prediction_type", format!("\"{o}\" is not supported by {class} here (epsilon, v_prediction, sample)"))),
        }
    }

    pub(crate) fn timestep_spacing(&self, default: TimestepSpacing) -> Result<TimestepSpacing> {
        match self.timestep_spacing.as_deref() {
            None => Ok(default),
            Some("leading") => Ok(TimestepSpacing::Leading),
            Some("linspace") => Ok(TimestepSpacing::Linspace),
            Some("trailing") => Ok(TimestepSpacing::Trailing),
            Some(o) => Err(self.bad("timestep_spacing", format!("\"{o}\" is not one of \"leading\", \"linspace\", \"trailing\""))),
        }
    }

    pub(crate) fn final_sigmas(&self) -> Result<FinalSigmas> {
        match self.final_sigmas_type.as_deref().unwrap_or("zero") {
            "zero" => Ok(FinalSigmas::Zero),
            "sigma_min" => Ok(FinalSigmas::SigmaMin),
            o => Err(self.bad("final_sigmas_type", format!("\"{o}\" is not one of \"zero\", \"sigma_min\""))),
        }
    }

    /// Whether this file describes a flow-matching model (Wan, …): a FlowMatchEuler config, or
    /// one (UniPC, DPM-Solver) with `use_flow_sigmas` or `prediction_type: flow_prediction`.
    /// Such a model's `euler` is [`FlowMatchEuler`](super::SchedulerKind::FlowMatchEuler) and its
    /// `unipc` runs on flow sigmas, both with [`model_flow_shift`](Self::model_flow_shift).
    pub fn is_flow(&self) -> bool {
        self.class_name.as_deref() == Some(super::SchedulerKind::FlowMatchEuler.class_name())
            || self.use_flow_sigmas == Some(true)
            || self.prediction_type.as_deref() == Some("flow_prediction")
    }

    /// The model's flow shift: `shift` in a FlowMatchEuler file, `flow_shift` in the others
    /// (either spelling when the class's own is absent), 1.0 (no shift, both classes'
    /// default) when neither is there.
    pub fn model_flow_shift(&self) -> f64 {
        let fme = self.class_name.as_deref() == Some(super::SchedulerKind::FlowMatchEuler.class_name());
        let (own, other) = if fme { (self.shift, self.flow_shift) } else { (self.flow_shift, self.shift) };
        own.or(other).unwrap_or(1.0)
    }

    /// The same file with its flow shift replaced (a CLI `--flow-shift`): sets both spellings,
    /// `flow_shift` and `shift`, so every flow scheduler built from it uses `shift`.
    /// diffusers' equivalent is `Scheduler.from_config(config, flow_shift=shift)` (UniPC) or
    /// `FlowMatchEulerDiscreteScheduler(shift=shift)`. Refused for a model that is not
    /// flow-matching (see [`is_flow`](Self::is_flow)) and for a shift that is not a positive
    /// finite number.
    pub fn with_flow_shift(mut self, shift: f64) -> Result<SchedulerConfig> {
        if !self.is_flow() {
            return Err(self.bad(
                "flow_shift",
                "a flow shift applies only to flow-matching models (FlowMatchEulerDiscreteScheduler, or use_flow_sigmas / prediction_type \"flow_prediction\"); this scheduler config is not one",
            ));
        }
        if !(shift.is_finite() && shift > 0.0) {
            return Err(self.bad("flow_shift", format!("must be a positive number, got {shift}")));
        }
        self.flow_shift = Some(shift);
        self.shift = Some(shift);
        Ok(self)
    }

    /// Rejects a flag this crate does not implement when it is on (default off).
    pub(crate) fn require_off(&self, field: &str, value: Option<bool>, class: &str) -> Result<()> {
        if value == Some(true) {
            return Err(self.bad(field, format!("true is not supported for {class}; remove the key or set it to false")));
        }
        Ok(())
    }

    /// ᾱ_t for t = 0..num_train_timesteps, as diffusers' `alphas_cumprod` (float32).
    ///
    /// torch builds it in float32: `linspace` (which rounds each element once from exact
    /// double arithmetic, computing from the start in the first half and from the end in
    /// the second), `betas**2`, `1 - betas`; `cumprod` then accumulates in double on the CPU
    /// and rounds each partial product to float32. Repeating those roundings here gives the
    /// same bits, so sigmas match exactly too; an all-f64 schedule would be off by up to
    /// 9e-7 relative (at t ≈ 999), an avoidable tenth of the step tolerance.
    pub fn alphas_cumprod(&self) -> Result<Vec<f32>> {
        let mut acc = 1.0f64;
        Ok(self
            .alphas()?
            .iter()
            .map(|&a| {
                acc *= a as f64;
                acc as f32
            })
            .collect())
    }

    /// α_t = 1 − β_t (float32), diffusers' `scheduler.alphas` (Text2Video-Zero's forward
    /// diffusion multiplies a range of them).
    pub fn alphas(&self) -> Result<Vec<f32>> {
        let n = self.num_train_timesteps()?;
        let (start, end) = (self.beta_start.unwrap_or(0.0001), self.beta_end.unwrap_or(0.02));
        let betas: Vec<f32> = match self.trained_betas.as_ref().filter(|v| !v.is_null()) {
            // `torch.tensor(trained_betas, dtype=torch.float32)`: each rounded once.
            Some(v) => {
                let list: Option<Vec<f32>> = v.as_array().and_then(|a| a.iter().map(|x| x.as_f64().map(|x| x as f32)).collect());
                match list {
                    Some(b) if b.len() == n => b,
                    Some(b) => {
                        return Err(self.bad("trained_betas", format!("has {} values for num_train_timesteps {n}; they must agree", b.len())))
                    }
                    None => return Err(self.bad("trained_betas", "must be a list of numbers")),
                }
            }
            None => match self.beta_schedule.as_deref().unwrap_or("linear") {
                "linear" => torch_linspace_f32(start, end, n),
                "scaled_linear" => torch_linspace_f32(start.sqrt(), end.sqrt(), n).iter().map(|b| b * b).collect(),
                "squaredcos_cap_v2" => betas_for_alpha_bar(n),
                o => return Err(self.bad("beta_schedule", format!("\"{o}\" is not supported (linear, scaled_linear, squaredcos_cap_v2)"))),
            },
        };
        let betas = if self.rescale_betas_zero_snr == Some(true) { rescale_zero_terminal_snr(&betas) } else { betas };
        Ok(betas.iter().map(|&b| 1.0f32 - b).collect())
    }

    /// [`alphas_cumprod`](Self::alphas_cumprod) as the sigma-based classes (DPM-Solver, Euler,
    /// Euler ancestral, UniPC) keep it: with `rescale_betas_zero_snr` the last ᾱ is 0, and they
    /// replace it by 2⁻²⁴ "so the first sigma is not inf".
    pub(crate) fn alphas_cumprod_for_sigmas(&self) -> Result<Vec<f32>> {
        let mut ac = self.alphas_cumprod()?;
        if self.rescale_betas_zero_snr == Some(true) {
            if let Some(last) = ac.last_mut() {
                *last = 2f32.powi(-24);
            }
        }
        Ok(ac)
    }

    /// The same file without the keys a class lacks (diffusers' from_config drops them), for
    /// PNDM, which has no `rescale_betas_zero_snr`.
    pub(crate) fn without_zero_snr(&self) -> SchedulerConfig {
        SchedulerConfig { rescale_betas_zero_snr: None, ..self.clone() }
    }
}

/// diffusers' `rescale_zero_terminal_snr` (Lin et al. 2023, algorithm 1) with torch's float32
/// roundings op for op: √ᾱ shifted to end at 0 and rescaled to keep √ᾱ₀, then back to betas.
fn rescale_zero_terminal_snr(betas: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    let mut sqrt: Vec<f32> = betas
        .iter()
        .map(|&b| {
            acc *= (1.0f32 - b) as f64;
            (acc as f32).sqrt()
        })
        .collect();
    let (s0, st) = (sqrt[0], sqrt[sqrt.len() - 1]);
    let factor = s0 / (s0 - st);
    for v in sqrt.iter_mut() {
        *v = (*v - st) * factor;
    }
    let bar: Vec<f32> = sqrt.iter().map(|v| v * v).collect();
    std::iter::once(bar[0]).chain(bar.windows(2).map(|w| w[1] / w[0])).map(|a| 1.0f32 - a).collect()
}

/// diffusers' `betas_for_alpha_bar(n)` (the Glide cosine schedule, `squaredcos_cap_v2`):
/// β_i = min(1 − ᾱ((i+1)/n)/ᾱ(i/n), 0.999) with ᾱ(t) = cos((t + 0.008)/1.008 · π/2)², in
/// Python's float64, then rounded to float32 by `torch.tensor`.
fn betas_for_alpha_bar(n: usize) -> Vec<f32> {
    let alpha_bar = |t: f64| {
        let c = ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0).cos();
        c * c
    };
    (0..n)
        .map(|i| {
            let (t1, t2) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
            (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999) as f32
        })
        .collect()
}

/// `torch.linspace(start, end, n, dtype=torch.float32)` on the CPU, bit for bit.
fn torch_linspace_f32(start: f64, end: f64, n: usize) -> Vec<f32> {
    let (s, e) = (start as f32, end as f32);
    if n == 1 {
        return vec![s];
    }
    let step = (e - s) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                (s as f64 + step as f64 * i as f64) as f32
            } else {
                (e as f64 - step as f64 * (n - 1 - i) as f64) as f32
            }
        })
        .collect()
}

/// Python's `json` writes float("inf") as the bare token `Infinity` (diffusers saves
/// `"lambda_min_clipped": -Infinity`), which is not JSON; quote such tokens outside strings.
fn quote_nonfinite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_str, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_str {
            in_str = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if c == '"' {
            in_str = true;
        } else if let Some(tok) = ["-Infinity", "Infinity", "NaN"].into_iter().find(|t| rest.starts_with(t)) {
            out.push('"');
            out.push_str(tok);
            out.push('"');
            rest = &rest[tok.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A float that may also be one of Python's non-finite tokens (quoted by `quote_nonfinite`).
fn python_float<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum F {
        Num(f64),
        Text(String),
    }
    match Option::<F>::deserialize(d)? {
        None => Ok(None),
        Some(F::Num(x)) => Ok(Some(x)),
        Some(F::Text(s)) => match s.as_str() {
            "Infinity" => Ok(Some(f64::INFINITY)),
            "-Infinity" => Ok(Some(f64::NEG_INFINITY)),
            "NaN" => Ok(Some(f64::NAN)),
            o => Err(serde::de::Error::custom(format!("expected a number, got \"{o}\""))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_infinity_parses() {
        let c = SchedulerConfig::from_json(r#"{"lambda_min_clipped": -Infinity, "_class_name": "X \"NaN\" Infinity"}"#).unwrap();
        assert_eq!(c.lambda_min_clipped, Some(f64::NEG_INFINITY));
        assert_eq!(c.class_name.as_deref(), Some("X \"NaN\" Infinity"));
    }
}

/// The keys [`SchedulerConfig`] reads, taken from its `Deserialize` impl (serde hands
/// `deserialize_struct` the field list), so the list cannot drift from the struct.
fn field_names() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    struct Fields(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> std::result::Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(self, _: &'static str, fields: &'static [&'static str], _: V) -> std::result::Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit unit_struct
            newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    static FIELDS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| {
        let mut f = Fields(None);
        let _ = SchedulerConfig::deserialize(&mut f);
        f.0.unwrap_or(&[])
    })
}
