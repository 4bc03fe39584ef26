//! `condition_embedder`: diffusers' WanTimeTextImageEmbedding without the image branch.
//! Timestep → cos-first sinusoid (freq_dim) → `time_embedder` (linear_1, SiLU, linear_2) = temb
//! → `time_proj(SiLU(temb))` (6·dim: the blocks' modulation); text [B, 512, text_dim] →
//! `text_embedder` (linear_1, GELU-tanh, linear_2) over every row, padding included.

use crate::error::Result;
use crate::nn::Linear;
use crate::ops::elementwise::{gelu_tanh, silu};
use crate::ops::embedding::TimestepEmbedding as Timesteps;
use crate::tensor::{DType, Tensor};
use crate::weights::Scope;

/// A Linear whose weight stays f32 whatever the placement: diffusers keeps `time_embedder` in
/// fp32 (`_keep_in_fp32_modules`), and it is small (dim × (freq_dim + dim)).
fn linear_f32(w: &Scope, inp: usize, out: usize) -> Result<Linear> {
    Ok(Linear { weight: w.w.tensor_as(&w.key("weight"), &[out, inp], DType::F32)?, bias: Some(w.vector("bias", out)?) })
}

/// `time_embedder`: diffusers' TimestepEmbedding (linear_1 → SiLU → linear_2).
pub struct TimestepEmbedding {
    pub linear_1: Linear,
    pub linear_2: Linear,
}

/// `text_embedder`: diffusers' PixArtAlphaTextProjection with act_fn "gelu_tanh".
pub struct TextProjection {
    pub linear_1: Linear,
    pub linear_2: Linear,
}

impl TextProjection {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.linear_2.forward(&gelu_tanh(&self.linear_1.forward(x)?)?)
    }
}

pub struct ConditionEmbedder {
    pub timesteps_proj: Timesteps,
    pub time_embedder: TimestepEmbedding,
    pub time_proj: Linear,
    pub text_embedder: TextProjection,
}

impl ConditionEmbedder {
    pub fn load(w: &Scope, dim: usize, freq_dim: usize, text_dim: usize) -> Result<ConditionEmbedder> {
        Ok(ConditionEmbedder {
            timesteps_proj: Timesteps::new(w.w.gpu(), freq_dim, true, 0.0)?,
            time_embedder: TimestepEmbedding {
                linear_1: linear_f32(&w.at("time_embedder.linear_1"), freq_dim, dim)?,
                linear_2: linear_f32(&w.at("time_embedder.linear_2"), dim, dim)?,
            },
            time_proj: Linear::load(&w.at("time_proj"), dim, 6 * dim, true)?,
            text_embedder: TextProjection {
                linear_1: Linear::load(&w.at("text_embedder.linear_1"), text_dim, dim, true)?,
                linear_2: Linear::load(&w.at("text_embedder.linear_2"), dim, dim, true)?,
            },
        })
    }

    /// (temb [B, dim], timestep_proj [B, 6·dim]) for timesteps f32 [B].
    pub fn time(&self, timesteps: &Tensor) -> Result<(Tensor, Tensor)> {
        let e = self.timesteps_proj.forward(timesteps)?;
        let h = silu(&self.time_embedder.linear_1.forward(&e)?)?;
        drop(e);
        let temb = self.time_embedder.linear_2.forward(&h)?;
        let proj = self.time_proj.forward(&silu(&temb)?)?;
        Ok((temb, proj))
    }

    /// The text MLP over every row of `context` [B, L, text_dim] → [B, L, dim].
    pub fn text(&self, context: &Tensor) -> Result<Tensor> {
        self.text_embedder.forward(context)
    }
}
