use super::cache::CausalCache;
use crate::error::Result;
use crate::ops::conv2d::conv2d;
use crate::ops::conv3d::conv3d_causal;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `WanCausalConv3d`, stride 1: weight [Cout, Cin, kt, k, k], bias [Cout]. Convs with a
/// 3-frame kernel own a cache slot (see `cache`); 1×1×1 convs are per-pixel and run as 1×1
/// conv2d over the frames.
pub struct CausalConv3d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub slot: Option<usize>,
}

impl CausalConv3d {
    /// `next_slot` hands out cache slots in call order; a kernel of 1 frame takes none.
    pub fn load(w: &Scope, cin: usize, cout: usize, kt: usize, k: usize, next_slot: &mut usize) -> Result<CausalConv3d> {
        let slot = (kt > 1).then(|| {
            *next_slot += 1;
            *next_slot - 1
        });
        Ok(CausalConv3d { weight: w.tensor("weight", &[cout, cin, kt, k, k])?, bias: w.vector("bias", cout)?, slot })
    }

    /// x (F, Cin, H, W), frames of one video in time order → (F, Cout, H, W). With a slot, the
    /// cached frames precede x and x's last frames are cached afterwards; `clamp_unit` fuses
    /// the VAE's final clamp to [-1, 1].
    pub fn forward(&self, x: &Tensor, cache: &mut CausalCache, clamp_unit: bool) -> Result<Tensor> {
        match self.slot {
            None if self.weight.shape()[2..] == [1, 1, 1] && !clamp_unit => {
                let s = self.weight.shape();
                conv2d(x, &self.weight.reshape(&[s[0], s[1], 1, 1])?, Some(&self.bias), 1, 0)
            }
            None => conv3d_causal(x, &[], &self.weight, Some(&self.bias), clamp_unit),
            Some(i) => {
                let slot = cache.slot(i)?;
                let frames = slot.frames()?;
                let prev: Vec<&Tensor> = frames.iter().collect();
                let y = conv3d_causal(x, &prev, &self.weight, Some(&self.bias), clamp_unit)?;
                drop(prev);
                slot.push(x)?;
                Ok(y)
            }
        }
    }
}
