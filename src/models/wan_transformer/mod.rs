//! `WanTransformer3DModel` (Wan 2.1 / 2.2 text-to-video), diffusers 0.42.1, nested like its
//! state dict: `patch_embedding`, `condition_embedder`, `blocks.N` (`attn1`, `attn2`, `norm2`,
//! `ffn`, `scale_shift_table`), `scale_shift_table`, `proj_out`; `rope` has no weights.
//!
//! Computed in f32 with weights as the placement says (16-bit or f32; bf16 checkpoints are
//! converted on load); `time_embedder` and every `scale_shift_table` stay f32 as diffusers keeps
//! them. The patch embedding (Conv3d, kernel = stride = patch) is a patchify layout + a linear
//! layer; the output's unpatchify has the channel fastest (WAN.md §3.3). The work that is the
//! same for a whole video (the text MLP, the rotary tables) or for one step (time embedding,
//! modulation vectors) is prepared once and shared by both guidance passes:
//! [`prepare_context`](WanTransformer3DModel::prepare_context),
//! [`time_conditioning`](WanTransformer3DModel::time_conditioning),
//! [`forward_prepared`](WanTransformer3DModel::forward_prepared).

mod attention;
mod blocks;
mod condition_embedder;
mod config;
mod rope;

pub use attention::{RmsNorm, WanAttention};
pub use blocks::{WanFeedForward, WanTransformerBlock, FFN_CHUNK_BYTES};
pub use condition_embedder::{ConditionEmbedder, TextProjection, TimestepEmbedding};
pub use config::WanTransformerConfig;
pub use rope::WanRotaryPosEmbed;

use crate::error::{shape_err, Result};
use crate::nn::Linear;
use crate::ops::elementwise::add_bcast;
use crate::ops::layer_norm::layer_norm_modulated;
use crate::ops::layout::{patchify, post_patch_grid, repeat_interleave, unpatchify};
use crate::tensor::{DType, Tensor};
use crate::weights::stream::Unit;
use crate::weights::{Placement, Weights};
use std::sync::Arc;

/// Per-step conditioning, the same for both guidance passes of a step. N = 1 (one timestep for
/// every batch item) or B (one each).
pub struct WanTimeConditioning {
    /// `temb` [N, dim] (time_embedder output).
    pub temb: Tensor,
    /// Per block: its scale_shift_table + timestep_proj, [6, N, dim] (shift, scale, gate,
    /// c_shift, c_scale, c_gate), so chunk k is one contiguous [N, dim] view.
    pub blocks: Vec<Tensor>,
    /// The output norm's scale_shift_table + temb, [2, N, dim] (shift, scale).
    pub norm_out: Tensor,
}

impl WanTimeConditioning {
    /// N: how many timesteps (1 or the batch size).
    pub fn batch(&self) -> usize {
        self.temb.dim(0)
    }
}

pub struct WanTransformer3DModel {
    pub config: WanTransformerConfig,
    pub rope: WanRotaryPosEmbed,
    /// Conv3d as a linear layer on patch rows: weight [dim, C·pt·ph·pw].
    pub patch_embedding: Linear,
    pub condition_embedder: ConditionEmbedder,
    /// `blocks.N`, each resident or streamed from host memory as the memory plan chose.
    pub blocks: Vec<Unit<WanTransformerBlock>>,
    /// Each block's `scale_shift_table` (f32 [6, dim]), always resident: the per-step modulation
    /// is prepared for every block before the step runs, streamed or not.
    tables: Vec<Tensor>,
    /// f32 [2, dim].
    pub scale_shift_table: Tensor,
    pub proj_out: Linear,
}

impl WanTransformer3DModel {
    /// Every block resident.
    pub fn load(config: WanTransformerConfig, w: impl Into<Arc<Weights>>) -> Result<WanTransformer3DModel> {
        WanTransformer3DModel::load_streaming(config, w, &[])
    }

