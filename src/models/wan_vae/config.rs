//! `vae/config.json` of an `AutoencoderKLWan`, with diffusers 0.42.1's defaults (= the Wan 2.1 VAE).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AutoencoderKLWanConfig {
    pub base_dim: usize,
    /// None ⇒ `base_dim` (Wan 2.2's decoder is wider than its encoder).
    pub decoder_base_dim: Option<usize>,
    pub z_dim: usize,
    pub dim_mult: Vec<usize>,
    pub num_res_blocks: usize,
    /// Used by the encoder only (the decoder builds no attention outside its mid block).
    pub attn_scales: Vec<f64>,
    pub temperal_downsample: Vec<bool>,
    pub dropout: f64,
    pub latents_mean: Vec<f32>,
    pub latents_std: Vec<f32>,
    /// Wan 2.2: residual up blocks with DupUp3D shortcuts (not implemented yet).
    pub is_residual: bool,
    pub in_channels: usize,
    pub out_channels: usize,
    /// Wan 2.2: 2 (pixel patches folded into channels; not implemented yet).
    pub patch_size: Option<usize>,
    pub scale_factor_temporal: Option<usize>,
    pub scale_factor_spatial: Option<usize>,
}

pub const WAN21_LATENTS_MEAN: [f32; 16] = [
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
];
pub const WAN21_LATENTS_STD: [f32; 16] = [
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
];

impl Default for AutoencoderKLWanConfig {
    fn default() -> Self {
        AutoencoderKLWanConfig {
            base_dim: 96,
            decoder_base_dim: None,
            z_dim: 16,
            dim_mult: vec![1, 2, 4, 4],
            num_res_blocks: 2,
            attn_scales: Vec::new(),
            temperal_downsample: vec![false, true, true],
            dropout: 0.0,
            latents_mean: WAN21_LATENTS_MEAN.to_vec(),
            latents_std: WAN21_LATENTS_STD.to_vec(),
            is_residual: false,
            in_channels: 3,
            out_channels: 3,
            patch_size: None,
            scale_factor_temporal: Some(4),
            scale_factor_spatial: Some(8),
        }
    }
}

impl AutoencoderKLWanConfig {
    pub fn from_file(path: &std::path::Path) -> crate::Result<Self> {
        let c: AutoencoderKLWanConfig = crate::config::read_json(path)?;
        c.validate().map_err(|msg| crate::Error::Config { path: path.display().to_string(), msg })?;
        Ok(c)
    }

    /// What this engine can decode; the message names the key and what would work.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.is_residual {
            return Err("is_residual: true (the Wan 2.2 VAE's residual up blocks) is not supported yet; Wan 2.1 VAEs (is_residual: false) are".into());
        }
        if self.patch_size.is_some_and(|p| p > 1) {
            return Err(format!("patch_size {:?} (Wan 2.2's patchified VAE) is not supported yet; Wan 2.1 VAEs have none", self.patch_size));
        }
        if self.dim_mult.is_empty() || self.dim_mult.contains(&0) {
            return Err(format!("dim_mult {:?} must be a non-empty list of positive multipliers", self.dim_mult));
        }
        if self.temperal_downsample.len() + 1 != self.dim_mult.len() {
            return Err(format!(
                "temperal_downsample has {} entries; dim_mult {:?} needs {}",
                self.temperal_downsample.len(),
                self.dim_mult,
                self.dim_mult.len() - 1
            ));
        }
        if self.z_dim == 0 || self.out_channels == 0 || self.decoder_dim() == 0 {
            return Err("z_dim, out_channels and base_dim must be positive".into());
        }
        if self.latents_mean.len() != self.z_dim || self.latents_std.len() != self.z_dim {
            return Err(format!(
                "latents_mean ({}) and latents_std ({}) must have z_dim = {} entries",
                self.latents_mean.len(),
                self.latents_std.len(),
                self.z_dim
            ));
        }
        if self.latents_std.iter().any(|&s| s == 0.0 || !s.is_finite()) {
            return Err("latents_std entries must be finite and non-zero".into());
        }
        // Wan 2.1 halves channels in every upsampler: each level must keep at least one.
        for (i, &d) in self.decoder_dims().iter().enumerate().skip(1) {
            if i < self.dim_mult.len() && d / 2 == 0 {
                return Err(format!("decoder level {i} has {d} channels, which the upsampler halves to 0 (raise base_dim or dim_mult)"));
            }
        }
        Ok(())
    }

    pub fn decoder_dim(&self) -> usize {
        self.decoder_base_dim.unwrap_or(self.base_dim)
    }

    /// Channels per decoder level: `dim · [dim_mult[-1]] + dim_mult[::-1]` (diffusers' `dims`).
    pub fn decoder_dims(&self) -> Vec<usize> {
        let d = self.decoder_dim();
        std::iter::once(*self.dim_mult.last().unwrap_or(&1)).chain(self.dim_mult.iter().rev().copied()).map(|m| d * m).collect()
    }

    /// `temperal_downsample[::-1]`: which up blocks double the frames.
    pub fn temperal_upsample(&self) -> Vec<bool> {
        self.temperal_downsample.iter().rev().copied().collect()
    }

    /// Pixels per latent along each axis: 2^(levels − 1).
    pub fn spatial_scale(&self) -> usize {
        1 << (self.dim_mult.len() - 1)
    }

    /// Frames every latent frame after the first decodes to (the first gives one).
    pub fn temporal_scale(&self) -> usize {
        1 << self.temperal_downsample.iter().filter(|&&t| t).count()
    }

    /// Output frames for `latent_frames` latent frames: 1 + s·(T − 1).
    pub fn frames_for(&self, latent_frames: usize) -> usize {
        if latent_frames == 0 {
            0
        } else {
            1 + self.temporal_scale() * (latent_frames - 1)
        }
    }
}
