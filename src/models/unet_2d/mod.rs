//! `UNet2DConditionModel` (Stable Diffusion 1.x / 2.x), nested like its state dict: `conv_in`,
//! `time_embedding`, `down_blocks.i` (`resnets.j`, `attentions.j`, `downsamplers.0`),
//! `mid_block`, `up_blocks.i`, `conv_norm_out`, `conv_out`. Images (or Text2Video-Zero's
//! frames) are the batch, (N, C, h, w); the building blocks are the 3-D UNet's (`crate::nn`).

mod config;
mod down_blocks;
mod mid_block;
mod transformer_2d;
mod up_blocks;

pub use config::UNet2DConfig;
pub use down_blocks::DownBlock2D;
pub use mid_block::UNetMidBlock2DCrossAttn;
pub use transformer_2d::Transformer2DModel;
pub use up_blocks::UpBlock2D;

use crate::error::{shape_err, Result};
use crate::nn::{Conv2d, GroupNorm, Linear};
use crate::ops::embedding::TimestepEmbedding as Timesteps;
use crate::ops::layout::repeat_interleave;
use crate::tensor::Tensor;
use crate::models::unet::TimestepEmbedding;
use crate::weights::{Scope, Weights};

/// Shapes a block needs to build its layers.
#[derive(Clone, Copy)]
pub struct Dims {
    pub temb: usize,
    pub groups: usize,
    pub eps: f32,
    pub heads: usize,
    pub cross_dim: usize,
    pub transformer_layers: usize,
    pub linear_projection: bool,
}

impl Dims {
    fn transformer(&self, w: &Scope, channels: usize) -> Result<Transformer2DModel> {
        Transformer2DModel::load(w, channels, self.heads, self.cross_dim, self.groups, self.transformer_layers, self.linear_projection)
    }
}

pub struct UNet2DConditionModel {
    pub config: UNet2DConfig,
    pub conv_in: Conv2d,
    pub time_proj: Timesteps,
    pub time_embedding: TimestepEmbedding,
    pub down_blocks: Vec<DownBlock2D>,
    pub mid_block: UNetMidBlock2DCrossAttn,
    pub up_blocks: Vec<UpBlock2D>,
    pub conv_norm_out: GroupNorm,
    pub conv_out: Conv2d,
}

impl UNet2DConditionModel {
    pub fn load(config: UNet2DConfig, w: &Weights) -> Result<UNet2DConditionModel> {
        let root = w.at("");
        let c = &config;
        let ch = &c.block_out_channels;
        let n = ch.len();
        let temb = ch[0] * 4;
        let dims = |i: usize| Dims {
            temb,
            groups: c.norm_num_groups,
            eps: c.norm_eps,
            heads: c.heads(i),
            cross_dim: c.cross_dim(),
            transformer_layers: c.transformer_layers_per_block.get(i),
            linear_projection: c.use_linear_projection,
        };
        let layers = c.layers();
        let mut down_blocks = Vec::new();
        for i in 0..n {
            let cin = if i == 0 { ch[0] } else { ch[i - 1] };
            let cross = c.down_block_types[i] == "CrossAttnDownBlock2D";
            let b = DownBlock2D::load(&root.at(format!("down_blocks.{i}")), cin, ch[i], layers, dims(i), cross, i + 1 < n, c.downsample_padding)?;
            down_blocks.push(b);
        }
        // Up block i works at level n−1−i, with that level's heads (diffusers reverses the lists).
        let mut up_blocks = Vec::new();
        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let mut prev = rev[0];
        for i in 0..n {
            let out = rev[i];
            let input = rev[(i + 1).min(n - 1)];
            let skips: Vec<usize> = (0..=layers).map(|j| if j == layers { input } else { out }).collect();
            let cross = c.up_block_types[i] == "CrossAttnUpBlock2D";
            up_blocks.push(UpBlock2D::load(&root.at(format!("up_blocks.{i}")), prev, out, &skips, dims(n - 1 - i), cross, i + 1 < n)?);
            prev = out;
        }
        let model = UNet2DConditionModel {
            conv_in: Conv2d::load(&root.at("conv_in"), c.in_channels, ch[0], 3, 1, 1)?,
            time_proj: Timesteps::new(w.gpu(), ch[0], c.flip_sin_to_cos, c.freq_shift)?,
            time_embedding: TimestepEmbedding {
                linear_1: Linear::load(&root.at("time_embedding.linear_1"), ch[0], temb, true)?,
                linear_2: Linear::load(&root.at("time_embedding.linear_2"), temb, temb, true)?,
            },
            down_blocks,
            mid_block: UNetMidBlock2DCrossAttn::load(&root.at("mid_block"), ch[n - 1], dims(n - 1))?,
            up_blocks,
            conv_norm_out: GroupNorm::load(&root.at("conv_norm_out"), c.norm_num_groups, ch[0], c.norm_eps)?,
            conv_out: Conv2d::load(&root.at("conv_out"), ch[0], c.out_channels, 3, 1, 1)?,
            config,
        };
        w.finish()?;
        Ok(model)
    }

