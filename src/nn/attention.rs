use super::Linear;
use crate::error::Result;
use crate::ops::attention::attention;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// diffusers' `Attention` with the default SDPA processor: to_q/to_k/to_v (bias as configured),
/// heads of `dim_head` channels, to_out.0 with bias. No mask (the 3-D UNet ignores it).
pub struct Attention {
    pub to_q: Linear,
    pub to_k: Linear,
    pub to_v: Linear,
    pub to_out: Linear,
    pub heads: usize,
}

impl Attention {
    /// `query_dim` channels in and out; K/V read `context_dim` channels (= query_dim for self).
    pub fn load(w: &Scope, query_dim: usize, context_dim: usize, heads: usize, dim_head: usize, qkv_bias: bool) -> Result<Attention> {
        let inner = heads * dim_head;
        Ok(Attention {
            to_q: Linear::load(&w.at("to_q"), query_dim, inner, qkv_bias)?,
            to_k: Linear::load(&w.at("to_k"), context_dim, inner, qkv_bias)?,
            to_v: Linear::load(&w.at("to_v"), context_dim, inner, qkv_bias)?,
            to_out: Linear::load(&w.at("to_out.0"), inner, query_dim, true)?,
            heads,
        })
    }

    /// x [B, L, C]; `context` [B, Lk, Ck] for cross-attention, None for self-attention. Takes
    /// `x` so it can be freed as soon as the projections have read it: at 24 frames of 576×320
    /// every one of these tensors is 84 MiB, and the peak is made of how many live at once.
    pub fn forward(&self, x: Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let q = self.to_q.forward(&x)?;
        let ctx = context.unwrap_or(&x);
        let (k, v) = (self.to_k.forward(ctx)?, self.to_v.forward(ctx)?);
        drop(x);
        let o = attention(&q, &k, &v, self.heads, false)?;
        drop((q, k, v));
        self.to_out.forward(&o)
    }
}
