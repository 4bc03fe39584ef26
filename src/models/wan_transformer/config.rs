//! `transformer/config.json` of a WanTransformer3DModel, with diffusers 0.42.1's constructor
//! defaults. Image conditioning (I2V: `image_dim`, `added_kv_proj_dim`, `pos_embed_seq_len`) is
//! refused by name: t2v runs text-to-video only.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WanTransformerConfig {
    pub patch_size: [usize; 3],
    pub num_attention_heads: usize,
    pub attention_head_dim: usize,
    pub in_channels: usize,
    /// diffusers: `out_channels or in_channels`.
    pub out_channels: Option<usize>,
    pub text_dim: usize,
    pub freq_dim: usize,
    pub ffn_dim: usize,
    pub num_layers: usize,
    pub cross_attn_norm: bool,
    /// Accepted and ignored, as diffusers does: every attention has RMSNorm q/k over the whole
    /// inner dim.
    pub qk_norm: Option<String>,
    pub eps: f32,
    pub image_dim: Option<usize>,
    pub added_kv_proj_dim: Option<usize>,
    pub rope_max_seq_len: usize,
    pub pos_embed_seq_len: Option<usize>,
}

impl Default for WanTransformerConfig {
    fn default() -> Self {
        WanTransformerConfig {
            patch_size: [1, 2, 2],
            num_attention_heads: 40,
            attention_head_dim: 128,
            in_channels: 16,
            out_channels: Some(16),
            text_dim: 4096,
            freq_dim: 256,
            ffn_dim: 13824,
            num_layers: 40,
            cross_attn_norm: true,
            qk_norm: Some("rms_norm_across_heads".into()),
            eps: 1e-6,
            image_dim: None,
            added_kv_proj_dim: None,
            rope_max_seq_len: 1024,
            pos_embed_seq_len: None,
        }
    }
}

impl WanTransformerConfig {
    pub fn from_file(path: &std::path::Path) -> crate::Result<WanTransformerConfig> {
        let cfg: WanTransformerConfig = crate::config::read_json(path)?;
        cfg.validate(&path.display().to_string())?;
        Ok(cfg)
    }

    /// Heads × head width: the model's width (`inner_dim`).
    pub fn dim(&self) -> usize {
        self.num_attention_heads * self.attention_head_dim
    }

    pub fn out_channels(&self) -> usize {
        match self.out_channels {
            Some(c) if c > 0 => c,
            _ => self.in_channels,
        }
    }

    /// Checks what t2v can run; `source` names the file in errors.
    pub fn validate(&self, source: &str) -> crate::Result<()> {
        let bad = |msg: String| Err(crate::Error::Config { path: source.to_string(), msg });
        for (key, v) in [("image_dim", self.image_dim), ("added_kv_proj_dim", self.added_kv_proj_dim), ("pos_embed_seq_len", self.pos_embed_seq_len)] {
            if let Some(v) = v {
                return bad(format!(
                    "{key} is {v}: image conditioning (Wan I2V) is not supported; t2v runs text-to-video transformers, whose config has {key}: null"
                ));
            }
        }
        let d = self.attention_head_dim;
        if d == 0 || !d.is_multiple_of(2) {
            return bad(format!("attention_head_dim {d} must be even and non-zero (rotary embedding rotates channel pairs)"));
        }
        for (key, v) in [
            ("num_attention_heads", self.num_attention_heads),
            ("in_channels", self.in_channels),
            ("text_dim", self.text_dim),
            ("freq_dim", self.freq_dim),
            ("ffn_dim", self.ffn_dim),
            ("rope_max_seq_len", self.rope_max_seq_len),
        ] {
            if v == 0 {
                return bad(format!("{key} must be at least 1"));
            }
        }
        if self.patch_size.contains(&0) {
            return bad(format!("patch_size {:?} must be positive", self.patch_size));
        }
        if !self.eps.is_finite() || self.eps < 0.0 {
            return bad(format!("eps {} must be a non-negative number", self.eps));
        }
        Ok(())
    }
}
