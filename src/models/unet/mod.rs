//! `UNet3DConditionModel` (ModelScope / Zeroscope), nested like its state dict:
//! `conv_in`, `time_embedding`, `transformer_in`, `down_blocks.i`, `mid_block`, `up_blocks.i`,
//! `conv_norm_out`, `conv_out`. Frames are folded into the batch as b·F+f throughout.

mod config;
mod down_blocks;
mod layer;
mod mid_block;
mod temporal_conv;
mod transformer_2d;
mod transformer_temporal;
mod up_blocks;

pub use config::{PerBlock, UNet3DConfig};
pub use down_blocks::DownBlock3D;
pub use layer::{Dims, Layer3D};
pub use mid_block::UNetMidBlock3DCrossAttn;
pub use temporal_conv::TemporalConvLayer;
pub use transformer_2d::Transformer2DModel;
pub use transformer_temporal::TransformerTemporalModel;
pub use up_blocks::UpBlock3D;

use crate::error::{shape_err, Result};
use crate::nn::{Conv2d, GroupNorm, Linear};
use crate::ops::elementwise::silu;
use crate::ops::embedding::TimestepEmbedding as Timesteps;
use crate::ops::layout::{channels_first_to_frames, frames_to_channels_first, repeat_interleave};
use crate::tensor::Tensor;
use crate::weights::stream::{Held, Unit};
use crate::weights::Weights;
use std::sync::Arc;

/// diffusers' `TimestepEmbedding`: linear_1 → SiLU → linear_2.
pub struct TimestepEmbedding {
    pub linear_1: Linear,
    pub linear_2: Linear,
}

impl TimestepEmbedding {
    pub fn forward(&self, t: &Tensor) -> Result<Tensor> {
        self.linear_2.forward(&silu(&self.linear_1.forward(t)?)?)
    }
}

