//! `unet/config.json` of a UNet2DConditionModel (Stable Diffusion 1.x / 2.x), with diffusers'
//! constructor defaults. Options the engine does not run are refused by name, never ignored.

use crate::models::unet::PerBlock;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UNet2DConfig {
    pub sample_size: Option<usize>,
    pub in_channels: usize,
    pub out_channels: usize,
    pub center_input_sample: bool,
    pub flip_sin_to_cos: bool,
    pub freq_shift: f32,
    pub down_block_types: Vec<String>,
    pub mid_block_type: Option<String>,
    pub up_block_types: Vec<String>,
    pub only_cross_attention: serde_json::Value,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: PerBlock,
    pub downsample_padding: usize,
    pub mid_block_scale_factor: f32,
    pub act_fn: String,
    pub norm_num_groups: usize,
    pub norm_eps: f32,
    pub cross_attention_dim: PerBlock,
    pub transformer_layers_per_block: PerBlock,
    /// Here the number of *heads* (UNet2DConditionModel reads `num_attention_heads or
    /// attention_head_dim` as heads; SD 1.x: 8); the head width is channels / heads.
    pub attention_head_dim: PerBlock,
    pub num_attention_heads: Option<PerBlock>,
    pub dual_cross_attention: bool,
    /// SD 2.x: proj_in/proj_out are Linear; SD 1.x: 1×1 convs (same arithmetic).
    pub use_linear_projection: bool,
    pub class_embed_type: Option<String>,
    pub addition_embed_type: Option<String>,
    pub num_class_embeds: Option<usize>,
    /// SD 2.1 sets it; t2v computes attention in f32 anyway, so it changes nothing here.
    pub upcast_attention: bool,
    pub resnet_time_scale_shift: String,
    pub time_embedding_type: String,
    pub time_cond_proj_dim: Option<usize>,
    pub conv_in_kernel: usize,
    pub conv_out_kernel: usize,
    pub encoder_hid_dim: Option<usize>,
    pub attention_type: String,
    pub cross_attention_norm: Option<String>,
    pub resnet_skip_time_act: bool,
    pub time_embedding_act_fn: Option<String>,
    pub timestep_post_act: Option<String>,
}

impl Default for UNet2DConfig {
    fn default() -> Self {
        UNet2DConfig {
            sample_size: None,
            in_channels: 4,
            out_channels: 4,
            center_input_sample: false,
            flip_sin_to_cos: true,
            freq_shift: 0.0,
            down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
                .map(String::from)
                .to_vec(),
            mid_block_type: Some("UNetMidBlock2DCrossAttn".into()),
            up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"].map(String::from).to_vec(),
            only_cross_attention: serde_json::Value::Bool(false),
            block_out_channels: vec![320, 640, 1280, 1280],
            layers_per_block: PerBlock::One(2),
            downsample_padding: 1,
            mid_block_scale_factor: 1.0,
            act_fn: "silu".into(),
            norm_num_groups: 32,
            norm_eps: 1e-5,
            cross_attention_dim: PerBlock::One(1280),
            transformer_layers_per_block: PerBlock::One(1),
            attention_head_dim: PerBlock::One(8),
            num_attention_heads: None,
            dual_cross_attention: false,
            use_linear_projection: false,
            class_embed_type: None,
            addition_embed_type: None,
            num_class_embeds: None,
            upcast_attention: false,
            resnet_time_scale_shift: "default".into(),
            time_embedding_type: "positional".into(),
            time_cond_proj_dim: None,
            conv_in_kernel: 3,
            conv_out_kernel: 3,
            encoder_hid_dim: None,
            attention_type: "default".into(),
            cross_attention_norm: None,
            resnet_skip_time_act: false,
            time_embedding_act_fn: None,
            timestep_post_act: None,
        }
    }
}

impl UNet2DConfig {
    pub fn from_file(path: &std::path::Path) -> crate::Result<UNet2DConfig> {
        let cfg: UNet2DConfig = crate::config::read_json(path)?;
        cfg.validate(&path.display().to_string())?;
        Ok(cfg)
    }

