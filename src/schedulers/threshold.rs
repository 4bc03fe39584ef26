//! Dynamic thresholding of the predicted x̂₀ (Imagen; diffusers' `_threshold_sample`), shared by
//! DDIM, DPM-Solver++ and UniPC: per sample s = quantile(|x̂₀|, ratio) clamped to [1, max],
//! then x̂₀ = clamp(x̂₀, −s, s)/s.
//!
//! The quantile is a sort over each whole latent, so this reads x̂₀ back to the host and uploads
//! the result: the one read-back inside a denoising loop this crate makes, and only when a
//! config asks for it (diffusers calls thresholding "unsuitable for latent-space models").

use super::config::SchedulerConfig;
use crate::error::Result;
use crate::tensor::Tensor;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Thresholding {
    ratio: f32,
    max: f32,
}

impl Thresholding {
    /// `thresholding` with `dynamic_thresholding_ratio` (default 0.995) and `sample_max_value`
    /// (default 1); None when off.
    pub(crate) fn from_config(cfg: &SchedulerConfig) -> Result<Option<Thresholding>> {
        if cfg.thresholding != Some(true) {
            return Ok(None);
        }
        let ratio = cfg.dynamic_thresholding_ratio.unwrap_or(0.995);
        if !(0.0..=1.0).contains(&ratio) {
            return Err(cfg.bad("dynamic_thresholding_ratio", format!("must be a quantile in [0, 1], got {ratio}")));
        }
        let max = cfg.sample_max_value.unwrap_or(1.0);
        if !(max.is_finite() && max >= 1.0) {
            return Err(cfg.bad("sample_max_value", format!("must be a finite number ≥ 1 (the threshold's lower bound), got {max}")));
        }
        Ok(Some(Thresholding { ratio: ratio as f32, max: max as f32 }))
    }

    /// x̂₀ (batch first) thresholded per batch row.
    pub(crate) fn apply(&self, x0: &Tensor) -> Result<Tensor> {
        let mut v = x0.to_f32()?;
        let per = v.len() / x0.shape().first().copied().unwrap_or(1).max(1);
        if per > 0 {
            for row in v.chunks_mut(per) {
                let s = torch_quantile(row.iter().map(|x| x.abs()).collect(), self.ratio).clamp(1.0, self.max);
                for x in row.iter_mut() {
                    *x = x.clamp(-s, s) / s;
                }
            }
        }
        Tensor::from_f32(x0.gpu(), x0.shape(), &v)
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
