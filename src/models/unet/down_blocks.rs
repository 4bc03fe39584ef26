use super::layer::{Dims, Layer3D};
use crate::error::Result;
use crate::nn::Downsample2D;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `CrossAttnDownBlock3D` (with attention) or `DownBlock3D` (without): layers, then an optional
/// stride-2 downsampler. Every layer's output and the downsampler's are skip connections.
pub struct DownBlock3D {
    pub layers: Vec<Layer3D>,
    pub downsampler: Option<Downsample2D>,
}

impl DownBlock3D {
    #[allow(clippy::too_many_arguments)]
    pub fn load(w: &Scope, cin: usize, cout: usize, n: usize, d: Dims, cross_attn: bool, downsample: bool, padding: usize) -> Result<Self> {
        let layers = (0..n).map(|i| Layer3D::load(w, i, if i == 0 { cin } else { cout }, cout, d, cross_attn)).collect::<Result<_>>()?;
        let downsampler = if downsample { Some(Downsample2D::load(&w.at("downsamplers.0"), cout, padding)?) } else { None };
        Ok(DownBlock3D { layers, downsampler })
    }

    /// Returns the block output and its skip connections, in order.
    pub fn forward(&self, x: &Tensor, temb: &Tensor, context: &Tensor, frames: usize) -> Result<(Tensor, Vec<Tensor>)> {
        let mut h = x.clone();
        let mut skips = Vec::new();
        for l in &self.layers {
            h = l.forward(h, temb, context, frames)?;
            skips.push(h.clone());
        }
        if let Some(ds) = &self.downsampler {
            h = ds.forward(&h)?;
            skips.push(h.clone());
        }
        Ok((h, skips))
    }
}