    /// Blocks named in `streamed` (`blocks.N`) stay in host memory and are uploaded each time
    /// they run (their keys were checked when the pipeline opened the folder); the rest is
    /// uploaded now.
    pub fn load_streaming(config: WanTransformerConfig, w: impl Into<Arc<Weights>>, streamed: &[String]) -> Result<WanTransformer3DModel> {
        let w: Arc<Weights> = w.into();
        config.validate(&w.component)?;
        let root = w.at("");
        let c = &config;
        let dim = c.dim();
        let patch = c.patch_size;
        let psz = patch.iter().product::<usize>();
        let pw = root.tensor("patch_embedding.weight", &[dim, c.in_channels, patch[0], patch[1], patch[2]])?;
        let patch_embedding = Linear { weight: pw.reshape(&[dim, c.in_channels * psz])?, bias: Some(root.vector("patch_embedding.bias", dim)?) };
        let condition_embedder = ConditionEmbedder::load(&root.at("condition_embedder"), dim, c.freq_dim, c.text_dim)?;
        let (mut blocks, mut tables) = (Vec::new(), Vec::new());
        for i in 0..c.num_layers {
            let name = format!("blocks.{i}");
            let (ww, cc) = (w.clone(), c.clone());
            let key = name.clone();
            let load = move || {
                ww.streamed(|| WanTransformerBlock::load(&ww.at(&key), dim, cc.ffn_dim, cc.num_attention_heads, cc.cross_attn_norm, cc.eps))
            };
            if streamed.contains(&name) {
                tables.push(w.tensor_as(&format!("{name}.scale_shift_table"), &[1, 6, dim], DType::F32)?.reshape(&[6, dim])?);
                w.defer(&name);
                blocks.push(Unit::streamed(w.gpu(), name, 0, load));
            } else {
                let unit = Unit::resident(w.gpu(), name, load)?;
                tables.push(unit.get().map(|b| b.scale_shift_table.clone()).ok_or_else(|| crate::Error::Other("resident block missing".into()))?);
                blocks.push(unit);
            }
        }
        let table = w.tensor_as("scale_shift_table", &[1, 2, dim], DType::F32)?.reshape(&[2, dim])?;
        let model = WanTransformer3DModel {
            rope: WanRotaryPosEmbed::new(c.attention_head_dim, c.rope_max_seq_len),
            patch_embedding,
            condition_embedder,
            blocks,
            tables,
            scale_shift_table: table,
            proj_out: Linear::load(&root.at("proj_out"), dim, c.out_channels() * psz, true)?,
            config,
        };
        w.finish()?;
        Ok(model)
    }

    /// The block units with their device bytes (streaming units for memory plans).
    pub fn units(&self) -> Vec<(String, u64)> {
        self.blocks.iter().map(|u| (u.name.clone(), u.bytes)).collect()
    }

    /// Opens `dir` (a diffusers `transformer/` folder: config.json + safetensors, single or
    /// sharded).
    pub fn from_dir(gpu: &Arc<crate::Gpu>, dir: &std::path::Path, placement: Placement) -> Result<Self> {
        WanTransformer3DModel::from_dir_streaming(gpu, dir, placement, &[])
    }

    /// [`from_dir`](Self::from_dir) with the blocks named in `streamed` left in host memory.
    pub fn from_dir_streaming(gpu: &Arc<crate::Gpu>, dir: &std::path::Path, placement: Placement, streamed: &[String]) -> Result<Self> {
        let config = WanTransformerConfig::from_file(&dir.join("config.json"))?;
        WanTransformer3DModel::load_streaming(config, Weights::open_dir(gpu, dir, placement)?, streamed)
    }

    fn gpu(&self) -> &Arc<crate::Gpu> {
        self.scale_shift_table.gpu()
    }

    /// The text MLP over every row of the (zero-padded, 512-row) prompt embeddings
    /// [B, L, text_dim] → [B, L, dim]: once per prompt and video.
    pub fn prepare_context(&self, context: &Tensor) -> Result<Tensor> {
        let td = self.config.text_dim;
        if context.shape().len() != 3 || context.dim(2) != td || context.dim(1) == 0 {
            return shape_err("wan transformer", format!("encoder_hidden_states must be (B, L, {td}) with L > 0, got {:?}", context.shape()));
        }
        self.condition_embedder.text(context)
    }

    /// Time embedding and every block's modulation vectors for `timesteps` (one for the whole
    /// batch, or one per batch item): once per denoising step, used by both guidance passes.
    pub fn time_conditioning(&self, timesteps: &[f32]) -> Result<WanTimeConditioning> {
        let n = timesteps.len();
        if n == 0 {
            return shape_err("wan transformer", "no timestep given");
        }
        let t = Tensor::from_f32(self.gpu(), &[n], timesteps)?;
        let (temb, proj) = self.condition_embedder.time(&t)?;
        let blocks = self.tables.iter().map(|t| blocks::modulation(t, &proj)).collect::<Result<Vec<_>>>()?;
        drop(proj);
        // [N, 2, dim]: temb repeated per chunk, the table added; then chunk-major.
        let norm_out = blocks::chunk_major(add_bcast(&repeat_interleave(&temb, 2)?, &self.scale_shift_table, 1)?, 2, self.config.dim())?;
        Ok(WanTimeConditioning { temb, blocks, norm_out })
    }