/// A block fetched for one forward (see [`Unit::fetch`]).
enum Fetched<'a> {
    Down(Held<'a, DownBlock3D>),
    Mid(Held<'a, UNetMidBlock3DCrossAttn>),
    Up(Held<'a, UpBlock3D>),
}

pub struct UNet3DConditionModel {
    pub config: UNet3DConfig,
    pub conv_in: Conv2d,
    pub time_proj: Timesteps,
    pub time_embedding: TimestepEmbedding,
    pub transformer_in: TransformerTemporalModel,
    /// The blocks, each resident or streamed from host memory as the memory plan chose
    /// ([`set_streamed`](Self::set_streamed)).
    pub down_blocks: Vec<Unit<DownBlock3D>>,
    pub mid_block: Unit<UNetMidBlock3DCrossAttn>,
    pub up_blocks: Vec<Unit<UpBlock3D>>,
    pub conv_norm_out: GroupNorm,
    pub conv_out: Conv2d,
}

impl UNet3DConditionModel {
    /// Every block resident (a plan may stream some later: [`set_streamed`](Self::set_streamed)).
    pub fn load(config: UNet3DConfig, w: impl Into<Arc<Weights>>) -> Result<UNet3DConditionModel> {
        let w: Arc<Weights> = w.into();
        let root = w.at("");
        let c = &config;
        let ch = c.block_out_channels.clone();
        let n = ch.len();
        let temb = ch[0] * 4;
        let dims = {
            let c = c.clone();
            move |head_dim| Dims { temb, groups: c.norm_num_groups, eps: c.norm_eps, head_dim, cross_dim: c.cross_attention_dim }
        };
        let gpu = w.gpu().clone();
        let mut down_blocks = Vec::new();
        for i in 0..n {
            let cin = if i == 0 { ch[0] } else { ch[i - 1] };
            let cross = c.down_block_types[i] == "CrossAttnDownBlock3D";
            let d = dims(c.attention_head_dim.get(i));
            let (ww, cout, layers, pad, name) = (w.clone(), ch[i], c.layers_per_block, c.downsample_padding, format!("down_blocks.{i}"));
            let key = name.clone();
            down_blocks.push(Unit::resident(&gpu, name, move || ww.streamed(|| DownBlock3D::load(&ww.at(&key), cin, cout, layers, d, cross, i + 1 < n, pad)))?);
        }
        let mut up_blocks = Vec::new();
        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let mut prev = rev[0];
        for i in 0..n {
            let out = rev[i];
            let input = rev[(i + 1).min(n - 1)];
            let layers = c.layers_per_block + 1;
            let skips: Vec<usize> = (0..layers).map(|j| if j == layers - 1 { input } else { out }).collect();
            let cross = c.up_block_types[i] == "CrossAttnUpBlock3D";
            let d = dims(c.attention_head_dim.get(n - 1 - i));
            let (ww, name) = (w.clone(), format!("up_blocks.{i}"));
            let key = name.clone();
            up_blocks.push(Unit::resident(&gpu, name, move || ww.streamed(|| UpBlock3D::load(&ww.at(&key), prev, out, &skips, d, cross, i + 1 < n)))?);
            prev = out;
        }
        let mid_block = {
            let (ww, cmid, d) = (w.clone(), ch[n - 1], dims(c.attention_head_dim.get(n - 1)));
            Unit::resident(&gpu, "mid_block", move || ww.streamed(|| UNetMidBlock3DCrossAttn::load(&ww.at("mid_block"), cmid, d)))?
        };
        let head0 = c.attention_head_dim.get(0);
        let model = UNet3DConditionModel {
            conv_in: Conv2d::load(&root.at("conv_in"), c.in_channels, ch[0], 3, 1, 1)?,
            time_proj: Timesteps::new(w.gpu(), ch[0], true, 0.0)?,
            time_embedding: TimestepEmbedding {
                linear_1: Linear::load(&root.at("time_embedding.linear_1"), ch[0], temb, true)?,
                linear_2: Linear::load(&root.at("time_embedding.linear_2"), temb, temb, true)?,
            },
            transformer_in: TransformerTemporalModel::load(&root.at("transformer_in"), ch[0], 8, head0, c.norm_num_groups)?,
            down_blocks,
            mid_block,
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
        let config = UNet3DConfig::from_file(&dir.join("config.json"))?;
        UNet3DConditionModel::load(config, Weights::open_dir(gpu, dir, placement)?)
    }

    /// The blocks as streaming units in forward order, with their device bytes.
    pub fn units(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.down_blocks.iter().map(|u| (u.name.clone(), u.bytes)).collect();
        v.push((self.mid_block.name.clone(), self.mid_block.bytes));
        v.extend(self.up_blocks.iter().map(|u| (u.name.clone(), u.bytes)));
        v
    }

    /// Streams the blocks named in `streamed` (their device copies are released now) and keeps
    /// the others resident (uploading any that streamed before).
    pub fn set_streamed(&mut self, streamed: &[String]) -> Result<()> {
        let keep = |name: &str| !streamed.iter().any(|s| s == name);
        for u in &mut self.down_blocks {
            u.set_resident(keep(&u.name))?;
        }
        self.mid_block.set_resident(keep(&self.mid_block.name))?;
        for u in &mut self.up_blocks {
            u.set_resident(keep(&u.name))?;
        }
        Ok(())
    }

    /// Block `k` in forward order (down blocks, the mid block, up blocks), fetched for one use.
    fn fetch(&self, k: usize) -> Result<Option<Fetched<'_>>> {
        let nd = self.down_blocks.len();
        Ok(Some(match k {
            k if k < nd => Fetched::Down(self.down_blocks[k].fetch()?),
            k if k == nd => Fetched::Mid(self.mid_block.fetch()?),
            k => match self.up_blocks.get(k - nd - 1) {
                Some(u) => Fetched::Up(u.fetch()?),
                None => return Ok(None),
            },
        }))
    }

    /// Time embedding (B, 4·C0) for timesteps [B].
    pub fn time_embed(&self, timesteps: &[f32]) -> Result<Tensor> {
        let gpu = self.conv_in.weight.gpu();
        let t = Tensor::from_f32(gpu, &[timesteps.len()], timesteps)?;
        self.time_embedding.forward(&self.time_proj.forward(&t)?)
    }

    /// Conditioning that stays the same for every denoising step, prepared once: the text
    /// context repeated per frame, (B·F, L, cross_dim), as diffusers' `repeat_interleave`.
    pub fn frame_context(&self, context: &Tensor, frames: usize) -> Result<Tensor> {
        if context.shape().len() != 3 || context.dim(2) != self.config.cross_attention_dim {
            return shape_err(
                "unet",
                format!("encoder_hidden_states must be (B, L, {}), got {:?}", self.config.cross_attention_dim, context.shape()),
            );
        }
        repeat_interleave(context, frames)
    }

    /// Time embeddings repeated per frame, (B·F, 4·C0), for one timestep shared by the batch.
    pub fn frame_time_embedding(&self, t: f32, batch: usize, frames: usize) -> Result<Tensor> {
        repeat_interleave(&self.time_embed(&vec![t; batch])?, frames)
    }

    /// Predicted noise for `sample` (B, C, F, h, w) at `timesteps` (one per batch item, or one
    /// for all) given `context` (B, 77, cross_dim); returns (B, C, F, h, w).
    pub fn forward(&self, sample: &Tensor, timesteps: &[f32], context: &Tensor) -> Result<Tensor> {
        let (b, frames) = self.check_sample(sample)?;
        if context.shape().len() != 3 || context.dim(0) != b {
            return shape_err("unet", format!("encoder_hidden_states must have batch {b}, got {:?}", context.shape()));
        }
        let ts: Vec<f32> = match timesteps.len() {
            1 => vec![timesteps[0]; b],
            n if n == b => timesteps.to_vec(),
            n => return shape_err("unet", format!("{n} timesteps for a batch of {b}")),
        };
        let temb = repeat_interleave(&self.time_embed(&ts)?, frames)?;
        self.forward_prepared(sample, &temb, &self.frame_context(context, frames)?)
    }

    fn check_sample(&self, sample: &Tensor) -> Result<(usize, usize)> {
        let s = sample.shape();
        if s.len() != 5 || s[1] != self.config.in_channels {
            return shape_err("unet", format!("sample must be (B, {}, F, h, w), got {s:?}", self.config.in_channels));
        }
        Ok((s[0], s[2]))
    }

    /// [`forward`](Self::forward) with per-frame conditioning already prepared
    /// ([`frame_time_embedding`](Self::frame_time_embedding), [`frame_context`](Self::frame_context)):
    /// the denoising loop prepares it before the loop, so a step uploads and repeats nothing.
    pub fn forward_prepared(&self, sample: &Tensor, temb: &Tensor, ctx: &Tensor) -> Result<Tensor> {
        let (b, frames) = self.check_sample(sample)?;
        let (h, w) = (sample.dim(3), sample.dim(4));
        if temb.dim(0) != b * frames || ctx.dim(0) != b * frames {
            return shape_err(
                "unet",
                format!("conditioning for {} rows ({:?}, {:?}) does not match {b}×{frames} frames", b * frames, temb.shape(), ctx.shape()),
            );
        }
        let x = channels_first_to_frames(sample)?;

        let up_factor = 1usize << (self.down_blocks.len() - 1);
        let forward_size = h % up_factor != 0 || w % up_factor != 0;
        let mut x = self.transformer_in.forward(&self.conv_in.forward(&x)?, frames)?;
        let mut skips = vec![x.clone()];
        // A streamed block is fetched while the one before it runs (double-buffered).
        let mut next = self.fetch(0)?;
        let mut k = 0;
        while let Some(block) = next.take() {
            k += 1;
            next = self.fetch(k)?;
            match block {
                Fetched::Down(b) => {
                    let (y, s) = b.forward(&x, temb, ctx, frames)?;
                    x = y;
                    skips.extend(s);
                }
                Fetched::Mid(b) => x = b.forward(&x, temb, ctx, frames)?,
                Fetched::Up(b) => {
                    let n = b.layers.len();
                    let size = if forward_size && skips.len() > n {
                        let s = &skips[skips.len() - n - 1];
                        Some((s.dim(2), s.dim(3)))
                    } else {
                        None
                    };
                    x = b.forward(x, &mut skips, temb, ctx, frames, size)?;
                }
            }
        }
        x = self.conv_out.forward(&self.conv_norm_out.forward(&x, true)?)?;
        frames_to_channels_first(&x, frames)
    }
}
