use super::mid_block::UNetMidBlock2D;
use super::AutoencoderKLConfig;
use crate::error::Result;
use crate::nn::{Conv2d, Downsample2D, GroupNorm, ResnetBlock2D};
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `DownEncoderBlock2D`: resnets, then a stride-2 conv that pads only bottom/right.
pub struct DownEncoderBlock2D {
    pub resnets: Vec<ResnetBlock2D>,
    pub downsampler: Option<Downsample2D>,
}

/// The VAE `Encoder`: conv_in → down blocks → mid block → GN+SiLU → conv_out (2·latent channels:
/// mean and log-variance).
pub struct Encoder {
    pub conv_in: Conv2d,
    pub down_blocks: Vec<DownEncoderBlock2D>,
    pub mid_block: UNetMidBlock2D,
    pub conv_norm_out: GroupNorm,
    pub conv_out: Conv2d,
}

impl Encoder {
    pub fn load(w: &Scope, c: &AutoencoderKLConfig) -> Result<Encoder> {
        let ch = &c.block_out_channels;
        let g = c.norm_num_groups;
        let mut down_blocks = Vec::new();
        for i in 0..ch.len() {
            let b = w.at(format!("down_blocks.{i}"));
            let cin = if i == 0 { ch[0] } else { ch[i - 1] };
            let resnets = (0..c.layers_per_block)
                .map(|j| ResnetBlock2D::load(&b.at(format!("resnets.{j}")), if j == 0 { cin } else { ch[i] }, ch[i], None, g, 1e-6))
                .collect::<Result<_>>()?;
            let downsampler = if i + 1 < ch.len() { Some(Downsample2D::load(&b.at("downsamplers.0"), ch[i], 0)?) } else { None };
            down_blocks.push(DownEncoderBlock2D { resnets, downsampler });
        }
        let last = ch[ch.len() - 1];
        Ok(Encoder {
            conv_in: Conv2d::load(&w.at("conv_in"), c.in_channels, ch[0], 3, 1, 1)?,
            down_blocks,
            mid_block: UNetMidBlock2D::load(&w.at("mid_block"), last, g, c.mid_block_add_attention)?,
            conv_norm_out: GroupNorm::load(&w.at("conv_norm_out"), g, last, 1e-6)?,
            conv_out: Conv2d::load(&w.at("conv_out"), last, 2 * c.latent_channels, 3, 1, 1)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.conv_in.forward(x)?;
        for b in &self.down_blocks {
            for r in &b.resnets {
                h = r.forward(&h, None)?;
            }
            if let Some(d) = &b.downsampler {
                h = d.forward(&h)?;
            }
        }
        h = self.mid_block.forward(&h)?;
        self.conv_out.forward(&self.conv_norm_out.forward(&h, true)?)
    }
}
