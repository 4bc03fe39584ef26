use super::{Dims, Transformer2DModel};
use crate::error::Result;
use crate::nn::{Downsample2D, ResnetBlock2D};
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `CrossAttnDownBlock2D` (resnet → attention per layer) or `DownBlock2D` (resnets only), then
/// an optional stride-2 downsampler. Keys: `resnets.i`, `attentions.i`, `downsamplers.0.conv`.
/// Every layer's output and the downsampler's are skip connections.
pub struct DownBlock2D {
    pub resnets: Vec<ResnetBlock2D>,
    /// Empty for `DownBlock2D`.
    pub attentions: Vec<Transformer2DModel>,
    pub downsampler: Option<Downsample2D>,
}

impl DownBlock2D {
    #[allow(clippy::too_many_arguments)]
    pub fn load(w: &Scope, cin: usize, cout: usize, layers: usize, d: Dims, cross_attn: bool, downsample: bool, padding: usize) -> Result<Self> {
        let mut resnets = Vec::new();
        let mut attentions = Vec::new();
        for i in 0..layers {
            let c = if i == 0 { cin } else { cout };
            resnets.push(ResnetBlock2D::load(&w.at(format!("resnets.{i}")), c, cout, Some(d.temb), d.groups, d.eps)?);
            if cross_attn {
                attentions.push(d.transformer(&w.at(format!("attentions.{i}")), cout)?);
            }
        }
        let downsampler = if downsample { Some(Downsample2D::load(&w.at("downsamplers.0"), cout, padding)?) } else { None };
        Ok(DownBlock2D { resnets, attentions, downsampler })
    }

    /// Returns the block output and its skip connections, in order.
    pub fn forward(&self, x: &Tensor, temb: &Tensor, context: &Tensor, cross_frame: Option<usize>) -> Result<(Tensor, Vec<Tensor>)> {
        let mut h = x.clone();
        let mut skips = Vec::new();
        for (i, resnet) in self.resnets.iter().enumerate() {
            h = resnet.forward_owned(h, Some(temb))?;
            if let Some(attn) = self.attentions.get(i) {
                h = attn.forward(&h, context, cross_frame)?;
            }
            skips.push(h.clone());
        }
        if let Some(ds) = &self.downsampler {
            h = ds.forward(&h)?;
            skips.push(h.clone());
        }
        Ok((h, skips))
    }
}
