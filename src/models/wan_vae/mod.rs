//! `AutoencoderKLWan` (diffusers 0.42.1), the decode path of the Wan 2.1 VAE: latents →
//! video frames, causal in time and decoded latent frame by latent frame with per-conv
//! two-frame caches, exactly as diffusers' `_decode` (WAN.md §4.4). Keys: `post_quant_conv`,
//! `decoder.*`; the encoder's keys (`encoder.*`, `quant_conv`) are accepted and left unused.
//!
//! Layout: one video at a time, frames folded into the batch dimension, (F, C, H, W) — every
//! per-frame op (norm, 2-D resample conv, attention) then sees plain images, and the output
//! is already the pipeline's (F, 3, H, W).
//!
//! Memory (Wan 2.1, latent h×w, planned in tests/models_wan_vae.rs): the 32 cache slots hold
//! 2 frames of their conv's input, Σ 2·C·(scale²) = 151,328·h·w elements — 3.52 GiB in f32 at
//! 832×480 (h×w = 60×104), 1.76 GiB with `cache_dtype = F16` — allocated during the first two
//! chunks and held to the end; on top of them a later chunk needs ≈ 1.0 GiB of transients
//! (the stages after the last temporal upsampler run frame by frame), the weights 140 MiB f16.
//!
//! Wan 2.2's VAE (`is_residual`, `patch_size` 2, z 48, a decoder wider than the encoder) differs
//! in its up blocks (residual: DupUp3D shortcuts of the block input, `upsampler` keys, no channel
//! halving) and in an unpatchify of conv_out's p²·3 channels into p×p pixels, after the clamp
//! (they commute) and chunk by chunk.
//!
//! Tiled decode (`tiling`, diffusers' `tiled_decode`, what `vae.enable_tiling()` gives):
//! [`AutoencoderKLWan::decode_tiled`] cuts a latent wider or taller than a tile
//! ([`WanVaeTiling`], default 256-pixel tiles every 192 pixels) into overlapping spatial tiles and
//! decodes them one after the other, each latent frame by latent frame with fresh causal caches;
//! each tile's frames are read back as they are made, and the host blends the overlaps linearly
//! (rounded as torch rounds them), crops, unpatchifies and clamps. The frames are diffusers'
//! tiled output, which differs from the untiled decode (each tile sees only its own latents),
//! and the device holds one tile's decode — the caches of a tile instead of the whole frame's:
//! at 832×480 with the default tiles (3×5 tiles of ≤ 32×32 latents instead of one of 60×104) a
//! 3-latent-frame decode plans 0.75 GiB above the weights and latents instead of 4.55 GiB
//! (tests/models_wan_vae.rs), while the whole video (388 MB in f32 at 81 frames) lives on the host.

mod attention_block;
mod cache;
mod causal_conv;
mod config;
mod decoder;
mod norm;
mod resample;
mod residual_block;
mod tiling;
mod up_blocks;

pub use attention_block::WanAttentionBlock;
pub use cache::{CacheSlot, CausalCache};
pub use causal_conv::CausalConv3d;
pub use config::{AutoencoderKLWanConfig, WAN21_LATENTS_MEAN, WAN21_LATENTS_STD};
pub use decoder::{WanDecoder3d, WanMidBlock};
pub use norm::WanRmsNorm;
pub use resample::WanResample;
pub use residual_block::WanResidualBlock;
pub use tiling::{DecodedVideo, WanVaeTiling};
pub use up_blocks::WanUpBlock;

use crate::error::{shape_err, Result};
use crate::ops::elementwise::{add_bcast, mul_bcast};
use crate::ops::layout::{channels_first_to_frames, copy_into};
use crate::ops::shuffle::unpatchify_frames;
use crate::tensor::{DType, Tensor};
use crate::weights::{Placement, Weights};
use std::sync::Arc;

pub struct AutoencoderKLWan {
    pub config: AutoencoderKLWanConfig,
    pub post_quant_conv: CausalConv3d,
    pub decoder: WanDecoder3d,
    /// How [`decode`](Self::decode) keeps its causal caches: F32 (default, diffusers' numbers)
    /// or F16 (half of the decode's largest allocation; see `cache`).
    pub cache_dtype: DType,
    /// `latents_std` as the multiplier of [`denormalize`](Self::denormalize), and `latents_mean`.
    std: Tensor,
    mean: Tensor,
}

