use super::{Attention, LayerNorm, Linear};
use crate::error::Result;
use crate::ops::elementwise::{add_inplace, geglu};
use crate::ops::matmul::linear_into;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// Largest GEGLU projection (rows × 8·dim f32) a feed-forward chunk materialises.
pub const FF_CHUNK_BYTES: u64 = 128 << 20;

/// diffusers' `FeedForward` with activation "geglu": `net.0.proj` (d → 8d), GEGLU, `net.2` (4d → d).
pub struct FeedForward {
    pub proj: Linear,
    pub out: Linear,
}

impl FeedForward {
    pub fn load(w: &Scope, dim: usize) -> Result<FeedForward> {
        let inner = 4 * dim;
        Ok(FeedForward { proj: Linear::load(&w.at("net.0.proj"), dim, 2 * inner, true)?, out: Linear::load(&w.at("net.2"), inner, dim, true)? })
    }

    /// Runs in row chunks so the 8·dim-wide projection never exists for all tokens at once
    /// (diffusers' `enable_forward_chunking`): at 24 frames of 576×320 with guidance it would
    /// be 1.4 GB at level 0 and over 2 GB in `transformer_in`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let d = *x.shape().last().unwrap_or(&0);
        let rows = x.numel() / d.max(1);
        let per = (FF_CHUNK_BYTES / (4 * self.proj.out_features() as u64)).max(1) as usize;
        if rows <= per {
            return self.out.forward(&geglu(&self.proj.forward(x)?)?);
        }
        let x2 = x.reshape(&[rows, d])?;
        let out = Tensor::empty(x.gpu(), &[rows, self.out.out_features()], crate::DType::F32)?;
        for lo in (0..rows).step_by(per) {
            let n = per.min(rows - lo);
            let h = geglu(&self.proj.forward(&x2.narrow0(lo, n)?)?)?;
            linear_into(&h, &self.out.weight, self.out.bias.as_ref(), &out.narrow0(lo, n)?)?;
        }
        let mut shape = x.shape().to_vec();
        *shape.last_mut().unwrap_or(&mut 0) = self.out.out_features();
        out.reshape(&shape)
    }
}

/// `BasicTransformerBlock` (norm_type "layer_norm"): self-attention, then cross-attention (or a
/// second self-attention when `double_self_attention`), then GEGLU feed-forward, each pre-norm
/// with a residual add.
pub struct BasicTransformerBlock {
    pub norm1: LayerNorm,
    pub attn1: Attention,
    pub norm2: LayerNorm,
    pub attn2: Attention,
    pub norm3: LayerNorm,
    pub ff: FeedForward,
    pub cross: bool,
}

impl BasicTransformerBlock {
    /// `cross_dim` None ⇒ attn2 is self-attention (double_self_attention in temporal blocks).
    pub fn load(w: &Scope, dim: usize, heads: usize, dim_head: usize, cross_dim: Option<usize>) -> Result<BasicTransformerBlock> {
        Ok(BasicTransformerBlock {
            norm1: LayerNorm::load(&w.at("norm1"), dim, 1e-5)?,
            attn1: Attention::load(&w.at("attn1"), dim, dim, heads, dim_head, false)?,
            norm2: LayerNorm::load(&w.at("norm2"), dim, 1e-5)?,
            attn2: Attention::load(&w.at("attn2"), dim, cross_dim.unwrap_or(dim), heads, dim_head, false)?,
            norm3: LayerNorm::load(&w.at("norm3"), dim, 1e-5)?,
            ff: FeedForward::load(&w.at("ff"), dim)?,
            cross: cross_dim.is_some(),
        })
    }

    /// x [B, L, dim]; `context` [B, 77, cross_dim] for cross-attention blocks. Takes `x` so it
    /// is freed after the first residual add rather than held through the whole block.
    pub fn forward(&self, x: Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        self.forward_cross_frame(x, context, None)
    }

    /// [`forward`](Self::forward) with Text2Video-Zero's cross-frame self-attention when
    /// `cross_frame` is Some(video_length) (see [`Attention::forward_cross_frame`]); the
    /// cross-attention to the text is unchanged, as in diffusers' processor.
    pub fn forward_cross_frame(&self, x: Tensor, context: Option<&Tensor>, cross_frame: Option<usize>) -> Result<Tensor> {
        let a = match cross_frame {
            Some(vl) => self.attn1.forward_cross_frame(self.norm1.forward(&x)?, vl)?,
            None => self.attn1.forward(self.norm1.forward(&x)?, None)?,
        };
        let mut h = add_owned(a, &x)?;
        drop(x);
        let ctx = if self.cross { context } else { None };
        let a = self.attn2.forward(self.norm2.forward(&h)?, ctx)?;
        h = add_owned(a, &h)?;
        let f = self.ff.forward(&self.norm3.forward(&h)?)?;
        add_owned(f, &h)
    }
}

/// `a + b`, reusing `a`'s buffer.
fn add_owned(a: Tensor, b: &Tensor) -> Result<Tensor> {
    add_inplace(&a, b)?;
    Ok(a)
}
