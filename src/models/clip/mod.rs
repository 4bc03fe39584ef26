//! transformers' `CLIPModel` (OpenAI CLIP: `openai/clip-vit-base-patch32`, `…-large-patch14`)
//! run by t2v's kernels, for scoring videos: `get_image_features` (vision tower →
//! `visual_projection`) and `get_text_features` (the text encoder t2v already has, pooled at
//! the EOS token → `text_projection`), with `CLIPImageProcessor`'s preprocessing
//! ([`preprocess`]). Loaded from a folder (config.json, preprocessor_config.json, tokenizer
//! files, model.safetensors or pytorch_model.bin) or by hub name ([`resolve`]).

mod config;
pub mod preprocess;
mod vision;

pub use config::{ClipConfig, ClipVisionConfig, PreprocessConfig};
pub use vision::{ClipVisionEmbeddings, ClipVisionTransformer};

use crate::error::{Error, Result};
use crate::nn::Linear;
use crate::tensor::Tensor;
use crate::models::text_encoder::ClipTextModel;
use crate::tokenizer::ClipTokenizer;
use crate::weights::{Placement, Weights};
use crate::Gpu;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The scorer FETV's published CLIPScores use (and t2v's default).
pub const DEFAULT_MODEL: &str = "openai/clip-vit-base-patch32";

/// Files of a CLIP repo t2v needs; the weights are the first of [`WEIGHT_FILES`] the repo has.
const REPO_FILES: [&str; 6] =
    ["config.json", "preprocessor_config.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"];
const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// Frames per vision-tower batch: bounds the activations (ViT-L/14: 257 tokens × 4096 MLP
/// channels × 4 B × 16 ≈ 67 MB) while keeping dispatches large.
const FRAMES_PER_BATCH: usize = 16;

pub struct ClipModel {
    pub config: ClipConfig,
    pub preprocess: PreprocessConfig,
    pub tokenizer: ClipTokenizer,
    pub text_model: ClipTextModel,
    pub vision_model: ClipVisionTransformer,
    pub visual_projection: Linear,
    pub text_projection: Linear,
}

impl ClipModel {
    pub fn from_dir(gpu: &Arc<Gpu>, dir: &Path, placement: Placement) -> Result<ClipModel> {
        let config = ClipConfig::from_file(&dir.join("config.json"))?;
        let preprocess = PreprocessConfig::from_file(&dir.join("preprocessor_config.json"), config.vision.image_size)?;
        if preprocess.crop != (config.vision.image_size, config.vision.image_size) {
            return Err(Error::Config {
                path: dir.join("preprocessor_config.json").display().to_string(),
                msg: format!("crop {:?} does not match the vision tower's image_size {}", preprocess.crop, config.vision.image_size),
            });
        }
        let tokenizer = ClipTokenizer::from_dir(dir)?;
        let w = Arc::new(Weights::open_dir(gpu, dir, placement)?);
        let text_model = ClipTextModel::load_at(config.text.clone(), w.clone(), "text_model")?;
        let vision_model = ClipVisionTransformer::load(&w.at("vision_model"), config.vision.clone())?;
        let p = config.projection_dim;
        let visual_projection = Linear::load(&w.at("visual_projection"), config.vision.hidden_size, p, false)?;
        let text_projection = Linear::load(&w.at("text_projection"), config.text.hidden_size, p, false)?;
        // CLIPModel's temperature: not used by features or cosines.
        w.ignore("logit_scale");
        w.finish()?;
        Ok(ClipModel { config, preprocess, tokenizer, text_model, vision_model, visual_projection, text_projection })
    }

    /// Where transformers' `CLIPTextTransformer` pools row `ids`: configs with the old
    /// placeholder `eos_token_id == 2` take `argmax(input_ids)` (the first largest id, which is
    /// CLIP's `<|endoftext|>`), others the first position holding `eos_token_id`.
    pub fn pool_index(&self, ids: &[u32]) -> usize {
        pool_index(ids, self.config.eos_token_id)
    }

