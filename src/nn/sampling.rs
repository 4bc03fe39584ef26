use super::Conv2d;
use crate::error::Result;
use crate::ops::layout::upsample_nearest;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `Downsample2D` with a conv (key `conv`): 3×3, stride 2. UNets pad 1 on every side; the VAE
/// encoder (padding=0) pads only bottom and right by 1.
pub struct Downsample2D {
    pub conv: Conv2d,
}

impl Downsample2D {
    pub fn load(w: &Scope, channels: usize, padding: usize) -> Result<Downsample2D> {
        let mut conv = Conv2d::load(&w.at("conv"), channels, channels, 3, 2, padding)?;
        if padding == 0 {
            conv.pad_end = 1;
        }
        Ok(Downsample2D { conv })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.conv.forward(x)
    }
}

/// `Upsample2D` with a conv: nearest ×2 (or to an explicit size) then 3×3 conv.
pub struct Upsample2D {
    pub conv: Conv2d,
}

impl Upsample2D {
    pub fn load(w: &Scope, channels: usize) -> Result<Upsample2D> {
        Ok(Upsample2D { conv: Conv2d::load(&w.at("conv"), channels, channels, 3, 1, 1)? })
    }

    /// `size` = diffusers' `upsample_size` (the skip connection's H, W) when latents are not a
    /// multiple of 8; otherwise 2×.
    pub fn forward(&self, x: &Tensor, size: Option<(usize, usize)>) -> Result<Tensor> {
        let (oh, ow) = size.unwrap_or((2 * x.dim(2), 2 * x.dim(3)));
        self.conv.forward(&upsample_nearest(x, oh, ow)?)
    }
}
