use super::cache::CausalCache;
use super::causal_conv::CausalConv3d;
use crate::error::Result;
use crate::nn::Conv2d;
use crate::ops::layout::upsample_nearest;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `WanResample` in its decoder modes: `upsample2d` = per frame nearest ×2 (diffusers'
/// "nearest-exact", the same pixels at ×2) then a 3×3 conv (`resample.1`) to `out` channels;
/// `upsample3d` first doubles the frames with `time_conv` (causal (3,1,1), dim → 2·dim).
pub struct WanResample {
    pub resample_conv: Conv2d,
    pub time_conv: Option<CausalConv3d>,
}

impl WanResample {
    pub fn load(w: &Scope, dim: usize, out: usize, temporal: bool, slots: &mut usize) -> Result<WanResample> {
        Ok(WanResample {
            resample_conv: Conv2d::load(&w.at("resample.1"), dim, out, 3, 1, 1)?,
            time_conv: if temporal { Some(CausalConv3d::load(&w.at("time_conv"), dim, 2 * dim, 3, 1, slots)?) } else { None },
        })
    }

    /// Whether the next [`forward`](Self::forward) is this upsample3d's first (the first
    /// chunk: its time_conv is skipped); false for upsample2d.
    pub fn first_call(&self, cache: &mut CausalCache) -> Result<bool> {
        match self.time_conv.as_ref().and_then(|t| t.slot) {
            Some(i) => Ok(!cache.slot(i)?.passed_first),
            None => Ok(false),
        }
    }

    /// x (F, C, H, W) → (F', out, 2H, 2W) with F' = F, or 2F for upsample3d after its first call.
    pub fn forward(&self, x: Tensor, cache: &mut CausalCache) -> Result<Tensor> {
        let x = match (&self.time_conv, self.time_conv.as_ref().and_then(|t| t.slot)) {
            (Some(tc), Some(i)) => {
                let slot = cache.slot(i)?;
                if !slot.passed_first {
                    // diffusers' "Rep": the very first chunk skips the time_conv, so frame 0 is
                    // not doubled and never enters the time_conv's stream.
                    slot.passed_first = true;
                    x
                } else {
                    let (f, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
                    // Output frame i's channels [0, C) are frame 2i and [C, 2C) frame 2i+1:
                    // in the folded layout that is already (2F, C, H, W) in memory.
                    tc.forward(&x, cache, false)?.reshape(&[2 * f, c, h, w])?
                }
            }
            _ => x,
        };
        let up = upsample_nearest(&x, 2 * x.dim(2), 2 * x.dim(3))?;
        drop(x);
        self.resample_conv.forward(&up)
    }
}
