use super::mid_block::UNetMidBlock2D;
use super::AutoencoderKLConfig;
use crate::error::Result;
use crate::nn::{Conv2d, GroupNorm, ResnetBlock2D, Upsample2D};
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `UpDecoderBlock2D`: layers_per_block + 1 resnets, then nearest ×2 + conv.
pub struct UpDecoderBlock2D {
    pub resnets: Vec<ResnetBlock2D>,
    pub upsampler: Option<Upsample2D>,
}

/// The VAE `Decoder`: conv_in → mid block → up blocks → GN+SiLU → conv_out (RGB in [-1, 1]).
pub struct Decoder {
    pub conv_in: Conv2d,
    pub mid_block: UNetMidBlock2D,
    pub up_blocks: Vec<UpDecoderBlock2D>,
    pub conv_norm_out: GroupNorm,
    pub conv_out: Conv2d,
}

impl Decoder {
    pub fn load(w: &Scope, c: &AutoencoderKLConfig) -> Result<Decoder> {
        let rev: Vec<usize> = c.block_out_channels.iter().rev().copied().collect();
        let g = c.norm_num_groups;
        let mut up_blocks = Vec::new();
        let mut prev = rev[0];
        for (i, &out) in rev.iter().enumerate() {
            let b = w.at(format!("up_blocks.{i}"));
            let resnets = (0..=c.layers_per_block)
                .map(|j| ResnetBlock2D::load(&b.at(format!("resnets.{j}")), if j == 0 { prev } else { out }, out, None, g, 1e-6))
                .collect::<Result<_>>()?;
            let upsampler = if i + 1 < rev.len() { Some(Upsample2D::load(&b.at("upsamplers.0"), out)?) } else { None };
            up_blocks.push(UpDecoderBlock2D { resnets, upsampler });
            prev = out;
        }
        let first = c.block_out_channels[0];
        Ok(Decoder {
            conv_in: Conv2d::load(&w.at("conv_in"), c.latent_channels, rev[0], 3, 1, 1)?,
            mid_block: UNetMidBlock2D::load(&w.at("mid_block"), rev[0], g, c.mid_block_add_attention)?,
            up_blocks,
            conv_norm_out: GroupNorm::load(&w.at("conv_norm_out"), g, first, 1e-6)?,
            conv_out: Conv2d::load(&w.at("conv_out"), first, c.out_channels, 3, 1, 1)?,
        })
    }

    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let mut h = self.mid_block.forward(&self.conv_in.forward(z)?)?;
        for b in &self.up_blocks {
            for r in &b.resnets {
                h = r.forward(&h, None)?;
            }
            if let Some(u) = &b.upsampler {
                h = u.forward(&h, None)?;
            }
        }
        self.conv_out.forward(&self.conv_norm_out.forward(&h, true)?)
    }
}
