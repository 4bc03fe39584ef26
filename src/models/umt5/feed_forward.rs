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
    pub wi_0: Linear,
    pub wi_1: Linear,
    pub wo: Linear,
}

impl UMT5DenseGatedActDense {
    pub fn load(w: &Scope, c: &UMT5Config) -> Result<Self> {
        Ok(UMT5DenseGatedActDense {
            wi_0: Linear::load(&w.at("wi_0"), c.d_model, c.d_ff, false)?,
            wi_1: Linear::load(&w.at("wi_1"), c.d_model, c.d_ff, false)?,
            wo: Linear::load(&w.at("wo"), c.d_ff, c.d_model, false)?,
        })
    }

    pub fn check(w: &Scope, c: &UMT5Config) -> Result<()> {
        w.w.check(&w.at("wi_0").key("weight"), &[c.d_ff, c.d_model])?;
        w.w.check(&w.at("wi_1").key("weight"), &[c.d_ff, c.d_model])?;
        w.w.check(&w.at("wo").key("weight"), &[c.d_model, c.d_ff])
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = gelu_tanh_mul(&self.wi_0.forward(x)?, &self.wi_1.forward(x)?)?;
        self.wo.forward(&h)
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
