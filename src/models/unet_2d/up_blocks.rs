use super::{Dims, Transformer2DModel};
use crate::error::Result;
use crate::nn::{ResnetBlock2D, Upsample2D};
use crate::ops::layout::cat;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `CrossAttnUpBlock2D` or `UpBlock2D`: each layer concatenates the newest remaining skip
/// connection on channels, then resnet (→ attention); then an optional upsampler
/// (`upsamplers.0.conv`).
pub struct UpBlock2D {
    pub resnets: Vec<ResnetBlock2D>,
    /// Empty for `UpBlock2D`.
    pub attentions: Vec<Transformer2DModel>,
    pub upsampler: Option<Upsample2D>,
}

impl UpBlock2D {
    /// `skip_channels[i]`: channels of the skip consumed by layer i; `prev` the input channels.
    pub fn load(w: &Scope, prev: usize, cout: usize, skip_channels: &[usize], d: Dims, cross_attn: bool, upsample: bool) -> Result<Self> {
        let mut resnets = Vec::new();
        let mut attentions = Vec::new();
        for (i, &skip) in skip_channels.iter().enumerate() {
            let cin = if i == 0 { prev } else { cout };
            resnets.push(ResnetBlock2D::load(&w.at(format!("resnets.{i}")), cin + skip, cout, Some(d.temb), d.groups, d.eps)?);
            if cross_attn {
                attentions.push(d.transformer(&w.at(format!("attentions.{i}")), cout)?);
            }
        }
        let upsampler = if upsample { Some(Upsample2D::load(&w.at("upsamplers.0"), cout)?) } else { None };
        Ok(UpBlock2D { resnets, attentions, upsampler })
    }

    /// Pops one skip per layer from the end of `skips`; `size` is diffusers' `upsample_size`.
    pub fn forward(
        &self,
        x: Tensor,
        skips: &mut Vec<Tensor>,
        temb: &Tensor,
        context: &Tensor,
        cross_frame: Option<usize>,
        size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        let mut h = x;
        for (i, resnet) in self.resnets.iter().enumerate() {
            let skip = skips.pop().ok_or_else(|| crate::Error::Other("UNet skip connections ran out".into()))?;
            h = cat(&[&h, &skip], 1)?;
            drop(skip);
            h = resnet.forward_owned(h, Some(temb))?;
            if let Some(attn) = self.attentions.get(i) {
                h = attn.forward(&h, context, cross_frame)?;
            }
        }
        if let Some(us) = &self.upsampler {
            h = us.forward(&h, size)?;
        }
        Ok(h)
    }
}
