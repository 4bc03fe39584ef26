use crate::error::Result;
use crate::nn::{BasicTransformerBlock, GroupNorm, Linear};
use crate::ops::elementwise::add_inplace;
use crate::ops::layout::permute;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `Transformer2DModel` of SD 1.x/2.x (continuous input): GroupNorm (eps 1e-6) → proj_in →
/// tokens (N, H·W, inner) → `transformer_blocks.j` → proj_out → + input. SD 1.x projects with
/// 1×1 convs (`use_linear_projection` false), SD 2.x with Linear; on tokens both are the same
/// matrix product, so a conv's [out, in, 1, 1] weight is loaded as a Linear's [out, in]. (The
/// conv runs before the permute to tokens and the Linear after; the arithmetic is identical.)
pub struct Transformer2DModel {
    pub norm: GroupNorm,
    pub proj_in: Linear,
    pub transformer_blocks: Vec<BasicTransformerBlock>,
    pub proj_out: Linear,
}

impl Transformer2DModel {
    #[allow(clippy::too_many_arguments)]
    pub fn load(w: &Scope, channels: usize, heads: usize, cross_dim: usize, groups: usize, layers: usize, linear_projection: bool) -> Result<Self> {
        let head_dim = channels / heads;
        let inner = heads * head_dim;
        let proj = |name: &str, i: usize, o: usize| -> Result<Linear> {
            if linear_projection {
                Linear::load(&w.at(name), i, o, true)
            } else {
                let s = w.at(name);
                Ok(Linear { weight: s.tensor("weight", &[o, i, 1, 1])?.reshape(&[o, i])?, bias: Some(s.vector("bias", o)?) })
            }
        };
        Ok(Transformer2DModel {
            norm: GroupNorm::load(&w.at("norm"), groups, channels, 1e-6)?,
            proj_in: proj("proj_in", channels, inner)?,
            transformer_blocks: (0..layers)
                .map(|j| BasicTransformerBlock::load(&w.at(format!("transformer_blocks.{j}")), inner, heads, head_dim, Some(cross_dim)))
                .collect::<Result<_>>()?,
            proj_out: proj("proj_out", inner, channels)?,
        })
    }

    /// x (N, C, H, W); context (N, 77, cross_dim). `cross_frame`: Text2Video-Zero's
    /// self-attention to the first frame of every `cross_frame` rows (see
    /// [`crate::nn::Attention::forward_cross_frame`]); None is ordinary self-attention.
    pub fn forward(&self, x: &Tensor, context: &Tensor, cross_frame: Option<usize>) -> Result<Tensor> {
        let (n, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
        // Reassigned, not shadowed: a shadowed tensor would stay allocated to the end.
        let mut t = self.norm.forward(x, false)?.reshape(&[n, c, h * w])?;
        t = permute(&t, &[0, 2, 1])?;
        t = self.proj_in.forward(&t)?;
        for block in &self.transformer_blocks {
            t = block.forward_cross_frame(t, Some(context), cross_frame)?;
        }
        t = self.proj_out.forward(&t)?;
        let y = permute(&t, &[0, 2, 1])?.reshape(&[n, c, h, w])?;
        add_inplace(&y, x)?;
        Ok(y)
    }
}
