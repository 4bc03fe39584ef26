//! `blocks.N.attn1` / `blocks.N.attn2`: diffusers' WanAttention with WanAttnProcessor. q/k/v
//! and `to_out.0` with bias; RMSNorm (learned gain) on q and k over the whole inner dim, before
//! the split into heads; rotary embedding on self-attention only; no mask; softmax scale
//! 1/√head_dim. The attention itself is the flash kernel (FMA or cooperative matrices, as
//! `ops::attention` picks for the adapter): the score matrix never exists.

use crate::ops::rms_norm::rms_norm;
use crate::error::Result;
use crate::nn::Linear;
use crate::ops::attention::attention;
use crate::ops::layout::{merge_heads, split_heads};
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
    /// Run attention on head-major copies ([B·H, L, D]) even when [L, H·D] fits one binding
    /// (tests; otherwise only where it does not, see `forward`).
    pub always_split_heads: bool,
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
            always_split_heads: false,
        })
    }

    /// Self-attention (`context` None, `rope` Some) or cross-attention to `context` [B, Lk, dim]
    /// (no rotary embedding) of x [B, L, dim]. Takes x so it is freed once projected: at 832×480×81
    /// every [L, dim] tensor here is 201 MB and the peak is how many live at once.
    pub fn forward(&self, x: Tensor, context: Option<&Tensor>, rope: Option<&RopeTables>) -> Result<Tensor> {
        let gpu = x.gpu().clone();
        let mut q = self.norm_q.forward(&self.to_q.forward(&x)?)?;
        let src = context.unwrap_or(&x);
        let mut k = self.norm_k.forward(&self.to_k.forward(src)?)?;
        let mut v = self.to_v.forward(src)?;
        drop(x);
        // The attention kernel binds a whole batch item's [L, H·D]; where that exceeds the
        // adapter's binding limit (lavapipe: 128 MiB, i.e. 1.3B beyond ~21,800 tokens) it runs
        // on head-major copies instead, one [L, D] head per binding.
        let width = 4 * q.dim(2) as u64;
        let split = self.always_split_heads || width * q.dim(1).max(k.dim(1)) as u64 > gpu.max_binding().saturating_sub(512);
        if !split {
            if let Some(r) = rope {
                rope_inplace(&q, r, self.heads)?;
                rope_inplace(&k, r, self.heads)?;
            }
            let o = attention(&q, &k, &v, self.heads, false)?;
            drop((q, k, v));
            return self.to_out.forward(&o);
        }
        let h = self.heads;
        // Reassigned, not shadowed: each [L, H·D] original is freed once copied.
        q = split_heads(&q, h)?;
        k = split_heads(&k, h)?;
        v = split_heads(&v, h)?;
        if let Some(r) = rope {
            // Rows of [B·H, L, D] are (item, head, token): the token is still row mod L.
            rope_inplace(&q, r, 1)?;
            rope_inplace(&k, r, 1)?;
        }
        // One head of D channels per batch row: the scale is still 1/√D.
        let o = attention(&q, &k, &v, 1, false)?;
        drop((q, k, v));
        self.to_out.forward(&merge_heads(&o, h)?)
    }
}
