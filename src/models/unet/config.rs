//! `unet/config.json` of a UNet3DConditionModel, with diffusers' constructor defaults.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    pub fn get(&self, i: usize) -> usize {
        match self {
            PerBlock::One(v) => *v,
            PerBlock::Each(v) => v.get(i).copied().unwrap_or(v.last().copied().unwrap_or(64)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UNet3DConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub downsample_padding: usize,
    pub mid_block_scale_factor: f32,
    pub act_fn: String,
    pub norm_num_groups: usize,
    pub norm_eps: f32,
    pub cross_attention_dim: usize,
    /// The number of *heads*' width, despite the name (diffusers issue #2011): heads = C / this.
    pub attention_head_dim: PerBlock,
    pub num_attention_heads: Option<PerBlock>,
    pub time_cond_proj_dim: Option<usize>,
    pub sample_size: Option<usize>,
}

impl Default for UNet3DConfig {
    fn default() -> Self {
        UNet3DConfig {
            in_channels: 4,
            out_channels: 4,
            down_block_types: ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"]
                .map(String::from)
                .to_vec(),
            up_block_types: ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"].map(String::from).to_vec(),
            block_out_channels: vec![320, 640, 1280, 1280],
            layers_per_block: 2,
            downsample_padding: 1,
            mid_block_scale_factor: 1.0,
            act_fn: "silu".into(),
            norm_num_groups: 32,
            norm_eps: 1e-5,
            cross_attention_dim: 1024,
            attention_head_dim: PerBlock::One(64),
            num_attention_heads: None,
            time_cond_proj_dim: None,
            sample_size: None,
        }
    }
}

impl UNet3DConfig {
    pub fn from_file(path: &std::path::Path) -> crate::Result<UNet3DConfig> {
        let cfg: UNet3DConfig = crate::config::read_json(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &std::path::Path) -> crate::Result<()> {
        let bad = |msg: String| Err(crate::Error::Config { path: path.display().to_string(), msg });
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return bad(format!(
                "block_out_channels ({n}), down_block_types ({}) and up_block_types ({}) must have the same non-zero length",
                self.down_block_types.len(),
                self.up_block_types.len()
            ));
        }
        for t in &self.down_block_types {
            if t != "CrossAttnDownBlock3D" && t != "DownBlock3D" {
                return bad(format!("down block type '{t}' is not a UNet3D block (CrossAttnDownBlock3D or DownBlock3D)"));
            }
        }
        for t in &self.up_block_types {
            if t != "CrossAttnUpBlock3D" && t != "UpBlock3D" {
                return bad(format!("up block type '{t}' is not a UNet3D block (CrossAttnUpBlock3D or UpBlock3D)"));
            }
        }
        if self.num_attention_heads.is_some() {
            return bad("num_attention_heads is not supported by UNet3DConditionModel (diffusers raises too); use attention_head_dim".into());
        }
        if self.act_fn != "silu" && self.act_fn != "swish" {
            return bad(format!("act_fn '{}' is not supported (silu only)", self.act_fn));
        }
        if self.time_cond_proj_dim.is_some() {
            return bad("time_cond_proj_dim is not supported".into());
        }
        for &c in &self.block_out_channels {
            if self.norm_num_groups == 0 || c % self.norm_num_groups != 0 {
                return bad(format!("norm_num_groups {} does not divide {c} channels", self.norm_num_groups));
            }
        }
        Ok(())
    }
}
