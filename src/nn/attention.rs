use super::Linear;
use crate::error::{shape_err, Result};
use crate::ops::attention::attention;
use crate::ops::layout::{cat, repeat_interleave};
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

    /// Text2Video-Zero's cross-frame self-attention (diffusers' `CrossFrameAttnProcessor2_0`):
    /// the rows of x [N, L, C] are frames in chunks of `video_length`, and every frame's
    /// queries attend to the keys and values of its chunk's *first* frame. Only those frames
    /// are projected to K/V (the rows are independent), then repeated over their chunk.
    pub fn forward_cross_frame(&self, x: Tensor, video_length: usize) -> Result<Tensor> {
        let n = x.dim(0);
        if video_length == 0 || !n.is_multiple_of(video_length) {
            return shape_err(
                "cross-frame attention",
                format!("{n} rows do not split into clips of {video_length} frames (diffusers' reshape fails the same way)"),
            );
        }
        let q = self.to_q.forward(&x)?;
        let firsts = if n == video_length {
            x.narrow0(0, 1)?
        } else {
            let rows = (0..n / video_length).map(|c| x.narrow0(c * video_length, 1)).collect::<Result<Vec<_>>>()?;
            cat(&rows.iter().collect::<Vec<_>>(), 0)?
        };
        drop(x);
        let k = repeat_interleave(&self.to_k.forward(&firsts)?, video_length)?;
        let v = repeat_interleave(&self.to_v.forward(&firsts)?, video_length)?;
        drop(firsts);
        let o = attention(&q, &k, &v, self.heads, false)?;
        drop((q, k, v));
        self.to_out.forward(&o)
    }
}
