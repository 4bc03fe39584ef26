use super::norm::WanRmsNorm;
use crate::error::Result;
use crate::nn::Conv2d;
use crate::ops::attention::attention;
use crate::ops::elementwise::add_inplace;
use crate::ops::layout::permute;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `WanAttentionBlock`: single-head self-attention over the pixels of each frame —
/// RMS norm, to_qkv (1×1 conv, C → 3C), SDPA with scale 1/√C, proj (1×1), + the input.
pub struct WanAttentionBlock {
    pub norm: WanRmsNorm,
    pub to_qkv: Conv2d,
    pub proj: Conv2d,
}

impl WanAttentionBlock {
    pub fn load(w: &Scope, c: usize) -> Result<WanAttentionBlock> {
        Ok(WanAttentionBlock {
            norm: WanRmsNorm::load(&w.at("norm"), c, true)?,
            to_qkv: Conv2d::load(&w.at("to_qkv"), c, 3 * c, 1, 1, 0)?,
            proj: Conv2d::load(&w.at("proj"), c, c, 1, 1, 0)?,
        })
    }

    /// x (F, C, H, W) → same; frames never see each other.
    pub fn forward(&self, x: Tensor) -> Result<Tensor> {
        let (f, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
        let qkv = self.to_qkv.forward(&self.norm.forward(&x, false)?)?;
        // (F, 3C, HW) = (F, 3, C, HW) → (3, F, HW, C): q, k, v are then contiguous rows.
        let qkv = permute(&qkv.reshape(&[f, 3, c, h * w])?, &[1, 0, 3, 2])?;
        let (q, k, v) = (qkv.narrow0(0, 1)?, qkv.narrow0(1, 1)?, qkv.narrow0(2, 1)?);
        let rows = |t: Tensor| t.reshape(&[f, h * w, c]);
        let o = attention(&rows(q)?, &rows(k)?, &rows(v)?, 1, false)?;
        drop(qkv);
        let o = permute(&o, &[0, 2, 1])?.reshape(&[f, c, h, w])?;
        let y = self.proj.forward(&o)?;
        drop(o);
        add_inplace(&y, &x)?;
        Ok(y)
    }
}
