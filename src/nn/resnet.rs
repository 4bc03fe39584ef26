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
        self.forward_owned(x.clone(), temb)
    }

    /// [`forward`](Self::forward) taking `x`: with a `conv_shortcut` the shortcut is computed
    /// first, and if nothing else holds `x` it is then normalised in place — the input of an up
    /// block's layer (a wide skip concatenation) and its normalised copy never coexist.
    pub fn forward_owned(&self, x: Tensor, temb: Option<&Tensor>) -> Result<Tensor> {
        let (n1, residual) = match &self.conv_shortcut {
            Some(sc) => {
                let s = sc.forward(&x)?;
                if x.is_exclusive() {
                    self.norm1.forward_inplace(&x, true)?;
                    (x, s)
                } else {
                    (self.norm1.forward(&x, true)?, s)
                }
            }
            None => (self.norm1.forward(&x, true)?, x),
        };
        let mut h = self.conv1.forward(&n1)?;
        drop(n1);
        if let (Some(proj), Some(t)) = (&self.time_emb_proj, temb) {
            let t = proj.forward(&silu(t)?)?;
            h = add_bcast(&h, &t, h.dim(2) * h.dim(3))?;
        }
        h = self.norm2.forward(&h, true)?;
        h = self.conv2.forward(&h)?;
        add_inplace(&h, &residual)?;
        Ok(h)
    }
}
