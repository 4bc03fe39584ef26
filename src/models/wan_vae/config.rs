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
    /// Wan 2.2: residual up blocks with DupUp3D shortcuts.
    pub is_residual: bool,
    pub in_channels: usize,
    pub out_channels: usize,
    /// Wan 2.2: 2 (p×p pixel patches folded into the channels; unpatchified after decoding).
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
        let p = self.patch();
        if p == 0 || self.out_channels % (p * p) != 0 {
            return Err(format!("out_channels {} must be a multiple of patch_size² ({p}²): the decoder's channels are p×p pixel patches", self.out_channels));
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
        let dims = self.decoder_dims();
        for (i, &d) in dims.iter().enumerate().skip(1) {
            if !self.is_residual && i < self.dim_mult.len() && d / 2 == 0 {
                return Err(format!("decoder level {i} has {d} channels, which the upsampler halves to 0 (raise base_dim or dim_mult)"));
            }
        }
        // Wan 2.2: DupUp3D repeats a block's input channels out·f/in times (diffusers asserts it).
        if self.is_residual {
            let up = self.temperal_upsample();
            for i in 0..self.dim_mult.len() - 1 {
                let f = if up[i] { 8 } else { 4 };
                if (dims[i + 1] * f) % dims[i] != 0 {
                    return Err(format!(
                        "is_residual: up block {i}'s DupUp3D shortcut maps {} channels to {} (×{f} positions), which needs a whole number of repeats",
                        dims[i], dims[i + 1]
                    ));
                }
            }
        }
        if let Some(s) = self.scale_factor_spatial.filter(|&s| s != self.decoder_scale() * p) {
            return Err(format!(
                "scale_factor_spatial {s} does not match the decoder: 2^{} levels × patch_size {p} = {}",
                self.dim_mult.len() - 1,
                self.decoder_scale() * p
            ));
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

    /// The patch size (1: none).
    pub fn patch(&self) -> usize {
        self.patch_size.unwrap_or(1).max(1)
    }

    /// The decoder's upsampling per axis: 2^(levels − 1).
    pub fn decoder_scale(&self) -> usize {
        1 << (self.dim_mult.len() - 1)
    }

    /// Pixels per latent along each axis: the decoder's upsampling times the patch (8 for Wan
    /// 2.1, 16 for Wan 2.2: diffusers' `scale_factor_spatial`).
    pub fn spatial_scale(&self) -> usize {
        self.decoder_scale() * self.patch()
    }

    /// Channels of the decoded frames (3): conv_out's channels over patch_size².
    pub fn image_channels(&self) -> usize {
        self.out_channels / (self.patch() * self.patch())
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
