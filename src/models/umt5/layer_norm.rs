//! `UMT5LayerNorm`: RMS norm with a gain, no mean subtraction, no bias, f32 statistics.

use crate::error::Result;
use crate::ops::rms_norm::rms_norm;
use crate::tensor::Tensor;
use crate::weights::Scope;

pub struct UMT5LayerNorm {
    pub weight: Tensor,
    pub eps: f32,
}

impl UMT5LayerNorm {
    pub fn load(w: &Scope, dim: usize, eps: f32) -> Result<UMT5LayerNorm> {
        Ok(UMT5LayerNorm { weight: w.vector("weight", dim)?, eps })
    }

    /// Checks the key without uploading it.
    pub fn check(w: &Scope, dim: usize) -> Result<()> {
        w.w.check(&w.key("weight"), &[dim])
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        rms_norm(x, Some(&self.weight), self.eps)
    }
}