    /// `get_text_features` of token rows (each of one length ≤ max_position_embeddings).
    pub fn text_features_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let hidden = self.text_model.forward(ids, 0)?;
        let (l, d) = (hidden.dim(1), hidden.dim(2));
        let all = hidden.to_f32()?;
        let pooled: Vec<f32> = ids.iter().enumerate().flat_map(|(i, row)| all[(i * l + self.pool_index(row)) * d..][..d].to_vec()).collect();
        let gpu = hidden.gpu().clone();
        let projected = self.text_projection.forward(&Tensor::from_f32(&gpu, &[ids.len(), d], &pooled)?)?;
        Ok(rows(&projected.to_f32()?, self.config.projection_dim))
    }

    /// `get_text_features` of a prompt, tokenized by the model's own tokenizer (truncated to
    /// its 77 tokens as `CLIPProcessor(truncation=True)` does).
    pub fn text_features(&self, prompt: &str) -> Result<Vec<f32>> {
        let ids = self.tokenizer.encode(prompt)?.ids;
        Ok(self.text_features_ids(&[ids])?.remove(0))
    }

    /// `get_image_features` of preprocessed `pixel_values` (B, 3, S, S).
    pub fn image_features_pixels(&self, pixels: &[f32], b: usize) -> Result<Vec<Vec<f32>>> {
        let pooled = self.vision_model.forward(pixels, b)?;
        Ok(rows(&self.visual_projection.forward(&pooled)?.to_f32()?, self.config.projection_dim))
    }

    /// `get_image_features` of 8-bit RGB frames (F, H, W, 3), preprocessed on the host.
    pub fn image_features(&self, rgb: &[u8], f: usize, h: usize, w: usize) -> Result<Vec<Vec<f32>>> {
        if rgb.len() != f * h * w * 3 {
            return Err(Error::Other(format!("clip: {} bytes are not {f} frames of {w}×{h} RGB", rgb.len())));
        }
        let mut out = Vec::with_capacity(f);
        for lo in (0..f).step_by(FRAMES_PER_BATCH) {
            let hi = (lo + FRAMES_PER_BATCH).min(f);
            let mut pixels = Vec::new();
            for i in lo..hi {
                pixels.extend(preprocess::preprocess(&self.preprocess, &rgb[i * h * w * 3..(i + 1) * h * w * 3], h, w)?.0);
            }
            out.extend(self.image_features_pixels(&pixels, hi - lo)?);
        }
        Ok(out)
    }
}

pub fn pool_index(ids: &[u32], eos_token_id: u32) -> usize {
    if eos_token_id == 2 {
        // torch.argmax returns the first of equal maxima.
        let max = ids.iter().copied().max().unwrap_or(0);
        ids.iter().position(|&t| t == max).unwrap_or(0)
    } else {
        // (ids == eos).int().argmax(): the first match, or 0 when there is none.
        ids.iter().position(|&t| t == eos_token_id).unwrap_or(0)
    }
}

fn rows(v: &[f32], width: usize) -> Vec<Vec<f32>> {
    v.chunks_exact(width).map(<[f32]>::to_vec).collect()
}

/// The local folder of a CLIP model: an existing folder as is, or a hub repo id
/// (`openai/clip-vit-base-patch32`, `openai/clip-vit-large-patch14`) fetched into the Hugging
/// Face cache like the video models.
/// [`resolve`], and `tiny-random`: a miniature random-weight CLIPModel t2v generates on first
/// use (offline smoke runs; its scores mean nothing).
pub fn resolve_with(model: &str, gpu: &Arc<Gpu>) -> Result<PathBuf> {
    if model == crate::weights::tiny_random::NAME {
        return crate::weights::tiny_random::ensure_clip(gpu);
    }
    resolve(model)
}

pub fn resolve(model: &str) -> Result<PathBuf> {
    let path = Path::new(model);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if !model.contains('/') {
        return Err(Error::Other(format!(
            "CLIP model '{model}' is neither a folder nor a hub repo id like {DEFAULT_MODEL}"
        )));
    }
    crate::weights::hub::fetch_files(model, &REPO_FILES, &WEIGHT_FILES)
}
