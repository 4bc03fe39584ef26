//! transformers' `UMT5EncoderModel`, Wan's text encoder: token embeddings (no scaling, no
//! positions) → blocks of [RMS-norm self-attention with a per-block relative-position bias and
//! no 1/√d, RMS-norm gated-gelu feed-forward] → final RMS norm. Computed in f32 throughout (T5
//! activations overflow f16).
//!
//! Memory: nothing of the checkpoint stays on the device. The embedding table (1.05 B
//! parameters in umT5-XXL) is read on the host, only the prompt's rows; each block is uploaded
//! when it runs and released after (its buffers return to the pool and are reused by the next
//! block, which has the same shapes), so the device holds one block (193 M parameters in XXL:
//! 772 MB f32, 386 MB f16) plus activations. See [`UMT5EncoderModel::block_bytes`].
//!
//! Keys, as transformers saves them: `shared.weight` (or the tied `encoder.embed_tokens.weight`),
//! `encoder.block.{N}.layer.0.{layer_norm, SelfAttention.{q,k,v,o,relative_attention_bias}}`,
//! `encoder.block.{N}.layer.1.{layer_norm, DenseReluDense.{wi_0,wi_1,wo}}`,
//! `encoder.final_layer_norm.weight`.

mod attention;
mod config;
mod feed_forward;
mod layer_norm;

pub use attention::{UMT5Attention, UMT5LayerSelfAttention};
pub use config::UMT5Config;
pub use feed_forward::{UMT5DenseGatedActDense, UMT5LayerFF};
pub use layer_norm::UMT5LayerNorm;

use crate::error::{shape_err, Result};
use crate::ops::elementwise::fill_bits;
use crate::tensor::{DType, Tensor};
use crate::tokenizer::T5Encoded;
use crate::weights::{Placement, Scope, Weights};
use std::sync::Arc;

/// `encoder.block.N`: `layer.0` self-attention, then `layer.1` feed-forward.
pub struct UMT5Block {
    pub layer_0: UMT5LayerSelfAttention,
    pub layer_1: UMT5LayerFF,
}

impl UMT5Block {
    pub fn load(w: &Scope, c: &UMT5Config) -> Result<UMT5Block> {
        Ok(UMT5Block { layer_0: UMT5LayerSelfAttention::load(&w.at("layer.0"), c)?, layer_1: UMT5LayerFF::load(&w.at("layer.1"), c)? })
    }

    /// Every key of the block present with its shape, nothing uploaded.
    pub fn check(w: &Scope, c: &UMT5Config) -> Result<()> {
        UMT5LayerSelfAttention::check(&w.at("layer.0"), c)?;
        UMT5LayerFF::check(&w.at("layer.1"), c)
    }

    /// h [B, L, d_model] → the block's output; `key_lens` = real tokens per row.
    pub fn forward(&self, h: &Tensor, key_lens: &[usize]) -> Result<Tensor> {
        self.layer_1.forward(&self.layer_0.forward(h, key_lens)?)
    }
}

pub struct UMT5EncoderModel {
    pub config: UMT5Config,
    weights: Arc<Weights>,
    embedding_key: String,
    pub final_layer_norm: UMT5LayerNorm,
}

impl UMT5EncoderModel {
    /// A `text_encoder/` folder: config.json and model.safetensors (or shards with their
    /// `model.safetensors.index.json`). Matrices go to the device in `placement.matrices` when a
    /// block runs; activations are always f32.
    pub fn from_dir(gpu: &Arc<crate::Gpu>, dir: &std::path::Path, placement: Placement) -> Result<UMT5EncoderModel> {
        let config = UMT5Config::from_file(&dir.join("config.json"))?;
        UMT5EncoderModel::load(config, Arc::new(Weights::open_dir(gpu, dir, placement)?))
    }

    /// Checks every key and shape (reading no tensor data but the final norm's) and that the
    /// files hold nothing else.
    pub fn load(config: UMT5Config, w: Arc<Weights>) -> Result<UMT5EncoderModel> {
        config.validate().map_err(|msg| crate::Error::Config { path: format!("{} config", w.component), msg })?;
        let c = &config;
        let emb_shape = [c.vocab_size, c.d_model];
        // transformers 5 saves only `shared.weight`; older exports and hand conversions carry the
        // tied copy `encoder.embed_tokens.weight` as well, or instead.
        let (shared, tied) = ("shared.weight", "encoder.embed_tokens.weight");
        let stored = |k: &str| w.entries().any(|(name, _)| name == k);
        let embedding_key = if stored(tied) && !stored(shared) { tied } else { shared };
        w.check(embedding_key, &emb_shape)?;
        if embedding_key == shared && stored(tied) {
            // Both saved: the tied copy must fit too, and is not read.
            w.check(tied, &emb_shape)?;
        }
        let root = w.at("encoder");
        for i in 0..c.num_layers {
            UMT5Block::check(&root.at(format!("block.{i}")), c)?;
        }
        let final_layer_norm = UMT5LayerNorm::load(&root.at("final_layer_norm"), c.d_model, c.layer_norm_epsilon)?;
        w.finish()?;
        Ok(UMT5EncoderModel { config, weights: w, embedding_key: embedding_key.to_string(), final_layer_norm })
    }

    /// Encoder block `i`, uploaded now (released when dropped).
    pub fn block(&self, i: usize) -> Result<UMT5Block> {
        if i >= self.config.num_layers {
            return shape_err("umt5", format!("block {i} of {}", self.config.num_layers));
        }
        UMT5Block::load(&self.weights.at("encoder").at(format!("block.{i}")), &self.config)
    }

