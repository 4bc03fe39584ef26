use crate::error::Result;
use crate::nn::{BasicTransformerBlock, GroupNorm, Linear};
use crate::ops::elementwise::add_inplace;
use crate::ops::layout::{frames_to_sequences, sequences_to_frames};
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `TransformerTemporalModel`: GroupNorm pooled over frames (eps 1e-6) → every pixel's frames
/// as a sequence (B·H·W, F, C) → proj_in → one block with two self-attentions over frames
/// (double_self_attention; no text, no positional embedding) → proj_out → + input.
pub struct TransformerTemporalModel {
    pub norm: GroupNorm,
    pub proj_in: Linear,
    pub block: BasicTransformerBlock,
    pub proj_out: Linear,
}

impl TransformerTemporalModel {
    pub fn load(w: &Scope, channels: usize, heads: usize, head_dim: usize, groups: usize) -> Result<Self> {
        let inner = heads * head_dim;
        Ok(TransformerTemporalModel {
            norm: GroupNorm::load(&w.at("norm"), groups, channels, 1e-6)?,
            proj_in: Linear::load(&w.at("proj_in"), channels, inner, true)?,
            block: BasicTransformerBlock::load(&w.at("transformer_blocks.0"), inner, heads, head_dim, None)?,
            proj_out: Linear::load(&w.at("proj_out"), inner, channels, true)?,
        })
    }

    /// x in the folded (B·F, C, H, W) layout.
    pub fn forward(&self, x: &Tensor, frames: usize) -> Result<Tensor> {
        let (h, w) = (x.dim(2), x.dim(3));
        // Reassigned, not shadowed: a shadowed tensor would stay allocated to the end.
        let mut t = self.norm.forward_frames(x, frames, false)?;
        t = frames_to_sequences(&t, frames)?;
        t = self.proj_in.forward(&t)?;
        t = self.block.forward(t, None)?;
        t = self.proj_out.forward(&t)?;
        let y = sequences_to_frames(&t, h, w)?;
        add_inplace(&y, x)?;
        Ok(y)
    }
}
