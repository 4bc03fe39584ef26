//! `text_encoder/config.json` of a transformers UMT5EncoderModel (Wan's umT5-XXL).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UMT5Config {
    pub vocab_size: usize,
    pub d_model: usize,
    /// Width of one attention head (inner width = num_heads · d_kv, need not equal d_model).
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub relative_attention_num_buckets: usize,
    pub relative_attention_max_distance: usize,
    pub layer_norm_epsilon: f32,
    /// "gated-gelu" (→ gelu_new, the tanh approximation) is what UMT5 and Wan use.
    pub feed_forward_proj: String,
    pub pad_token_id: Option<u32>,
    pub is_decoder: bool,
}

impl Default for UMT5Config {
    fn default() -> Self {
        // transformers' UMT5Config defaults (configuration_umt5.py).
        UMT5Config {
            vocab_size: 250112,
            d_model: 512,
            d_kv: 64,
            d_ff: 1024,
            num_layers: 8,
            num_heads: 6,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            layer_norm_epsilon: 1e-6,
            feed_forward_proj: "gated-gelu".into(),
            pad_token_id: Some(0),
            is_decoder: false,
        }
    }
}

impl UMT5Config {
    pub fn from_file(path: &std::path::Path) -> crate::Result<UMT5Config> {
        let c: UMT5Config = crate::config::read_json(path)?;
        c.validate().map_err(|msg| crate::Error::Config { path: path.display().to_string(), msg })?;
        Ok(c)
    }

    /// The checks `from_file` makes, for configs built in code.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, v) in [("vocab_size", self.vocab_size), ("d_model", self.d_model), ("d_kv", self.d_kv), ("d_ff", self.d_ff), ("num_heads", self.num_heads)] {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if !matches!(self.feed_forward_proj.as_str(), "gated-gelu" | "gated-gelu_new") {
            return Err(format!(
                "feed_forward_proj '{}' is not supported: t2v runs UMT5's 'gated-gelu' (gelu_new on wi_0, times wi_1)",
                self.feed_forward_proj
            ));
        }
        if self.is_decoder {
            return Err("is_decoder is true: t2v runs the UMT5 encoder only".into());
        }
        // The bidirectional encoder halves the buckets, and half of those are exact offsets:
        // below 4 buckets there is no logarithmic range (transformers would divide by zero).
        let max_exact = self.relative_attention_num_buckets / 4;
        if max_exact == 0 || self.relative_attention_max_distance <= max_exact {
            return Err(format!(
                "relative_attention_num_buckets {} / relative_attention_max_distance {}: need at least 4 buckets and a max distance above {}",
                self.relative_attention_num_buckets,
                self.relative_attention_max_distance,
                max_exact
            ));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon >= 0.0) {
            return Err(format!("layer_norm_epsilon {} is not a small non-negative number", self.layer_norm_epsilon));
        }
        Ok(())
    }

    pub fn inner_dim(&self) -> usize {
        self.num_heads * self.d_kv
    }

    /// Parameters of one encoder block (q, k, v, o, wi_0, wi_1, wo, two norms, the bias table).
    pub fn block_params(&self) -> usize {
        let (d, i, f) = (self.d_model, self.inner_dim(), self.d_ff);
        4 * d * i + 3 * d * f + 2 * d + self.relative_attention_num_buckets * self.num_heads
    }
}
