//! `encoder.block.N.layer.1`: UMT5LayerFF (pre-norm, residual) around `DenseReluDense`, the
//! gated-gelu UMT5DenseGatedActDense: wo(gelu_new(wi_0(x)) ⊙ wi_1(x)).

use super::layer_norm::UMT5LayerNorm;
use super::UMT5Config;
use crate::error::Result;
use crate::nn::Linear;
use crate::ops::elementwise::{add_inplace, gelu_tanh_mul};
use crate::tensor::Tensor;
use crate::weights::Scope;

pub struct UMT5DenseGatedActDense {
    /// (wi_0 rows, wi_1 rows, wo columns) over consecutive blocks of d_ff: one block when each
    /// matrix fits a storage binding (umT5-XXL's [10240, 4096] in f16 is 84 MB), several when
    /// it does not (in f32 it is 168 MB, over lavapipe's 128 MiB): `gelu(x·wi_0ᵀ)·(x·wi_1ᵀ)`
    /// is per hidden unit, so each block's hidden units meet only their own columns of wo and
    /// the partial products add up to the whole.
    pub blocks: Vec<(Linear, Linear, Linear)>,
}

impl UMT5DenseGatedActDense {
    pub fn load(w: &Scope, c: &UMT5Config) -> Result<Self> {
        let widths = Self::block_widths(w, c);
        if widths.len() == 1 {
            return Ok(UMT5DenseGatedActDense {
                blocks: vec![(
                    Linear::load(&w.at("wi_0"), c.d_model, c.d_ff, false)?,
                    Linear::load(&w.at("wi_1"), c.d_model, c.d_ff, false)?,
                    Linear::load(&w.at("wo"), c.d_ff, c.d_model, false)?,
                )],
            });
        }
        // wi rows are contiguous: one upload, bound a row block at a time. wo columns are not:
        // each block is its own tensor.
        let wi_0 = w.at("wi_0").tensor("weight", &[c.d_ff, c.d_model])?;
        let wi_1 = w.at("wi_1").tensor("weight", &[c.d_ff, c.d_model])?;
        let wo = w.w.column_blocks(&w.at("wo").key("weight"), [c.d_model, c.d_ff], &widths)?;
        let mut blocks = Vec::with_capacity(widths.len());
        let mut at = 0;
        for (&n, wo) in widths.iter().zip(wo) {
            let rows = |t: &crate::tensor::Tensor| -> Result<Linear> { Ok(Linear { weight: t.narrow0(at, n)?, bias: None }) };
            blocks.push((rows(&wi_0)?, rows(&wi_1)?, Linear { weight: wo, bias: None }));
            at += n;
        }
        Ok(UMT5DenseGatedActDense { blocks })
    }

    /// Widths of the d_ff blocks: as few as keep each wi row block and wo column block within
    /// one storage binding (with slack for alignment).
    fn block_widths(w: &Scope, c: &UMT5Config) -> Vec<usize> {
        let es = w.w.placement.matrices.size() as usize;
        let limit = (w.w.gpu().max_binding() as usize).saturating_sub(4096).max(1);
        let per_unit = c.d_model * es;
        let max_units = (limit / per_unit.max(1)).max(1);
        let count = c.d_ff.div_ceil(max_units).max(1);
        let base = c.d_ff / count;
        (0..count).map(|i| base + usize::from(i < c.d_ff % count)).collect()
    }

    pub fn check(w: &Scope, c: &UMT5Config) -> Result<()> {
        w.w.check(&w.at("wi_0").key("weight"), &[c.d_ff, c.d_model])?;
        w.w.check(&w.at("wi_1").key("weight"), &[c.d_ff, c.d_model])?;
        w.w.check(&w.at("wo").key("weight"), &[c.d_model, c.d_ff])
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut acc: Option<Tensor> = None;
        for (wi_0, wi_1, wo) in &self.blocks {
            let h = gelu_tanh_mul(&wi_0.forward(x)?, &wi_1.forward(x)?)?;
            let part = wo.forward(&h)?;
            acc = Some(match acc {
                None => part,
                Some(a) => {
                    add_inplace(&a, &part)?;
                    a
                }
            });
        }
        acc.ok_or_else(|| crate::Error::Other("umt5: a feed-forward with no blocks".into()))
    }
}

/// `layer.1`: h + DenseReluDense(layer_norm(h)).
pub struct UMT5LayerFF {
    pub layer_norm: UMT5LayerNorm,
    pub dense_relu_dense: UMT5DenseGatedActDense,
}

impl UMT5LayerFF {
    pub fn load(w: &Scope, c: &UMT5Config) -> Result<Self> {
        Ok(UMT5LayerFF {
            layer_norm: UMT5LayerNorm::load(&w.at("layer_norm"), c.d_model, c.layer_norm_epsilon)?,
            dense_relu_dense: UMT5DenseGatedActDense::load(&w.at("DenseReluDense"), c)?,
        })
    }

    pub fn check(w: &Scope, c: &UMT5Config) -> Result<()> {
        UMT5LayerNorm::check(&w.at("layer_norm"), c.d_model)?;
        UMT5DenseGatedActDense::check(&w.at("DenseReluDense"), c)
    }

    pub fn forward(&self, h: &Tensor) -> Result<Tensor> {
        let f = self.dense_relu_dense.forward(&self.layer_norm.forward(h)?)?;
        add_inplace(&f, h)?;
        Ok(f)
    }
}