impl AutoencoderKLWan {
    /// Builds the decoder from `w` (file-backed, or `Weights::synthetic` for planning).
    pub fn load(config: AutoencoderKLWanConfig, w: &Weights) -> Result<AutoencoderKLWan> {
        config.validate().map_err(|msg| crate::Error::Config { path: format!("{} (vae config)", w.component), msg })?;
        let root = w.at("");
        let z = config.z_dim;
        let mut none = 0;
        let post_quant_conv = CausalConv3d::load(&root.at("post_quant_conv"), z, z, 1, 1, &mut none)?;
        let decoder = WanDecoder3d::load(&root.at("decoder"), &config)?;
        let unused: Vec<String> = w.entries().map(|(k, _)| k.clone()).filter(|k| k.starts_with("encoder.") || k.starts_with("quant_conv.")).collect();
        for k in unused {
            w.ignore(&k);
        }
        w.finish()?;
        // diffusers divides by (1 / std) in f32; multiplying by the f32 nearest to that quotient's
        // inverse differs by at most an ulp.
        let std: Vec<f32> = config.latents_std.iter().map(|&s| (1.0 / (1.0f32 / s) as f64) as f32).collect();
        let gpu = w.gpu();
        Ok(AutoencoderKLWan {
            std: Tensor::from_f32(gpu, &[z], &std)?,
            mean: Tensor::from_f32(gpu, &[z], &config.latents_mean)?,
            post_quant_conv,
            decoder,
            cache_dtype: DType::F32,
            config,
        })
    }

    pub fn from_dir(gpu: &Arc<crate::Gpu>, dir: &std::path::Path, placement: Placement) -> Result<AutoencoderKLWan> {
        let config = AutoencoderKLWanConfig::from_file(&dir.join("config.json"))?;
        AutoencoderKLWan::load(config, &Weights::open_dir(gpu, dir, placement)?)
    }

    /// The pipeline's de-normalisation of the denoised latents (B, z, T, h, w):
    /// `latents / (1 / latents_std) + latents_mean` per channel (WAN.md §1.8).
    pub fn denormalize(&self, latents: &Tensor) -> Result<Tensor> {
        let s = latents.shape();
        if s.len() != 5 || s[1] != self.config.z_dim {
            return shape_err("wan_vae.denormalize", format!("latents must be (B, {}, T, h, w), got {s:?}", self.config.z_dim));
        }
        let inner = s[2] * s[3] * s[4];
        add_bcast(&mul_bcast(latents, &self.std, inner)?, &self.mean, inner)
    }

    /// A fresh set of causal caches for one video (slots fill during its first chunk).
    pub fn new_cache(&self) -> CausalCache {
        CausalCache::new(self.decoder.slots, self.cache_dtype)
    }

    /// `post_quant_conv` over the whole latent video (1, z, T, h, w) → folded frames (T, z, h, w).
    pub fn post_quant(&self, z: &Tensor) -> Result<Tensor> {
        let s = z.shape();
        if s.len() != 5 || s[0] != 1 || s[1] != self.config.z_dim || s[2] == 0 {
            return shape_err("wan_vae.decode", format!("latents must be one video (1, {}, T, h, w), got {s:?}", self.config.z_dim));
        }
        let mut cache = CausalCache::new(0, DType::F32);
        self.post_quant_conv.forward(&channels_first_to_frames(z)?, &mut cache, false)
    }

    /// Decodes one video's latents (1, z, T, h, w) (already de-normalised) latent frame by
    /// latent frame, handing each chunk's frames — (1, 3, H, W) first, then (4, 3, H, W) for
    /// Wan 2.1, clamped to [-1, 1] — to `on_chunk` before the next chunk runs, so the whole
    /// video never has to sit on the device.
    pub fn decode_with(&self, z: &Tensor, on_chunk: &mut dyn FnMut(Tensor) -> Result<()>) -> Result<()> {
        let x = self.post_quant(z)?;
        let mut cache = self.new_cache();
        let p = self.config.patch();
        for i in 0..x.dim(0) {
            let frames = self.decoder.forward(&x.narrow0(i, 1)?, &mut cache, true)?;
            on_chunk(if p > 1 { unpatchify_frames(&frames, p)? } else { frames })?;
        }
        Ok(())
    }

    /// [`decode_with`](Self::decode_with) collected into one tensor (F, 3, H, W),
    /// F = 1 + 4·(T − 1): diffusers' `vae.decode(latents).sample[0]` with frames first.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let s = z.shape();
        if s.len() != 5 {
            return shape_err("wan_vae.decode", format!("latents must be (1, {}, T, h, w), got {s:?}", self.config.z_dim));
        }
        let k = self.config.spatial_scale();
        let frames = self.config.frames_for(s[2]);
        let out = Tensor::empty(z.gpu(), &[frames, self.config.image_channels(), k * s[3], k * s[4]], DType::F32)?;
        let mut at = 0;
        self.decode_with(z, &mut |chunk| {
            let n = chunk.dim(0);
            copy_into(&chunk, &out.narrow0(at, n)?)?;
            at += n;
            Ok(())
        })?;
        Ok(out)
    }
}
