use super::layer::{Dims, Layer3D};
use crate::error::Result;
use crate::nn::Upsample2D;
use crate::ops::layout::cat;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `CrossAttnUpBlock3D` (with attention) or `UpBlock3D` (without): each layer first
/// concatenates the newest remaining skip connection on channels; then an optional upsampler.
pub struct UpBlock3D {
    pub layers: Vec<Layer3D>,
    pub upsampler: Option<Upsample2D>,
}

impl UpBlock3D {
    /// `skip_channels[i]`: channels of the skip consumed by layer i; `prev` the input channels.
    pub fn load(w: &Scope, prev: usize, cout: usize, skip_channels: &[usize], d: Dims, cross_attn: bool, upsample: bool) -> Result<Self> {
        let mut layers = Vec::new();
        for (i, &skip) in skip_channels.iter().enumerate() {
            let cin = if i == 0 { prev } else { cout };
            layers.push(Layer3D::load(w, i, cin + skip, cout, d, cross_attn)?);
        }
        let upsampler = if upsample { Some(Upsample2D::load(&w.at("upsamplers.0"), cout)?) } else { None };
        Ok(UpBlock3D { layers, upsampler })
    }

    /// Pops one skip per layer from the end of `skips`; `size` is diffusers' `upsample_size`.
    pub fn forward(
        &self,
        x: Tensor,
        skips: &mut Vec<Tensor>,
        temb: &Tensor,
        context: &Tensor,
        frames: usize,
        size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        let mut h = x;
        for l in &self.layers {
            let skip = skips.pop().ok_or_else(|| crate::Error::Other("UNet skip connections ran out".into()))?;
            h = cat(&[&h, &skip], 1)?;
            drop(skip);
            h = l.forward(h, temb, context, frames)?;
        }
        if let Some(us) = &self.upsampler {
            h = us.forward(&h, size)?;
        }
        Ok(h)
    }
}
