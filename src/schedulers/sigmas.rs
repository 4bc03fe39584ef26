//! The alternative sigma schedules of diffusers' sigma-based schedulers (Karras, exponential),
//! with numpy's float64 arithmetic, and `_sigma_to_t`, which maps them back to (fractional)
//! training timesteps for the denoiser.

use super::config::SchedulerConfig;
use super::spacing::linspace;
use crate::error::Result;

/// Which schedule `set_timesteps` builds its sigmas with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigmaSchedule {
    /// The training sigmas interpolated at the spaced timesteps (the default).
    Interpolated,
    /// `use_karras_sigmas`: Karras et al. (2022), ρ = 7.
    Karras,
    /// `use_exponential_sigmas`: log-linear from σ_max to σ_min.
    Exponential,
}

impl SigmaSchedule {
    /// Reads `use_karras_sigmas` / `use_exponential_sigmas` / `use_beta_sigmas` (at most one on,
    /// as diffusers requires). Beta sigmas are refused: diffusers computes them with
    /// `scipy.stats.beta.ppf`, which this crate does not reproduce.
    pub(crate) fn from_config(cfg: &SchedulerConfig, class: &str) -> Result<SigmaSchedule> {
        let on = |v: Option<bool>| v == Some(true);
        let count = [cfg.use_karras_sigmas, cfg.use_exponential_sigmas, cfg.use_beta_sigmas].into_iter().filter(|&v| on(v)).count();
        if count > 1 {
            return Err(cfg.bad(
                "use_karras_sigmas",
                "only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas can be true (diffusers raises the same)",
            ));
        }
        if on(cfg.use_beta_sigmas) {
            return Err(cfg.bad(
                "use_beta_sigmas",
                format!("true is not supported for {class}: diffusers builds beta sigmas with scipy.stats.beta.ppf, which t2v does not reproduce exactly; use use_karras_sigmas or use_exponential_sigmas"),
            ));
        }
        Ok(if on(cfg.use_karras_sigmas) {
            SigmaSchedule::Karras
        } else if on(cfg.use_exponential_sigmas) {
            SigmaSchedule::Exponential
        } else {
            SigmaSchedule::Interpolated
        })
    }

    /// `_convert_to_karras` / `_convert_to_exponential` between `sigma_min` and `sigma_max`
    /// (float64, as numpy); None for [`Interpolated`](SigmaSchedule::Interpolated).
    pub(crate) fn convert(self, sigma_min: f64, sigma_max: f64, n: usize) -> Option<Vec<f64>> {
        match self {
            SigmaSchedule::Interpolated => None,
            SigmaSchedule::Karras => {
                let rho = 7.0f64;
                let (min_inv, max_inv) = (sigma_min.powf(1.0 / rho), sigma_max.powf(1.0 / rho));
                Some(linspace(0.0, 1.0, n).iter().map(|&r| (max_inv + r * (min_inv - max_inv)).powf(rho)).collect())
            }
            SigmaSchedule::Exponential => Some(linspace(sigma_max.ln(), sigma_min.ln(), n).iter().map(|&l| l.exp()).collect()),
        }
    }
}

/// diffusers' `_sigma_to_t`: the fractional training timestep whose log-sigma (float32, as
/// `np.log` of the float32 training sigmas) brackets log σ, linearly interpolated.
pub(crate) fn sigma_to_t(sigma: f64, log_sigmas: &[f32]) -> f64 {
    let ls = sigma.max(1e-10).ln();
    // cumsum(dists >= 0).argmax(): the last index with log σ ≥ log_sigmas[i], 0 when none.
    let last = log_sigmas.iter().rposition(|&l| ls - l as f64 >= 0.0).unwrap_or(0);
    let low_idx = last.min(log_sigmas.len().saturating_sub(2));
    let high_idx = low_idx + 1;
    let (low, high) = (log_sigmas[low_idx] as f64, log_sigmas[high_idx.min(log_sigmas.len() - 1)] as f64);
    let w = ((low - ls) / (low - high)).clamp(0.0, 1.0);
    (1.0 - w) * low_idx as f64 + w * high_idx as f64
}
