//! `blocks.N.attn1` / `blocks.N.attn2`: diffusers' WanAttention with WanAttnProcessor. q/k/v
//! and `to_out.0` with bias; RMSNorm (learned gain) on q and k over the whole inner dim, before
//! the split into heads; rotary embedding on self-attention only; no mask; softmax scale
//! 1/√head_dim. The attention itself is the flash kernel (FMA or cooperative matrices, as
//! `ops::attention` picks for the adapter): the score matrix never exists.

use super::pending::rms_norm;
use crate::error::Result;
use crate::nn::Linear;
use crate::ops::attention::attention;
use crate::ops::rope::{rope_inplace, RopeTables};
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `torch.nn.RMSNorm(dim, eps, elementwise_affine=True)`.
pub struct RmsNorm {
    pub weight: Tensor,
    pub eps: f32,
}

impl RmsNorm {
    pub fn load(w: &Scope, dim: usize, eps: f32) -> Result<RmsNorm> {
        Ok(RmsNorm { weight: w.vector("weight", dim)?, eps })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        rms_norm(x, Some(&self.weight), self.eps)
    }
}

pub struct WanAttention {
    pub to_q: Linear,
    pub to_k: Linear,
    pub to_v: Linear,
    pub to_out: Linear,
    pub norm_q: RmsNorm,
    pub norm_k: RmsNorm,
    pub heads: usize,
}

impl WanAttention {
    /// `dim` channels in and out, `heads` heads of dim / heads channels; K/V read `dim`-wide
    /// rows (the hidden states, or the projected text).
    pub fn load(w: &Scope, dim: usize, heads: usize, eps: f32) -> Result<WanAttention> {
        Ok(WanAttention {
            to_q: Linear::load(&w.at("to_q"), dim, dim, true)?,
            to_k: Linear::load(&w.at("to_k"), dim, dim, true)?,
            to_v: Linear::load(&w.at("to_v"), dim, dim, true)?,
            to_out: Linear::load(&w.at("to_out.0"), dim, dim, true)?,
            norm_q: RmsNorm::load(&w.at("norm_q"), dim, eps)?,
            norm_k: RmsNorm::load(&w.at("norm_k"), dim, eps)?,
            heads,
        })
    }

    /// Self-attention (`context` None, `rope` Some) or cross-attention to `context` [B, Lk, dim]
    /// (no rotary embedding) of x [B, L, dim]. Takes x so it is freed once projected: at 832×480×81
    /// every [L, dim] tensor here is 201 MB and the peak is how many live at once.
    pub fn forward(&self, x: Tensor, context: Option<&Tensor>, rope: Option<&RopeTables>) -> Result<Tensor> {
        let q = self.norm_q.forward(&self.to_q.forward(&x)?)?;
        let src = context.unwrap_or(&x);
        let k = self.norm_k.forward(&self.to_k.forward(src)?)?;
        let v = self.to_v.forward(src)?;
        drop(x);
        if let Some(r) = rope {
            rope_inplace(&q, r, self.heads)?;
            rope_inplace(&k, r, self.heads)?;
        }
        let o = attention(&q, &k, &v, self.heads, false)?;
        drop((q, k, v));
        self.to_out.forward(&o)
    }
}
