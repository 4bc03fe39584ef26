use crate::error::Result;
use crate::nn::{BasicTransformerBlock, GroupNorm, Linear};
use crate::ops::elementwise::add_inplace;
use crate::ops::layout::permute;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// Spatial `Transformer2DModel` (continuous input, linear projection, one block): per-frame
/// GroupNorm (eps 1e-6) → tokens (N, H·W, C) → proj_in → block with text cross-attention →
/// proj_out → back to (N, C, H, W) → + input.
pub struct Transformer2DModel {
    pub norm: GroupNorm,
    pub proj_in: Linear,
    pub block: BasicTransformerBlock,
    pub proj_out: Linear,
}

impl Transformer2DModel {
    pub fn load(w: &Scope, channels: usize, heads: usize, head_dim: usize, cross_dim: usize, groups: usize) -> Result<Self> {
        let inner = heads * head_dim;
        Ok(Transformer2DModel {
            norm: GroupNorm::load(&w.at("norm"), groups, channels, 1e-6)?,
            proj_in: Linear::load(&w.at("proj_in"), channels, inner, true)?,
            block: BasicTransformerBlock::load(&w.at("transformer_blocks.0"), inner, heads, head_dim, Some(cross_dim))?,
            proj_out: Linear::load(&w.at("proj_out"), inner, channels, true)?,
        })
    }

    /// x (N, C, H, W); context (N, 77, cross_dim).
    pub fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
        // Reassigned, not shadowed: a shadowed tensor would stay allocated to the end.
        let mut t = self.norm.forward(x, false)?.reshape(&[n, c, h * w])?;
        t = permute(&t, &[0, 2, 1])?;
        t = self.proj_in.forward(&t)?;
        t = self.block.forward(t, Some(context))?;
        t = self.proj_out.forward(&t)?;
        let y = permute(&t, &[0, 2, 1])?.reshape(&[n, c, h, w])?;
        add_inplace(&y, x)?;
        Ok(y)
    }
}
