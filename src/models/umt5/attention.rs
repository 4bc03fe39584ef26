//! `encoder.block.N.layer.0`: UMT5LayerSelfAttention (pre-norm, residual) around UMT5Attention
//! (`SelfAttention`: q, k, v, o without biases, its own relative_attention_bias, no 1/√d).

use super::layer_norm::UMT5LayerNorm;
use super::UMT5Config;
use crate::error::Result;
use crate::nn::Linear;
use crate::ops::attention_bias::{attention_rel_bias, Buckets, RelBias};
use crate::ops::elementwise::add_inplace;
use crate::tensor::{DType, Tensor};
use crate::weights::Scope;

pub struct UMT5Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    /// relative_attention_bias.weight [num_buckets, num_heads], f32.
    pub relative_attention_bias: Tensor,
    pub heads: usize,
    pub buckets: Buckets,
}

fn buckets(c: &UMT5Config) -> Buckets {
    Buckets { num_buckets: c.relative_attention_num_buckets, max_distance: c.relative_attention_max_distance, bidirectional: true }
}

impl UMT5Attention {
    pub fn load(w: &Scope, c: &UMT5Config) -> Result<UMT5Attention> {
        let (d, i) = (c.d_model, c.inner_dim());
        let bias_key = w.at("relative_attention_bias").key("weight");
        Ok(UMT5Attention {
            q: Linear::load(&w.at("q"), d, i, false)?,
            k: Linear::load(&w.at("k"), d, i, false)?,
            v: Linear::load(&w.at("v"), d, i, false)?,
            o: Linear::load(&w.at("o"), i, d, false)?,
            // A [32, 64] table read by the kernel per score: f32 whatever the placement.
            relative_attention_bias: w.w.tensor_as(&bias_key, &[c.relative_attention_num_buckets, c.num_heads], DType::F32)?,
            heads: c.num_heads,
            buckets: buckets(c),
        })
    }

    pub fn check(w: &Scope, c: &UMT5Config) -> Result<()> {
        let (d, i) = (c.d_model, c.inner_dim());
        for (name, shape) in [("q", [i, d]), ("k", [i, d]), ("v", [i, d]), ("o", [d, i]), ("relative_attention_bias", [c.relative_attention_num_buckets, c.num_heads])] {
            w.w.check(&w.at(name).key("weight"), &shape)?;
        }
        Ok(())
    }

    /// x [B, L, d_model]; `key_lens` the real (unpadded) tokens of each row.
    pub fn forward(&self, x: &Tensor, key_lens: &[usize]) -> Result<Tensor> {
        let (q, k, v) = (self.q.forward(x)?, self.k.forward(x)?, self.v.forward(x)?);
        let a = attention_rel_bias(&q, &k, &v, self.heads, RelBias { table: &self.relative_attention_bias, buckets: self.buckets }, Some(key_lens), 1.0)?;
        self.o.forward(&a)
    }
}

/// `layer.0`: h + SelfAttention(layer_norm(h)).
pub struct UMT5LayerSelfAttention {
    pub layer_norm: UMT5LayerNorm,
    pub self_attention: UMT5Attention,
}

impl UMT5LayerSelfAttention {
    pub fn load(w: &Scope, c: &UMT5Config) -> Result<Self> {
        Ok(UMT5LayerSelfAttention {
            layer_norm: UMT5LayerNorm::load(&w.at("layer_norm"), c.d_model, c.layer_norm_epsilon)?,
            self_attention: UMT5Attention::load(&w.at("SelfAttention"), c)?,
        })
    }

    pub fn check(w: &Scope, c: &UMT5Config) -> Result<()> {
        UMT5LayerNorm::check(&w.at("layer_norm"), c.d_model)?;
        UMT5Attention::check(&w.at("SelfAttention"), c)
    }

    pub fn forward(&self, h: &Tensor, key_lens: &[usize]) -> Result<Tensor> {
        let a = self.self_attention.forward(&self.layer_norm.forward(h)?, key_lens)?;
        add_inplace(&a, h)?;
        Ok(a)
    }
}
