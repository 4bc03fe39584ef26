//! transformers' `CLIPTextModel`: token + position embeddings → pre-norm transformer layers
//! with causal self-attention → final LayerNorm. The pipeline uses the last hidden state
//! (or an earlier layer's, with `clip_skip`) as the UNet's `encoder_hidden_states`.

mod config;

pub use config::ClipTextConfig;

use crate::error::{shape_err, Result};
use crate::nn::{LayerNorm, Linear};
use crate::ops::attention::attention;
use crate::ops::elementwise::{add_inplace, gelu, quick_gelu};
use crate::tensor::Tensor;
use crate::weights::{Placement, Scope, Weights};
use std::sync::Arc;

pub struct ClipEncoderLayer {
    pub layer_norm1: LayerNorm,
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    pub layer_norm2: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
}

impl ClipEncoderLayer {
    fn load(w: &Scope, c: &ClipTextConfig) -> Result<Self> {
        Self::load_dims(w, c.hidden_size, c.intermediate_size, c.layer_norm_eps)
    }

    /// A layer of width `d` and MLP width `i` (the vision tower's layers are the same module).
    pub fn load_dims(w: &Scope, d: usize, i: usize, eps: f32) -> Result<Self> {
        let a = w.at("self_attn");
        Ok(ClipEncoderLayer {
            layer_norm1: LayerNorm::load(&w.at("layer_norm1"), d, eps)?,
            q_proj: Linear::load(&a.at("q_proj"), d, d, true)?,
            k_proj: Linear::load(&a.at("k_proj"), d, d, true)?,
            v_proj: Linear::load(&a.at("v_proj"), d, d, true)?,
            out_proj: Linear::load(&a.at("out_proj"), d, d, true)?,
            layer_norm2: LayerNorm::load(&w.at("layer_norm2"), d, eps)?,
            fc1: Linear::load(&w.at("mlp.fc1"), d, i, true)?,
            fc2: Linear::load(&w.at("mlp.fc2"), i, d, true)?,
        })
    }

    pub fn forward(&self, x: &Tensor, heads: usize, quick: bool) -> Result<Tensor> {
        self.forward_masked(x, heads, quick, true)
    }

    /// [`forward`](Self::forward) with the attention causal (text) or not (CLIP's vision tower).
    pub fn forward_masked(&self, x: &Tensor, heads: usize, quick: bool, causal: bool) -> Result<Tensor> {
        let h = self.layer_norm1.forward(x)?;
        let (q, k, v) = (self.q_proj.forward(&h)?, self.k_proj.forward(&h)?, self.v_proj.forward(&h)?);
        let a = self.out_proj.forward(&attention(&q, &k, &v, heads, causal)?)?;
        add_inplace(&a, x)?;
        let h = self.fc1.forward(&self.layer_norm2.forward(&a)?)?;
        let h = if quick { quick_gelu(&h)? } else { gelu(&h)? };
        let m = self.fc2.forward(&h)?;
        add_inplace(&m, &a)?;
        Ok(m)
    }
}

pub struct ClipTextModel {
    pub config: ClipTextConfig,
    /// Token embeddings stay in the (memory-mapped) checkpoint: a prompt needs 77 rows of a
    /// 49,408-row table, gathered on the host instead of holding the table on the device.
    /// The encoder layers stay there too and are uploaded one at a time while a prompt is
    /// encoded (see [`layer`](Self::layer)).
    weights: Arc<Weights>,
    root: String,
    token_embedding_key: String,
    pub position_embedding: Vec<f32>,
    pub final_layer_norm: LayerNorm,
}

impl ClipTextModel {
    pub fn load(config: ClipTextConfig, w: Arc<Weights>) -> Result<ClipTextModel> {
        // transformers < 5 saved keys under "text_model."; 5.x saves them bare.
        let root = if w.at("text_model").has("final_layer_norm.weight") { "text_model" } else { "" };
        let m = Self::load_at(config, w.clone(), root)?;
        w.finish()?;
        Ok(m)
    }

