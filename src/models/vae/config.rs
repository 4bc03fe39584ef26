//! `vae/config.json` of an AutoencoderKL, with diffusers' defaults.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AutoencoderKLConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub act_fn: String,
    pub latent_channels: usize,
    pub norm_num_groups: usize,
    pub scaling_factor: f32,
    pub shift_factor: Option<f32>,
    pub use_quant_conv: bool,
    pub use_post_quant_conv: bool,
    pub mid_block_add_attention: bool,
}

impl Default for AutoencoderKLConfig {
    fn default() -> Self {
        AutoencoderKLConfig {
            in_channels: 3,
            out_channels: 3,
            down_block_types: vec!["DownEncoderBlock2D".into()],
            up_block_types: vec!["UpDecoderBlock2D".into()],
            block_out_channels: vec![64],
            layers_per_block: 1,
            act_fn: "silu".into(),
            latent_channels: 4,
            norm_num_groups: 32,
            scaling_factor: 0.18215,
            shift_factor: None,
            use_quant_conv: true,
            use_post_quant_conv: true,
            mid_block_add_attention: true,
        }
    }
}

impl AutoencoderKLConfig {
    /// Pixels per latent along each axis, as diffusers' pipelines compute it:
    /// `2 ** (len(vae.config.block_out_channels) - 1)` (8 for every published model).
    pub fn scale_factor(&self) -> usize {
        1 << self.block_out_channels.len().saturating_sub(1)
    }

    pub fn from_file(path: &std::path::Path) -> crate::Result<Self> {
        let c: AutoencoderKLConfig = crate::config::read_json(path)?;
        let bad = |msg: String| Err(crate::Error::Config { path: path.display().to_string(), msg });
        let n = c.block_out_channels.len();
        if n == 0 || c.down_block_types.len() != n || c.up_block_types.len() != n {
            return bad("block_out_channels, down_block_types and up_block_types must have the same non-zero length".into());
        }
        if c.down_block_types.iter().any(|t| t != "DownEncoderBlock2D") || c.up_block_types.iter().any(|t| t != "UpDecoderBlock2D") {
            return bad("only DownEncoderBlock2D / UpDecoderBlock2D VAEs are supported".into());
        }
        if c.act_fn != "silu" {
            return bad(format!("act_fn '{}' is not supported (silu only)", c.act_fn));
        }
        for &ch in &c.block_out_channels {
            if c.norm_num_groups == 0 || ch % c.norm_num_groups != 0 {
                return bad(format!("norm_num_groups {} does not divide {ch} channels", c.norm_num_groups));
            }
        }
        Ok(c)
    }
}
