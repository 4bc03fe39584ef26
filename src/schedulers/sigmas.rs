//! The alternative sigma schedules of diffusers' sigma-based schedulers (Karras, exponential,
//! beta),
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
    /// `use_beta_sigmas`: σ_min + F⁻¹(1 − u)·(σ_max − σ_min), u evenly spaced in [0, 1] and F
    /// the Beta(0.6, 0.6) distribution (Lee et al. 2024, "Beta Sampling is All You Need").
    Beta,
}

impl SigmaSchedule {
    /// Reads `use_karras_sigmas` / `use_exponential_sigmas` / `use_beta_sigmas` (at most one on,
    /// as diffusers requires).
    pub(crate) fn from_config(cfg: &SchedulerConfig, class: &str) -> Result<SigmaSchedule> {
        let on = |v: Option<bool>| v == Some(true);
        let count = [cfg.use_karras_sigmas, cfg.use_exponential_sigmas, cfg.use_beta_sigmas].into_iter().filter(|&v| on(v)).count();
        if count > 1 {
            return Err(cfg.bad(
                "use_karras_sigmas",
                format!("only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas can be true for {class} (diffusers raises the same)"),
            ));
        }
        Ok(if on(cfg.use_karras_sigmas) {
            SigmaSchedule::Karras
        } else if on(cfg.use_exponential_sigmas) {
            SigmaSchedule::Exponential
        } else if on(cfg.use_beta_sigmas) {
            SigmaSchedule::Beta
        } else {
            SigmaSchedule::Interpolated
        })
    }

    /// `_convert_to_karras` / `_convert_to_exponential` / `_convert_to_beta` between `sigma_min` and `sigma_max`
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
            // diffusers' scipy.stats.beta.ppf(1 − u, 0.6, 0.6), u = linspace(0, 1, n).
            SigmaSchedule::Beta => Some(
                linspace(0.0, 1.0, n).iter().map(|&u| sigma_min + beta_ppf(1.0 - u, 0.6, 0.6) * (sigma_max - sigma_min)).collect(),
            ),
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

/// ln Γ(x) for x > 0: Lanczos' approximation (g = 7, nine terms; relative error ~1e-15), with
/// the reflection-free shift for x < 0.5 through Γ(x) = Γ(x + 1)/x.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return ln_gamma(x + 1.0) - x.ln();
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, &c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularised incomplete beta function I_x(a, b): the continued fraction (modified Lentz)
/// on the side where it converges fast, the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) on the other.
fn beta_cdf(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = a * x.ln() + b * (1.0 - x).ln() - (ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b));
    let cf = |x: f64, a: f64, b: f64| -> f64 {
        let tiny = 1e-300;
        let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
        let mut c = 1.0;
        let mut d = 1.0 - qab * x / qap;
        if d.abs() < tiny {
            d = tiny;
        }
        d = 1.0 / d;
        let mut h = d;
        for m in 1..=500 {
            let m = m as f64;
            let m2 = 2.0 * m;
            for aa in [m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))] {
                d = 1.0 + aa * d;
                if d.abs() < tiny {
                    d = tiny;
                }
                c = 1.0 + aa / c;
                if c.abs() < tiny {
                    c = tiny;
                }
                d = 1.0 / d;
                h *= d * c;
            }
            if (d * c - 1.0).abs() < 1e-16 {
                break;
            }
        }
        h
    };
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * cf(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * cf(1.0 - x, b, a) / b
    }
}

/// The Beta(a, b) quantile (scipy.stats.beta.ppf) to double precision: Newton's method on
/// I_x(a, b) − p, kept inside a shrinking bracket by bisection.
pub(crate) fn beta_ppf(p: f64, a: f64, b: f64) -> f64 {
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // For a symmetric distribution solve on the lower half, where x carries the most precision.
    if a == b && p > 0.5 {
        return 1.0 - beta_ppf(1.0 - p, a, b);
    }
    let ln_b = ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    let mut x = 0.5f64;
    for _ in 0..200 {
        let f = beta_cdf(x, a, b) - p;
        if f == 0.0 {
            return x;
        }
        if f < 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let pdf = ((a - 1.0) * x.ln() + (b - 1.0) * (1.0 - x).ln() - ln_b).exp();
        let mut next = x - f / pdf;
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - x).abs() <= 1e-17 * x.max(1e-300) || hi - lo <= f64::EPSILON * x {
            return next;
        }
        x = next;
    }
    x
}