    /// (F', H', W') of latents (B, C, F, H, W), checked against the model.
    pub fn grid(&self, latents: &Tensor) -> Result<[usize; 3]> {
        let s = latents.shape();
        let c = self.config.in_channels;
        if s.len() != 5 || s[1] != c || latents.dtype() != DType::F32 {
            return shape_err("wan transformer", format!("hidden_states must be f32 (B, {c}, F, H, W), got {s:?} {}", latents.dtype().name()));
        }
        let grid = post_patch_grid("wan transformer", [s[2], s[3], s[4]], self.config.patch_size)?;
        let max = self.config.rope_max_seq_len;
        if grid.iter().any(|&n| n > max) {
            return shape_err("wan transformer", format!("post-patch grid {grid:?} of latents {s:?} exceeds rope_max_seq_len {max} on one axis"));
        }
        Ok(grid)
    }

    /// Patch embedding: latents (B, C, F, H, W) → tokens [B, F'·H'·W', dim].
    pub fn embed_patches(&self, latents: &Tensor) -> Result<Tensor> {
        self.grid(latents)?;
        self.patch_embedding.forward(&patchify(latents, self.config.patch_size)?)
    }

    /// The model's prediction for latents (B, C, F, H, W) at `timestep` given the prompt
    /// embeddings (B, 512, text_dim) → (B, out_channels, F, H, W).
    pub fn forward(&self, latents: &Tensor, timestep: f32, context: &Tensor) -> Result<Tensor> {
        self.forward_timesteps(latents, &[timestep], context)
    }

    /// [`forward`](Self::forward) with one timestep per batch item (or one for all).
    pub fn forward_timesteps(&self, latents: &Tensor, timesteps: &[f32], context: &Tensor) -> Result<Tensor> {
        self.grid(latents)?;
        let ctx = self.prepare_context(context)?;
        let time = self.time_conditioning(timesteps)?;
        self.forward_prepared(latents, &time, &ctx)
    }

    /// [`forward`](Self::forward) with the conditioning prepared by
    /// [`time_conditioning`](Self::time_conditioning) and [`prepare_context`](Self::prepare_context).
    pub fn forward_prepared(&self, latents: &Tensor, time: &WanTimeConditioning, context: &Tensor) -> Result<Tensor> {
        let dim = self.config.dim();
        let grid = self.grid(latents)?;
        let b = latents.dim(0);
        if context.shape().len() != 3 || context.dim(0) != b || context.dim(2) != dim || context.dim(1) == 0 {
            return shape_err("wan transformer", format!("prepared context must be ({b}, L, {dim}), got {:?}", context.shape()));
        }
        if time.blocks.len() != self.blocks.len() || (time.batch() != 1 && time.batch() != b) {
            return shape_err(
                "wan transformer",
                format!("time conditioning for {} blocks × {} timesteps does not fit {} blocks × batch {b}", time.blocks.len(), time.batch(), self.blocks.len()),
            );
        }
        let rope = self.rope.tables(self.gpu(), grid)?;
        let mut x = self.embed_patches(latents)?;
        // A streamed block is fetched while the one before it runs (double-buffered).
        let mut next = match self.blocks.first() {
            Some(u) => Some(u.fetch()?),
            None => None,
        };
        for (i, m) in time.blocks.iter().enumerate() {
            let Some(block) = next.take() else { break };
            next = match self.blocks.get(i + 1) {
                Some(u) => Some(u.fetch()?),
                None => None,
            };
            x = block.forward(x, context, m, &rope)?;
        }
        drop(next);
        let n = layer_norm_modulated(&x, &time.norm_out.narrow0(0, 1)?, &time.norm_out.narrow0(1, 1)?, self.config.eps)?;
        drop(x);
        let y = self.proj_out.forward(&n)?;
        drop(n);
        unpatchify(&y, grid, self.config.patch_size)
    }
}