    /// Device bytes of one uploaded block (matrices in the placement dtype, norms and the bias
    /// table f32): what prompt encoding adds to the device for weights.
    pub fn block_bytes(&self) -> u64 {
        let c = &self.config;
        let (d, i, f) = (c.d_model as u64, c.inner_dim() as u64, c.d_ff as u64);
        let matrices = 4 * d * i + 3 * d * f;
        matrices * self.weights.placement.matrices.size() + 4 * (2 * d + (c.relative_attention_num_buckets * c.num_heads) as u64)
    }

    /// Token embeddings of each row of `ids` → [B, L, d_model] on the device, the rows gathered
    /// on the host from the (memory-mapped) table.
    pub fn embed(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        let (v, d) = (self.config.vocab_size, self.config.d_model);
        let l = ids.first().map_or(0, |r| r.len());
        if l == 0 || ids.iter().any(|r| r.len() != l) {
            return shape_err("umt5", "token rows must be non-empty and share one length");
        }
        let flat: Vec<usize> = ids.iter().flatten().map(|&t| t as usize).collect();
        if let Some(bad) = flat.iter().find(|&&t| t >= v) {
            return shape_err("umt5", format!("token id {bad} is outside the vocabulary of {v} (config.json vocab_size)"));
        }
        let rows = self.weights.rows_f32(&self.embedding_key, &[v, d], &flat)?;
        Tensor::from_f32(self.weights.gpu(), &[ids.len(), l, d], &rows)
    }

    /// transformers' `last_hidden_state` for `ids` (all rows one length) whose first
    /// `key_lens[b]` tokens are real (the attention mask); padded positions are computed too.
    pub fn forward(&self, ids: &[Vec<u32>], key_lens: &[usize]) -> Result<Tensor> {
        self.forward_inspect(ids, key_lens, &mut |_, _| Ok(()))
    }

    /// [`forward`](Self::forward), handing each block's output (`encoder.block.N`, before the
    /// final norm) to `each` as it is made (tests compare them with transformers' hooks).
    pub fn forward_inspect(&self, ids: &[Vec<u32>], key_lens: &[usize], each: &mut dyn FnMut(usize, &Tensor) -> Result<()>) -> Result<Tensor> {
        check_lens(ids, key_lens)?;
        let mut h = self.embed(ids)?;
        for i in 0..self.config.num_layers {
            h = self.block(i)?.forward(&h, key_lens)?;
            each(i, &h)?;
        }
        self.final_layer_norm.forward(&h)
    }

    /// What `WanPipeline._get_t5_prompt_embeds` returns for tokenized prompts (one length):
    /// `last_hidden_state` with every row past each prompt's real tokens (`</s>` included) set
    /// to exact zeros — [B, max_length, d_model], f32.
    pub fn encode(&self, prompts: &[T5Encoded]) -> Result<Tensor> {
        let ids: Vec<Vec<u32>> = prompts.iter().map(|p| p.ids.clone()).collect();
        let lens: Vec<usize> = prompts.iter().map(|p| p.seq_len).collect();
        self.encode_ids(&ids, &lens)
    }

    /// [`encode`](Self::encode) from token rows and their real lengths (memory plans pass
    /// placeholder ids and full lengths: `vec![vec![0; 512]; batch]`, `vec![512; batch]`).
    ///
    /// Every position is run, as diffusers does (padded keys are masked, padded outputs are
    /// zero-filled after): the work and the allocations are then the same for every prompt, so
    /// a memory plan made before the prompt is known is what the run does. Running only the
    /// real tokens would give the same rows for about a tenth of the encoder's cost (a few ms
    /// on a GPU next to minutes of denoising), but allocations that depend on the prompt.
    pub fn encode_ids(&self, ids: &[Vec<u32>], lens: &[usize]) -> Result<Tensor> {
        check_lens(ids, lens)?;
        let (b, l, d) = (ids.len(), ids[0].len(), self.config.d_model);
        let out = self.forward(ids, lens)?;
        let rows = out.reshape(&[b * l, d])?;
        for (i, &n) in lens.iter().enumerate() {
            if n < l {
                fill_bits(&rows.narrow0(i * l + n, l - n)?, 0)?;
            }
        }
        Ok(out)
    }

    /// Bytes of f32 activations live at once while `batch` rows of `len` tokens are encoded:
    /// in attention the input, its norm, q, k, v, the attention output and o; in the FF the
    /// input, its norm, wi_0, wi_1, their product and wo. An estimate for plans that do not run
    /// the model on a planning device (which measures it exactly).
    pub fn activation_bytes(&self, batch: usize, len: usize) -> u64 {
        let c = &self.config;
        let (d, i, f) = (c.d_model as u64, c.inner_dim() as u64, c.d_ff as u64);
        4 * (batch * len) as u64 * (3 * d + 4 * i).max(3 * d + 3 * f)
    }

    pub fn dtype(&self) -> DType {
        DType::F32
    }
}

/// Token rows of one length with a real-token count in 1..=length each.
fn check_lens(ids: &[Vec<u32>], lens: &[usize]) -> Result<()> {
    let l = ids.first().map_or(0, |r| r.len());
    if l == 0 || ids.iter().any(|r| r.len() != l) {
        return shape_err("umt5", "token rows must be non-empty and share one length");
    }
    if lens.len() != ids.len() {
        return shape_err("umt5", format!("{} attention-mask lengths for {} token rows", lens.len(), ids.len()));
    }
    if let Some(bad) = lens.iter().find(|&&n| n == 0 || n > l) {
        return shape_err("umt5", format!("attention mask covers {bad} tokens; need 1..={l}"));
    }
    Ok(())
}