    /// Heads of block `i` (diffusers: `num_attention_heads or attention_head_dim`).
    pub fn heads(&self, i: usize) -> usize {
        self.num_attention_heads.as_ref().unwrap_or(&self.attention_head_dim).get(i)
    }

    pub fn layers(&self) -> usize {
        self.layers_per_block.get(0)
    }

    pub fn cross_dim(&self) -> usize {
        self.cross_attention_dim.get(0)
    }

    pub fn validate(&self, path: &str) -> crate::Result<()> {
        let bad = |msg: String| Err(crate::Error::Config { path: path.to_string(), msg });
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return bad(format!(
                "block_out_channels ({n}), down_block_types ({}) and up_block_types ({}) must have the same non-zero length",
                self.down_block_types.len(),
                self.up_block_types.len()
            ));
        }
        for t in &self.down_block_types {
            if t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
                return bad(format!("down block type '{t}' is not supported (CrossAttnDownBlock2D or DownBlock2D, as Stable Diffusion 1.x/2.x)"));
            }
        }
        for t in &self.up_block_types {
            if t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
                return bad(format!("up block type '{t}' is not supported (CrossAttnUpBlock2D or UpBlock2D, as Stable Diffusion 1.x/2.x)"));
            }
        }
        if self.mid_block_type.as_deref() != Some("UNetMidBlock2DCrossAttn") {
            return bad(format!("mid_block_type {:?} is not supported (UNetMidBlock2DCrossAttn)", self.mid_block_type));
        }
        let per_block = [
            ("layers_per_block", &self.layers_per_block),
            ("cross_attention_dim", &self.cross_attention_dim),
            ("transformer_layers_per_block", &self.transformer_layers_per_block),
        ];
        for (key, v) in per_block {
            if let PerBlock::Each(list) = v {
                if list.windows(2).any(|w| w[0] != w[1]) {
                    return bad(format!("{key} {list:?}: per-block values are not supported (one value for all blocks, as SD 1.x/2.x)"));
                }
            }
        }
        if self.only_cross_attention != serde_json::Value::Bool(false) && !self.only_cross_attention.is_null() {
            return bad(format!("only_cross_attention {} is not supported", self.only_cross_attention));
        }
        let unsupported = [
            ("center_input_sample", self.center_input_sample),
            ("dual_cross_attention", self.dual_cross_attention),
            ("resnet_skip_time_act", self.resnet_skip_time_act),
            ("class_embed_type", self.class_embed_type.is_some() || self.num_class_embeds.is_some()),
            ("addition_embed_type", self.addition_embed_type.is_some()),
            ("time_cond_proj_dim", self.time_cond_proj_dim.is_some()),
            ("encoder_hid_dim", self.encoder_hid_dim.is_some()),
            ("cross_attention_norm", self.cross_attention_norm.is_some()),
            ("time_embedding_act_fn", self.time_embedding_act_fn.is_some()),
            ("timestep_post_act", self.timestep_post_act.is_some()),
            ("resnet_time_scale_shift", self.resnet_time_scale_shift != "default"),
            ("time_embedding_type", self.time_embedding_type != "positional"),
            ("attention_type", self.attention_type != "default"),
            ("conv_in_kernel", self.conv_in_kernel != 3),
            ("conv_out_kernel", self.conv_out_kernel != 3),
            ("mid_block_scale_factor", self.mid_block_scale_factor != 1.0),
        ];
        if let Some((key, _)) = unsupported.iter().find(|(_, on)| *on) {
            return bad(format!("{key}: this setting is not supported by t2v's UNet2DConditionModel (Stable Diffusion 1.x/2.x configs only)"));
        }
        if self.act_fn != "silu" && self.act_fn != "swish" {
            return bad(format!("act_fn '{}' is not supported (silu only)", self.act_fn));
        }
        for (i, &c) in self.block_out_channels.iter().enumerate() {
            if self.norm_num_groups == 0 || c % self.norm_num_groups != 0 {
                return bad(format!("norm_num_groups {} does not divide {c} channels", self.norm_num_groups));
            }
            let h = self.heads(i);
            if h == 0 || c % h != 0 {
                return bad(format!("{h} attention heads do not divide block {i}'s {c} channels"));
            }
        }
        Ok(())
    }
}
