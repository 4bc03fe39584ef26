//! `text_encoder/config.json` of a transformers CLIPTextModel.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    /// "quick_gelu" (OpenAI CLIP, SD 1.5) or "gelu" (OpenCLIP ViT-H, ModelScope/Zeroscope).
    pub hidden_act: String,
    pub layer_norm_eps: f32,
}

impl Default for ClipTextConfig {
    fn default() -> Self {
        // transformers' CLIPTextConfig defaults.
        ClipTextConfig {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
        }
    }
}

impl ClipTextConfig {
    pub fn from_file(path: &std::path::Path) -> crate::Result<ClipTextConfig> {
        let c: ClipTextConfig = crate::config::read_json(path)?;
        let bad = |msg: String| Err(crate::Error::Config { path: path.display().to_string(), msg });
        if c.num_attention_heads == 0 || !c.hidden_size.is_multiple_of(c.num_attention_heads) {
            return bad(format!("hidden_size {} does not split into {} heads", c.hidden_size, c.num_attention_heads));
        }
        if c.hidden_act != "gelu" && c.hidden_act != "quick_gelu" {
            return bad(format!("hidden_act '{}' is not supported (gelu or quick_gelu)", c.hidden_act));
        }
        Ok(c)
    }
}