    /// The text model under key prefix `root` of `w`, leaving other keys to the caller (a
    /// `CLIPModel` checkpoint also holds the vision tower); the caller checks `w.finish()`.
    pub fn load_at(config: ClipTextConfig, w: Arc<Weights>, root: &str) -> Result<ClipTextModel> {
        let root = w.at(root);
        let c = &config;
        let emb = root.at("embeddings");
        w.ignore(&emb.key("position_ids"));
        let token_embedding_key = emb.key("token_embedding.weight");
        w.check(&token_embedding_key, &[c.vocab_size, c.hidden_size])?;
        let position_embedding = w.host_f32(&emb.key("position_embedding.weight"), &[c.max_position_embeddings, c.hidden_size])?;
        // Every layer is read once now, so a missing key or a wrong shape is a load error;
        // its buffers go back to the device (the pool keeps nothing: `trim`).
        for i in 0..c.num_hidden_layers {
            ClipEncoderLayer::load(&root.at(format!("encoder.layers.{i}")), c)?;
        }
        w.gpu().trim();
        let final_layer_norm = LayerNorm::load(&root.at("final_layer_norm"), c.hidden_size, c.layer_norm_eps)?;
        let root = root.prefix.clone();
        Ok(ClipTextModel { config, weights: w.clone(), root, token_embedding_key, position_embedding, final_layer_norm })
    }

    /// Encoder layer `i`, uploaded now. The text encoder runs once per video while its weights
    /// are a fifth of the pipeline's (0.63 GiB in f16 for ModelScope's OpenCLIP-H): streaming
    /// them layer by layer keeps that off the device during denoising, where the peak is.
    pub fn layer(&self, i: usize) -> Result<ClipEncoderLayer> {
        let scope = crate::weights::Scope { w: &self.weights, prefix: self.root.clone() };
        ClipEncoderLayer::load(&scope.at(format!("encoder.layers.{i}")), &self.config)
    }

    pub fn from_dir(gpu: &Arc<crate::Gpu>, dir: &std::path::Path, placement: Placement) -> Result<ClipTextModel> {
        let config = ClipTextConfig::from_file(&dir.join("config.json"))?;
        ClipTextModel::load(config, Arc::new(Weights::open_dir(gpu, dir, placement)?))
    }

    /// Token + position embeddings for each row of `ids` → (B, L, D) on the device.
    pub fn embed(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        let (v, d) = (self.config.vocab_size, self.config.hidden_size);
        let l = ids.first().map_or(0, |r| r.len());
        if l == 0 || l > self.config.max_position_embeddings || ids.iter().any(|r| r.len() != l) {
            return shape_err("clip", format!("token rows must share one length in 1..={}", self.config.max_position_embeddings));
        }
        let flat: Vec<usize> = ids.iter().flatten().map(|&t| t as usize).collect();
        if let Some(bad) = flat.iter().find(|&&t| t >= v) {
            return shape_err("clip", format!("token id {bad} is outside the vocabulary of {v}"));
        }
        let rows = self.weights.rows_f32(&self.token_embedding_key, &[v, d], &flat)?;
        let mut x = rows;
        for (i, val) in x.iter_mut().enumerate() {
            *val += self.position_embedding[(i / d) % l * d + i % d];
        }
        Tensor::from_f32(self.weights.gpu(), &[ids.len(), l, d], &x)
    }

    /// The encoder's output for `ids`: the last hidden state after the final LayerNorm, or with
    /// `clip_skip` = k the output of layer N−k through the final LayerNorm (diffusers' clip_skip).
    pub fn forward(&self, ids: &[Vec<u32>], clip_skip: usize) -> Result<Tensor> {
        let heads = self.config.num_attention_heads;
        let quick = self.config.hidden_act == "quick_gelu";
        let n = self.config.num_hidden_layers.saturating_sub(clip_skip);
        let mut x = self.embed(ids)?;
        for i in 0..n {
            x = self.layer(i)?.forward(&x, heads, quick)?;
        }
        self.final_layer_norm.forward(&x)
    }
}
