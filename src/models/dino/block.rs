//! `blocks.N` of DINO's ViT: x + attn(norm1(x)), then x + mlp(norm2(x)); `attn.qkv` one
//! Linear(D, 3D) whose output rows are q, k, v in that order (each split into heads), scale
//! head_dim^-½; `mlp.fc1` → exact erf GELU (nn.GELU) → `mlp.fc2`.

use super::DinoConfig;
use crate::error::Result;
use crate::nn::{LayerNorm, Linear};
use crate::ops::attention::attention;
use crate::ops::elementwise::{add_inplace, gelu};
use crate::tensor::Tensor;
use crate::weights::Scope;

pub struct Block {
    pub norm1: LayerNorm,
    /// `attn.qkv` split on the host into its q, k and v rows (three linears, one attention).
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub proj: Linear,
    pub norm2: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Block {
    pub fn load(w: &Scope, c: &DinoConfig) -> Result<Block> {
        let (d, hidden, eps) = (c.embed_dim, c.mlp_hidden(), c.layer_norm_eps);
        let a = w.at("attn");
        let weight = w.w.host_f32(&a.key("qkv.weight"), &[3 * d, d])?;
        let bias = w.w.host_f32(&a.key("qkv.bias"), &[3 * d])?;
        let gpu = w.w.gpu();
        let part = |i: usize| -> Result<Linear> {
            Ok(Linear {
                weight: Tensor::from_f32(gpu, &[d, d], &weight[i * d * d..(i + 1) * d * d])?,
                bias: Some(Tensor::from_f32(gpu, &[d], &bias[i * d..(i + 1) * d])?),
            })
        };
        Ok(Block {
            norm1: LayerNorm::load(&w.at("norm1"), d, eps)?,
            q: part(0)?,
            k: part(1)?,
            v: part(2)?,
            proj: Linear::load(&a.at("proj"), d, d, true)?,
            norm2: LayerNorm::load(&w.at("norm2"), d, eps)?,
            fc1: Linear::load(&w.at("mlp.fc1"), d, hidden, true)?,
            fc2: Linear::load(&w.at("mlp.fc2"), hidden, d, true)?,
        })
    }

    /// x (B, tokens, D), consumed.
    pub fn forward(&self, x: Tensor, heads: usize) -> Result<Tensor> {
        let h = self.norm1.forward(&x)?;
        let (q, k, v) = (self.q.forward(&h)?, self.k.forward(&h)?, self.v.forward(&h)?);
        drop(h);
        let a = self.proj.forward(&attention(&q, &k, &v, heads, false)?)?;
        add_inplace(&a, &x)?;
        drop(x);
        let m = self.fc2.forward(&gelu(&self.fc1.forward(&self.norm2.forward(&a)?)?)?)?;
        add_inplace(&m, &a)?;
        Ok(m)
    }
}
