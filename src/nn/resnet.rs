use super::{Conv2d, GroupNorm, Linear};
use crate::error::Result;
use crate::ops::elementwise::{add_bcast, add_inplace, silu};
use crate::tensor::Tensor;
use crate::weights::Scope;

/// diffusers' `ResnetBlock2D` (time_embedding_norm "default", output_scale_factor 1):
/// GN → SiLU → conv1 (+ time_emb_proj(SiLU(temb)) per channel) → GN → SiLU → conv2, plus the
/// input (through a 1×1 `conv_shortcut` when the channel count changes). Per-frame GroupNorm.
pub struct ResnetBlock2D {
    pub norm1: GroupNorm,
    pub conv1: Conv2d,
    pub time_emb_proj: Option<Linear>,
    pub norm2: GroupNorm,
    pub conv2: Conv2d,
    pub conv_shortcut: Option<Conv2d>,
}

impl ResnetBlock2D {
    /// `temb_channels` None for the VAE's blocks, which take no time embedding.
    pub fn load(w: &Scope, cin: usize, cout: usize, temb_channels: Option<usize>, groups: usize, eps: f32) -> Result<ResnetBlock2D> {
        Ok(ResnetBlock2D {
            norm1: GroupNorm::load(&w.at("norm1"), groups, cin, eps)?,
            conv1: Conv2d::load(&w.at("conv1"), cin, cout, 3, 1, 1)?,
            time_emb_proj: temb_channels.map(|t| Linear::load(&w.at("time_emb_proj"), t, cout, true)).transpose()?,
            norm2: GroupNorm::load(&w.at("norm2"), groups, cout, eps)?,
            conv2: Conv2d::load(&w.at("conv2"), cout, cout, 3, 1, 1)?,
            conv_shortcut: if cin != cout { Some(Conv2d::load(&w.at("conv_shortcut"), cin, cout, 1, 1, 0)?) } else { None },
        })
    }

    /// x [N, Cin, H, W]; temb [N, temb_channels] (one row per image).
    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>) -> Result<Tensor> {
        let mut h = self.conv1.forward(&self.norm1.forward(x, true)?)?;
        if let (Some(proj), Some(t)) = (&self.time_emb_proj, temb) {
            let t = proj.forward(&silu(t)?)?;
            h = add_bcast(&h, &t, h.dim(2) * h.dim(3))?;
        }
        h = self.norm2.forward(&h, true)?;
        h = self.conv2.forward(&h)?;
        match &self.conv_shortcut {
            Some(sc) => add_inplace(&h, &sc.forward(x)?)?,
            None => add_inplace(&h, x)?,
        }
        Ok(h)
    }
}
