use crate::error::Result;
use crate::ops::group_norm::{group_norm, group_norm_frames, group_norm_inplace};
use crate::ops::layer_norm::layer_norm;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `torch.nn.GroupNorm` (affine). eps differs by call site in diffusers (1e-5 ResNets,
/// 1e-6 transformers and the VAE), so it is always given explicitly.
pub struct GroupNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub groups: usize,
    pub eps: f32,
}

impl GroupNorm {
    pub fn load(w: &Scope, groups: usize, channels: usize, eps: f32) -> Result<GroupNorm> {
        Ok(GroupNorm { weight: w.vector("weight", channels)?, bias: w.vector("bias", channels)?, groups, eps })
    }

    /// Per image of x [N, C, H, W]; `silu` fuses the activation that follows in every caller.
    pub fn forward(&self, x: &Tensor, silu: bool) -> Result<Tensor> {
        group_norm(x, &self.weight, &self.bias, self.groups, self.eps, silu)
    }

    /// Normalises `x` in place (see `group_norm_inplace`).
    pub fn forward_inplace(&self, x: &Tensor, silu: bool) -> Result<()> {
        group_norm_inplace(x, &self.weight, &self.bias, self.groups, self.eps, silu)
    }

    /// Statistics pooled over the frames of each clip, x in the folded (B·F, C, H, W) layout:
    /// diffusers' GroupNorm on the 5-D (B, C, F, H, W) tensor.
    pub fn forward_frames(&self, x: &Tensor, frames: usize, silu: bool) -> Result<Tensor> {
        group_norm_frames(x, frames, &self.weight, &self.bias, self.groups, self.eps, silu)
    }
}

/// `torch.nn.LayerNorm` over the last dimension.
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f32,
}

impl LayerNorm {
    pub fn load(w: &Scope, dim: usize, eps: f32) -> Result<LayerNorm> {
        Ok(LayerNorm { weight: w.vector("weight", dim)?, bias: w.vector("bias", dim)?, eps })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}
