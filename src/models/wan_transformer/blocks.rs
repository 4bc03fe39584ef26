//! `blocks.N`: diffusers' WanTransformerBlock. Modulation vectors (scale_shift_table +
//! timestep_proj, prepared once per step) in the order shift, scale, gate for the self-attention
//! and the feed-forward; cross-attention has an affine LayerNorm (`norm2`) and no gate.

use super::attention::WanAttention;
use crate::error::Result;
use crate::nn::{LayerNorm, Linear};
use crate::ops::elementwise::{add_bcast, add_inplace, gelu_tanh};
use crate::ops::layout::permute;
use crate::ops::layer_norm::layer_norm_modulated;
use crate::ops::modulate::gated_add_inplace;
use crate::ops::rope::RopeTables;
use crate::tensor::{DType, Tensor};
use crate::weights::Scope;

/// Largest feed-forward hidden chunk (rows × ffn_dim f32). The GELU output is a second buffer of
/// the same size, so a chunk holds twice this: 128 MiB.
pub const FFN_CHUNK_BYTES: u64 = 64 << 20;

/// `ffn`: diffusers' FeedForward(activation "gelu-approximate"): `net.0.proj` (dim → ffn_dim),
/// GELU-tanh, `net.2` (ffn_dim → dim).
pub struct WanFeedForward {
    pub proj: Linear,
    pub out: Linear,
    /// Largest hidden chunk in bytes ([`FFN_CHUNK_BYTES`]; tests make it small).
    pub chunk_bytes: u64,
}

impl WanFeedForward {
    pub fn load(w: &Scope, dim: usize, ffn_dim: usize) -> Result<WanFeedForward> {
        Ok(WanFeedForward {
            proj: Linear::load(&w.at("net.0.proj"), dim, ffn_dim, true)?,
            out: Linear::load(&w.at("net.2"), ffn_dim, dim, true)?,
            chunk_bytes: FFN_CHUNK_BYTES,
        })
    }

    /// `x += ffn(n) · gate`, in row chunks so the ffn_dim-wide hidden never exists for every
    /// token (at 832×480×81 on 1.3B it would be 1.2 GB), each chunk's output added into its rows
    /// of x at once (no full-size output either). n and x [B, L, dim]; gate [dim] for every row
    /// or [B, dim] (one per batch item, e.g. [1, B, dim]).
    pub fn forward_gated_into(&self, n: &Tensor, x: &Tensor, gate: &Tensor) -> Result<()> {
        let d = *n.shape().last().unwrap_or(&0);
        let rows = n.numel() / d.max(1);
        let per = (self.chunk_bytes / (4 * self.proj.out_features().max(1) as u64)).max(1) as usize;
        let (n2, x2) = (n.reshape(&[rows, d])?, x.reshape(&[rows, d])?);
        // Chunks stay inside one batch item so each takes that item's gate.
        let items = if gate.numel() == d || n.shape().len() < 3 { 1 } else { n.dim(0) };
        let gates = gate.reshape(&[gate.numel() / d.max(1), d])?;
        let per_item = rows / items.max(1);
        for item in 0..items {
            let g = if items == 1 { gate.clone() } else { gates.narrow0(item, 1)? };
            for lo in (0..per_item).step_by(per) {
                let (at, cnt) = (item * per_item + lo, per.min(per_item - lo));
                let h = gelu_tanh(&self.proj.forward(&n2.narrow0(at, cnt)?)?)?;
                let f = self.out.forward(&h)?;
                drop(h);
                gated_add_inplace(&x2.narrow0(at, cnt)?, &f, &g)?;
            }
        }
        Ok(())
    }
}

/// [N, k, dim] → [k, N, dim] (the same memory when N = 1).
pub(crate) fn chunk_major(v: Tensor, k: usize, dim: usize) -> Result<Tensor> {
    let n = v.numel() / (k * dim).max(1);
    if n == 1 {
        v.reshape(&[k, 1, dim])
    } else {
        permute(&v.reshape(&[n, k, dim])?, &[1, 0, 2])
    }
}

/// A block's modulation from its `scale_shift_table` [6, dim] (see
/// [`WanTransformerBlock::modulation`]).
pub fn modulation(table: &Tensor, timestep_proj: &Tensor) -> Result<Tensor> {
    chunk_major(add_bcast(timestep_proj, table, 1)?, 6, table.dim(1))
}

pub struct WanTransformerBlock {
    /// f32 [6, dim] (the checkpoint's [1, 6, dim]).
    pub scale_shift_table: Tensor,
    pub attn1: WanAttention,
    pub attn2: WanAttention,
    /// None when `cross_attn_norm` is false (diffusers' nn.Identity).
    pub norm2: Option<LayerNorm>,
    pub ffn: WanFeedForward,
    pub eps: f32,
}

impl WanTransformerBlock {
    pub fn load(w: &Scope, dim: usize, ffn_dim: usize, heads: usize, cross_attn_norm: bool, eps: f32) -> Result<WanTransformerBlock> {
        let table = w.w.tensor_as(&w.key("scale_shift_table"), &[1, 6, dim], DType::F32)?;
        Ok(WanTransformerBlock {
            scale_shift_table: table.reshape(&[6, dim])?,
            attn1: WanAttention::load(&w.at("attn1"), dim, heads, eps)?,
            attn2: WanAttention::load(&w.at("attn2"), dim, heads, eps)?,
            norm2: if cross_attn_norm { Some(LayerNorm::load(&w.at("norm2"), dim, eps)?) } else { None },
            ffn: WanFeedForward::load(&w.at("ffn"), dim, ffn_dim)?,
            eps,
        })
    }

    /// This block's modulation for `timestep_proj` [N, 6·dim] (or [N, 6, dim]): scale_shift_table
    /// added, laid out chunk-major [6, N, dim] so chunk k is one contiguous [N, dim] view.
    pub fn modulation(&self, timestep_proj: &Tensor) -> Result<Tensor> {
        modulation(&self.scale_shift_table, timestep_proj)
    }

    /// x [B, L, dim] (its buffer is updated in place and returned); `context` the projected text
    /// [B, 512, dim]; `modulation` [6, N, dim] = scale_shift_table + timestep_proj for this step,
    /// N = 1 (one timestep for the batch) or B (one per batch item).
    pub fn forward(&self, x: Tensor, context: &Tensor, modulation: &Tensor, rope: &RopeTables) -> Result<Tensor> {
        let m = |k: usize| modulation.narrow0(k, 1);
        let n = layer_norm_modulated(&x, &m(0)?, &m(1)?, self.eps)?;
        let a = self.attn1.forward(n, None, Some(rope))?;
        gated_add_inplace(&x, &a, &m(2)?)?;
        drop(a);
        let n = match &self.norm2 {
            Some(ln) => ln.forward(&x)?,
            None => x.clone(),
        };
        let a = self.attn2.forward(n, Some(context), None)?;
        add_inplace(&x, &a)?;
        drop(a);
        let n = layer_norm_modulated(&x, &m(3)?, &m(4)?, self.eps)?;
        self.ffn.forward_gated_into(&n, &x, &m(5)?)?;
        Ok(x)
    }
}
