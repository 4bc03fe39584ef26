//! `AutoencoderKL` (the SD KL-f8 VAE): encoder for video-to-video, decoder for latents → frames.
//! Keys: `encoder.*`, `quant_conv`, `post_quant_conv`, `decoder.*`.

mod config;
mod decoder;
mod encoder;
mod mid_block;

pub use config::AutoencoderKLConfig;
pub use decoder::{Decoder, UpDecoderBlock2D};
pub use encoder::{DownEncoderBlock2D, Encoder};
pub use mid_block::{UNetMidBlock2D, VaeAttention};

use crate::error::{shape_err, Result};
use crate::nn::Conv2d;
use crate::tensor::Tensor;
use crate::weights::{Placement, Weights};
use std::sync::Arc;

pub struct AutoencoderKL {
    pub config: AutoencoderKLConfig,
    pub encoder: Encoder,
    pub quant_conv: Option<Conv2d>,
    pub post_quant_conv: Option<Conv2d>,
    pub decoder: Decoder,
}

impl AutoencoderKL {
    pub fn load(config: AutoencoderKLConfig, w: &Weights) -> Result<AutoencoderKL> {
        let root = w.at("");
        let l2 = 2 * config.latent_channels;
        let l = config.latent_channels;
        let vae = AutoencoderKL {
            encoder: Encoder::load(&root.at("encoder"), &config)?,
            quant_conv: if config.use_quant_conv { Some(Conv2d::load(&root.at("quant_conv"), l2, l2, 1, 1, 0)?) } else { None },
            post_quant_conv: if config.use_post_quant_conv { Some(Conv2d::load(&root.at("post_quant_conv"), l, l, 1, 1, 0)?) } else { None },
            decoder: Decoder::load(&root.at("decoder"), &config)?,
            config,
        };
        w.finish()?;
        Ok(vae)
    }

    pub fn from_dir(gpu: &Arc<crate::Gpu>, dir: &std::path::Path, placement: Placement) -> Result<AutoencoderKL> {
        let config = AutoencoderKLConfig::from_file(&dir.join("config.json"))?;
        AutoencoderKL::load(config, &Weights::open_dir(gpu, dir, placement)?)
    }

    /// Images (N, 3, H, W) in [-1, 1] → the posterior's moments (N, 2·latent, H/8, W/8):
    /// mean, then log-variance (diffusers clamps it to [-30, 20] when sampling).
    pub fn encode_moments(&self, x: &Tensor) -> Result<Tensor> {
        if x.shape().len() != 4 || x.dim(1) != self.config.in_channels {
            return shape_err("vae.encode", format!("images must be (N, {}, H, W), got {:?}", self.config.in_channels, x.shape()));
        }
        let h = self.encoder.forward(x)?;
        match &self.quant_conv {
            Some(q) => q.forward(&h),
            None => Ok(h),
        }
    }

    /// Latents (N, latent, h, w) (already divided by the scaling factor) → images (N, 3, 8h, 8w).
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        if z.shape().len() != 4 || z.dim(1) != self.config.latent_channels {
            return shape_err("vae.decode", format!("latents must be (N, {}, h, w), got {:?}", self.config.latent_channels, z.shape()));
        }
        let z = match &self.post_quant_conv {
            Some(p) => p.forward(z)?,
            None => z.clone(),
        };
        self.decoder.forward(&z)
    }
}