    /// Opens `dir` (a diffusers `unet/` folder: config.json + safetensors).
    pub fn from_dir(gpu: &std::sync::Arc<crate::Gpu>, dir: &std::path::Path, placement: crate::weights::Placement) -> Result<Self> {
        let config = UNet2DConfig::from_file(&dir.join("config.json"))?;
        let w = Weights::open_dir(gpu, dir, placement)?;
        UNet2DConditionModel::load(config, &w)
    }

    /// Time embedding (B, 4·C0) for timesteps [B].
    pub fn time_embed(&self, timesteps: &[f32]) -> Result<Tensor> {
        let gpu = self.conv_in.weight.gpu();
        let t = Tensor::from_f32(gpu, &[timesteps.len()], timesteps)?;
        self.time_embedding.forward(&self.time_proj.forward(&t)?)
    }

    /// Predicted noise for `sample` (N, C, h, w) at `timesteps` (one per row, or one for all)
    /// given `context` (N, L, cross_dim); `cross_frame` as in [`forward_prepared`](Self::forward_prepared).
    pub fn forward(&self, sample: &Tensor, timesteps: &[f32], context: &Tensor, cross_frame: Option<usize>) -> Result<Tensor> {
        let b = self.check_sample(sample)?;
        let ts: Vec<f32> = match timesteps.len() {
            1 => vec![timesteps[0]; b],
            n if n == b => timesteps.to_vec(),
            n => return shape_err("unet", format!("{n} timesteps for a batch of {b}")),
        };
        self.forward_prepared(sample, &self.time_embed(&ts)?, context, cross_frame)
    }

    /// One time embedding row per sample row, for one timestep shared by `rows` rows.
    pub fn rows_time_embedding(&self, t: f32, rows: usize) -> Result<Tensor> {
        repeat_interleave(&self.time_embed(&[t])?, rows)
    }

    fn check_sample(&self, sample: &Tensor) -> Result<usize> {
        let s = sample.shape();
        if s.len() != 4 || s[1] != self.config.in_channels {
            return shape_err("unet", format!("sample must be (N, {}, h, w), got {s:?}", self.config.in_channels));
        }
        Ok(s[0])
    }

    /// [`forward`](Self::forward) with the time embedding already made, (N, 4·C0). With
    /// `cross_frame` = Some(L) every self-attention of the UNet takes its keys and values from
    /// the first row of each group of L rows (Text2Video-Zero); cross-attention is unchanged.
    pub fn forward_prepared(&self, sample: &Tensor, temb: &Tensor, context: &Tensor, cross_frame: Option<usize>) -> Result<Tensor> {
        let b = self.check_sample(sample)?;
        let (h, w) = (sample.dim(2), sample.dim(3));
        if temb.dim(0) != b || context.shape().len() != 3 || context.dim(0) != b || context.dim(2) != self.config.cross_dim() {
            return shape_err(
                "unet",
                format!(
                    "conditioning ({:?}, {:?}) does not match {b} rows of (L, {}) context",
                    temb.shape(),
                    context.shape(),
                    self.config.cross_dim()
                ),
            );
        }
        let up_factor = 1usize << (self.down_blocks.len() - 1);
        let forward_size = !h.is_multiple_of(up_factor) || !w.is_multiple_of(up_factor);
        let mut x = self.conv_in.forward(sample)?;
        let mut skips = vec![x.clone()];
        for block in &self.down_blocks {
            let (y, s) = block.forward(&x, temb, context, cross_frame)?;
            x = y;
            skips.extend(s);
        }
        x = self.mid_block.forward(&x, temb, context, cross_frame)?;
        for block in &self.up_blocks {
            let n = block.resnets.len();
            let size = if forward_size && skips.len() > n {
                let s = &skips[skips.len() - n - 1];
                Some((s.dim(2), s.dim(3)))
            } else {
                None
            };
            x = block.forward(x, &mut skips, temb, context, cross_frame, size)?;
        }
        x = self.conv_norm_out.forward(&x, true)?;
        self.conv_out.forward(&x)
    }
}
