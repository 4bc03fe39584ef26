//! transformers' `CLIPVisionTransformer`: patch embedding (a conv with kernel = stride =
//! patch size, no bias), class token, position embeddings, `pre_layrnorm` (sic, transformers'
//! spelling), pre-LN encoder layers with non-causal attention, `post_layernorm` of the class
//! token.

use super::config::ClipVisionConfig;
use crate::error::{shape_err, Result};
use crate::nn::{LayerNorm, Linear};
use crate::ops::elementwise::add_bcast;
use crate::tensor::Tensor;
use crate::models::text_encoder::ClipEncoderLayer;
use crate::weights::Scope;

pub struct ClipVisionEmbeddings {
    /// `patch_embedding.weight` [D, C, p, p] viewed as [D, C·p·p]: a conv whose kernel equals
    /// its stride is a matmul over non-overlapping patches (the host lays the patches out).
    pub patch_embedding: Linear,
    /// `class_embedding` + `position_embedding` as one (tokens, D) table added to every image:
    /// row 0 is class + position 0 (the class token's patch row is zeros), row i the position.
    pub table: Tensor,
}

pub struct ClipVisionTransformer {
    pub config: ClipVisionConfig,
    pub embeddings: ClipVisionEmbeddings,
    pub pre_layrnorm: LayerNorm,
    pub layers: Vec<ClipEncoderLayer>,
    pub post_layernorm: LayerNorm,
}

impl ClipVisionTransformer {
    pub fn load(w: &Scope, config: ClipVisionConfig) -> Result<ClipVisionTransformer> {
        let c = &config;
        let (d, p, ch) = (c.hidden_size, c.patch_size, c.num_channels);
        let emb = w.at("embeddings");
        w.w.ignore(&emb.key("position_ids"));
        let weight = emb.tensor("patch_embedding.weight", &[d, ch, p, p])?.reshape(&[d, ch * p * p])?;
        let class = w.w.host_f32(&emb.key("class_embedding"), &[d])?;
        let n = c.tokens();
        let mut table = w.w.host_f32(&emb.key("position_embedding.weight"), &[n, d])?;
        table[..d].iter_mut().zip(&class).for_each(|(t, c)| *t += c);
        let layers = (0..c.num_hidden_layers)
            .map(|i| ClipEncoderLayer::load_dims(&w.at(format!("encoder.layers.{i}")), d, c.intermediate_size, c.layer_norm_eps))
            .collect::<Result<Vec<_>>>()?;
        Ok(ClipVisionTransformer {
            embeddings: ClipVisionEmbeddings {
                patch_embedding: Linear { weight, bias: None },
                table: Tensor::from_f32(w.w.gpu(), &[n, d], &table)?,
            },
            pre_layrnorm: LayerNorm::load(&w.at("pre_layrnorm"), d, c.layer_norm_eps)?,
            layers,
            post_layernorm: LayerNorm::load(&w.at("post_layernorm"), d, c.layer_norm_eps)?,
            config,
        })
    }

    /// Patch rows of `pixels` (B, C, S, S) channels first: (B, tokens, C·p·p), row 0 of each
    /// image zero (the class token), then patches in row-major grid order, each flattened as
    /// (channel, ky, kx) — the conv weight's own order.
    fn patch_rows(&self, pixels: &[f32], b: usize) -> Vec<f32> {
        let c = &self.config;
        let (s, p, ch, g) = (c.image_size, c.patch_size, c.num_channels, c.grid());
        let k = ch * p * p;
        let mut rows = vec![0f32; b * c.tokens() * k];
        for i in 0..b {
            let img = &pixels[i * ch * s * s..(i + 1) * ch * s * s];
            for gy in 0..g {
                for gx in 0..g {
                    let row = &mut rows[(i * c.tokens() + 1 + gy * g + gx) * k..][..k];
                    for cc in 0..ch {
                        for ky in 0..p {
                            let src = &img[cc * s * s + (gy * p + ky) * s + gx * p..][..p];
                            row[(cc * p + ky) * p..][..p].copy_from_slice(src);
                        }
                    }
                }
            }
        }
        rows
    }

    /// `pooler_output` (B, D): post_layernorm of the class token's last hidden state.
    pub fn forward(&self, pixels: &[f32], b: usize) -> Result<Tensor> {
        let c = &self.config;
        let (s, ch, d, n) = (c.image_size, c.num_channels, c.hidden_size, c.tokens());
        if pixels.len() != b * ch * s * s {
            return shape_err("clip vision", format!("{} values are not {b} images of {ch}×{s}×{s}", pixels.len()));
        }
        let gpu = self.embeddings.table.gpu().clone();
        let rows = Tensor::from_f32(&gpu, &[b, n, ch * c.patch_size * c.patch_size], &self.patch_rows(pixels, b))?;
        let x = add_bcast(&self.embeddings.patch_embedding.forward(&rows)?, &self.embeddings.table, 1)?;
        let mut x = self.pre_layrnorm.forward(&x)?;
        let quick = c.hidden_act == "quick_gelu";
        for layer in &self.layers {
            x = layer.forward_masked(&x, c.num_attention_heads, quick, false)?;
        }
        // The class token of each image: one small readback (B·tokens·D floats).
        let all = x.to_f32()?;
        let cls: Vec<f32> = (0..b).flat_map(|i| all[i * n * d..i * n * d + d].to_vec()).collect();
        self.post_layernorm.forward(&Tensor::from_f32(&gpu, &[b, d], &cls)?)
    }
}
