//! A transformers `CLIPModel` folder's `config.json` (nested `text_config` / `vision_config`,
//! transformers' defaults for missing keys) and `preprocessor_config.json`
//! (`CLIPImageProcessor`'s settings).

use crate::error::{Error, Result};
use crate::models::text_encoder::ClipTextConfig;
use serde::Deserialize;
use std::path::Path;

/// transformers' `CLIPVisionConfig` (defaults: ViT-B/32).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: String,
    pub layer_norm_eps: f32,
}

impl Default for ClipVisionConfig {
    fn default() -> Self {
        ClipVisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
        }
    }
}

impl ClipVisionConfig {
    /// Patches per side (the patch embedding is a conv with kernel = stride = patch_size).
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
    /// Tokens: the class token and one per patch.
    pub fn tokens(&self) -> usize {
        self.grid() * self.grid() + 1
    }
}

#[derive(Debug, Clone)]
pub struct ClipConfig {
    pub text: ClipTextConfig,
    /// The text tower pools at this token (transformers: `eos_token_id == 2`, the placeholder of
    /// configs written before transformers PR #24773, means "at the largest token id").
    pub eos_token_id: u32,
    pub vision: ClipVisionConfig,
    pub projection_dim: usize,
}

impl ClipConfig {
    pub fn from_file(path: &Path) -> Result<ClipConfig> {
        let v: serde_json::Value = crate::config::read_json(path)?;
        let bad = |msg: String| Error::Config { path: path.display().to_string(), msg };
        // Configs written by early transformers may hold `text_config_dict` instead.
        let part = |key: &str| {
            [key.to_string(), format!("{key}_dict")]
                .iter()
                .find_map(|k| v.get(k).filter(|x| x.is_object()).cloned())
                .unwrap_or(serde_json::Value::Object(Default::default()))
        };
        let text: ClipTextConfig = serde_json::from_value(part("text_config")).map_err(|e| bad(format!("text_config: {e}")))?;
        let vision: ClipVisionConfig = serde_json::from_value(part("vision_config")).map_err(|e| bad(format!("vision_config: {e}")))?;
        // transformers' CLIPTextConfig default (49407, `<|endoftext|>`).
        let eos_token_id = part("text_config").get("eos_token_id").and_then(|e| e.as_u64()).unwrap_or(49407) as u32;
        let projection_dim = v.get("projection_dim").and_then(|p| p.as_u64()).unwrap_or(512) as usize;
        for (name, act) in [("text_config", &text.hidden_act), ("vision_config", &vision.hidden_act)] {
            if act != "gelu" && act != "quick_gelu" {
                return Err(bad(format!("{name}.hidden_act '{act}' is not supported (gelu or quick_gelu)")));
            }
        }
        if text.num_attention_heads == 0 || !text.hidden_size.is_multiple_of(text.num_attention_heads) {
            return Err(bad(format!("text_config: hidden_size {} does not split into {} heads", text.hidden_size, text.num_attention_heads)));
        }
        if vision.num_attention_heads == 0 || !vision.hidden_size.is_multiple_of(vision.num_attention_heads) {
            return Err(bad(format!(
                "vision_config: hidden_size {} does not split into {} heads",
                vision.hidden_size, vision.num_attention_heads
            )));
        }
        if vision.patch_size == 0 || vision.image_size < vision.patch_size || !vision.image_size.is_multiple_of(vision.patch_size) {
            return Err(bad(format!("vision_config: image_size {} is not a multiple of patch_size {}", vision.image_size, vision.patch_size)));
        }
        Ok(ClipConfig { text, eos_token_id, vision, projection_dim })
    }
}

/// `CLIPImageProcessor` settings: resize the shortest edge to `shortest_edge` (PIL bicubic),
/// centre-crop `crop` (height, width), rescale by `rescale_factor`, normalise by mean/std.
#[derive(Debug, Clone)]
pub struct PreprocessConfig {
    pub do_resize: bool,
    pub shortest_edge: usize,
    pub do_center_crop: bool,
    pub crop: (usize, usize),
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl PreprocessConfig {
    /// transformers' CLIPImageProcessor defaults (OpenAI's mean/std, 224). The constants are
    /// transformers' decimals as written; both sides round them to the same f32.
    #[allow(clippy::excessive_precision)]
    pub fn clip_default(size: usize) -> PreprocessConfig {
        PreprocessConfig {
            do_resize: true,
            shortest_edge: size,
            do_center_crop: true,
            crop: (size, size),
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            mean: [0.48145466, 0.4578275, 0.40821073],
            std: [0.26862954, 0.26130258, 0.27577711],
        }
    }

    /// Reads `preprocessor_config.json`; keys it lacks keep the defaults for `image_size`.
    pub fn from_file(path: &Path, image_size: usize) -> Result<PreprocessConfig> {
        let mut c = PreprocessConfig::clip_default(image_size);
        if !path.is_file() {
            return Ok(c);
        }
        let v: serde_json::Value = crate::config::read_json(path)?;
        let bad = |msg: String| Error::Config { path: path.display().to_string(), msg };
        let flag = |k: &str, d: bool| v.get(k).and_then(|x| x.as_bool()).unwrap_or(d);
        c.do_resize = flag("do_resize", true);
        c.do_center_crop = flag("do_center_crop", true);
        c.do_rescale = flag("do_rescale", true);
        c.do_normalize = flag("do_normalize", true);
        // `size`: an int (older files) or {"shortest_edge": n}.
        match v.get("size") {
            None => {}
            Some(s) => {
                c.shortest_edge = s
                    .as_u64()
                    .or_else(|| s.get("shortest_edge").and_then(|x| x.as_u64()))
                    .ok_or_else(|| bad(format!("size {s} is not a shortest edge (t2v supports CLIP's shortest-edge resize)")))?
                    as usize;
            }
        }
        match v.get("crop_size") {
            None => {}
            Some(s) => {
                c.crop = match (s.as_u64(), s.get("height").and_then(|x| x.as_u64()), s.get("width").and_then(|x| x.as_u64())) {
                    (Some(n), _, _) => (n as usize, n as usize),
                    (None, Some(h), Some(w)) => (h as usize, w as usize),
                    _ => return Err(bad(format!("crop_size {s} is neither a number nor {{height, width}}"))),
                };
            }
        }
        if let Some(r) = v.get("resample") {
            // PILImageResampling.BICUBIC; the others are not implemented.
            if r.as_u64() != Some(3) {
                return Err(bad(format!("resample {r} is not supported (t2v implements PIL's bicubic, 3)")));
            }
        }
        if let Some(f) = v.get("rescale_factor").and_then(|x| x.as_f64()) {
            c.rescale_factor = f;
        }
        let triple = |k: &str, d: [f32; 3]| -> Result<[f32; 3]> {
            match v.get(k) {
                None => Ok(d),
                Some(x) => {
                    let a: Vec<f32> = serde_json::from_value(x.clone()).map_err(|e| bad(format!("{k}: {e}")))?;
                    <[f32; 3]>::try_from(a.as_slice()).map_err(|_| bad(format!("{k} must have 3 values")))
                }
            }
        };
        c.mean = triple("image_mean", c.mean)?;
        c.std = triple("image_std", c.std)?;
        if c.shortest_edge == 0 || c.crop.0 == 0 || c.crop.1 == 0 {
            return Err(bad("size and crop_size must be positive".into()));
        }
        Ok(c)
    }
}
