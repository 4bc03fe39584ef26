//! DINO's ViT (facebookresearch/dino `vision_transformer.py`, `vit_base(patch_size=16)` = VBench's
//! `dino_vitb16`) in timm's key layout (`timm/vit_base_patch16_224.dino`, the torch.hub checkpoint's
//! own names): `patch_embed.proj` (a conv with kernel = stride = patch, with bias), `cls_token`,
//! `pos_embed`, `blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`, `norm`. Pre-LN
//! blocks (LayerNorm eps 1e-6, exact erf GELU), the CLS token after the final norm is the
//! feature (head = Identity). Images of any size: the patch grid is H//p × W//p (the remainder
//! dropped, as the stride-p conv does) and the position embeddings are resized as DINO's
//! `interpolate_pos_encoding` does (bicubic, scale factors (n + 0.1)/√N — on the host, tiny).
//! For VBench's subject consistency (`eval::vbench`).

mod block;

pub use block::Block;

use crate::error::{shape_err, Error, Result};
use crate::eval::vbench_preprocess::{interpolate_scale, Filter};
use crate::nn::{LayerNorm, Linear};
use crate::ops::elementwise::add_bcast;
use crate::tensor::Tensor;
use crate::weights::{Placement, Scope, Weights};
use crate::{DType, Gpu};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The checkpoint VBench's DINO is (timm's re-hosting of `dino_vitbase16_pretrain.pth`).
pub const DEFAULT_MODEL: &str = "timm/vit_base_patch16_224.dino";

/// The architecture: t2v's own config.json keys (written by `tiny-random` and the fixtures), with
/// `vit_base(patch_size=16)`'s values as defaults — a timm config.json (`architecture:
/// vit_base_patch16_224`) has none of them and gets exactly those.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DinoConfig {
    pub architecture: Option<String>,
    pub embed_dim: usize,
    pub depth: usize,
    pub num_heads: usize,
    pub mlp_ratio: f64,
    pub patch_size: usize,
    /// Training size: the position table is (img_size/patch)² + 1 rows.
    pub img_size: usize,
    pub in_chans: usize,
    pub layer_norm_eps: f32,
}

impl Default for DinoConfig {
    fn default() -> Self {
        DinoConfig {
            architecture: None,
            embed_dim: 768,
            depth: 12,
            num_heads: 12,
            mlp_ratio: 4.0,
            patch_size: 16,
            img_size: 224,
            in_chans: 3,
            layer_norm_eps: 1e-6,
        }
    }
}

impl DinoConfig {
    pub fn from_file(path: &Path) -> Result<DinoConfig> {
        let c: DinoConfig = if path.is_file() {
            let v: serde_json::Value = crate::config::read_json(path)?;
            serde_json::from_value(v).map_err(|e| Error::Config { path: path.display().to_string(), msg: e.to_string() })?
        } else {
            DinoConfig::default()
        };
        let bad = |msg: String| Error::Config { path: path.display().to_string(), msg };
        if let Some(a) = &c.architecture {
            if a != "vit_base_patch16_224" {
                return Err(bad(format!("architecture '{a}': t2v's DINO reads vit_base_patch16_224 (DINO ViT-B/16) or t2v's own keys")));
            }
        }
        if c.num_heads == 0 || !c.embed_dim.is_multiple_of(c.num_heads) {
            return Err(bad(format!("embed_dim {} does not split into {} heads", c.embed_dim, c.num_heads)));
        }
        if c.patch_size == 0 || c.img_size < c.patch_size {
            return Err(bad(format!("img_size {} / patch_size {}", c.img_size, c.patch_size)));
        }
        Ok(c)
    }

    /// Position-table side n (N = n² patch positions).
    pub fn grid(&self) -> usize {
        self.img_size / self.patch_size
    }

    pub fn mlp_hidden(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio) as usize
    }
}

pub struct VisionTransformer {
    pub config: DinoConfig,
    /// `patch_embed.proj.weight` [D, C, p, p] viewed as [D, C·p·p], its bias added with the
    /// position table (a stride-p conv is a matmul over non-overlapping patches).
    pub patch_proj: Linear,
    pub patch_bias: Vec<f32>,
    pub cls_token: Vec<f32>,
    /// `pos_embed` (1 + N, D) on the host: resized per input size.
    pub pos_embed: Vec<f32>,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
}

impl VisionTransformer {
    pub fn load(w: &Scope, config: DinoConfig) -> Result<VisionTransformer> {
        let c = &config;
        let (d, p, ch, n) = (c.embed_dim, c.patch_size, c.in_chans, c.grid());
        let weight = w.tensor("patch_embed.proj.weight", &[d, ch, p, p])?.reshape(&[d, ch * p * p])?;
        let patch_bias = w.w.host_f32(&w.key("patch_embed.proj.bias"), &[d])?;
        let cls_token = w.w.host_f32(&w.key("cls_token"), &[1, 1, d])?;
        let pos_embed = w.w.host_f32(&w.key("pos_embed"), &[1, n * n + 1, d])?;
        let blocks = (0..c.depth).map(|i| Block::load(&w.at(format!("blocks.{i}")), c)).collect::<Result<Vec<_>>>()?;
        Ok(VisionTransformer {
            patch_proj: Linear { weight, bias: None },
            patch_bias,
            cls_token,
            pos_embed,
            blocks,
            norm: LayerNorm::load(&w.at("norm"), d, c.layer_norm_eps)?,
            config,
        })
    }

    /// DINO's `interpolate_pos_encoding` for an h×w image (pixels) with a gh×gw patch grid: the
    /// table as is when the grid has N patches and h == w, else the N patch rows resized by
    /// bicubic with scale factors ((gh + 0.1)/n, (gw + 0.1)/n). (1 + gh·gw, D).
    pub fn pos_encoding(&self, h: usize, w: usize) -> Result<Vec<f32>> {
        let c = &self.config;
        let (d, n, p) = (c.embed_dim, c.grid(), c.patch_size);
        let (gh, gw) = (h / p, w / p);
        if gh * gw == n * n && h == w {
            return Ok(self.pos_embed.clone());
        }
        // (n, n, D) → D planes of n×n (DINO's permute(0, 3, 1, 2)).
        let mut planes = vec![0f32; d * n * n];
        for i in 0..n * n {
            for ch in 0..d {
                planes[ch * n * n + i] = self.pos_embed[(1 + i) * d + ch];
            }
        }
        let scale = ((gh as f64 + 0.1) / n as f64, (gw as f64 + 0.1) / n as f64);
        let out = interpolate_scale(&planes, d, n, n, scale, Filter::Bicubic)?;
        let mut table = self.pos_embed[..d].to_vec();
        table.resize((1 + gh * gw) * d, 0.0);
        for i in 0..gh * gw {
            for ch in 0..d {
                table[(1 + i) * d + ch] = out[ch * gh * gw + i];
            }
        }
        Ok(table)
    }

    /// Patch rows of `pixels` (B, C, h, w): (B, 1 + gh·gw, C·p·p), row 0 zero (the class token),
    /// then patches in row-major grid order flattened as (channel, ky, kx) — the conv weight's
    /// order; pixels beyond the last whole patch are not read.
    fn patch_rows(&self, pixels: &[f32], b: usize, h: usize, w: usize) -> Vec<f32> {
        let c = &self.config;
        let (p, ch) = (c.patch_size, c.in_chans);
        let (gh, gw) = (h / p, w / p);
        let (k, tokens) = (ch * p * p, 1 + gh * gw);
        let mut rows = vec![0f32; b * tokens * k];
        for i in 0..b {
            let img = &pixels[i * ch * h * w..(i + 1) * ch * h * w];
            for gy in 0..gh {
                for gx in 0..gw {
                    let row = &mut rows[(i * tokens + 1 + gy * gw + gx) * k..][..k];
                    for cc in 0..ch {
                        for ky in 0..p {
                            row[(cc * p + ky) * p..][..p].copy_from_slice(&img[cc * h * w + (gy * p + ky) * w + gx * p..][..p]);
                        }
                    }
                }
            }
        }
        rows
    }

    /// `forward`: the CLS token after the final norm, (B, D), of normalised images (B, C, h, w).
    pub fn forward(&self, pixels: &[f32], b: usize, h: usize, w: usize) -> Result<Tensor> {
        let c = &self.config;
        let (d, p, ch) = (c.embed_dim, c.patch_size, c.in_chans);
        if pixels.len() != b * ch * h * w || h < p || w < p {
            return shape_err("dino", format!("{} values are not {b} images of {ch}×{h}×{w} (at least one {p}-pixel patch)", pixels.len()));
        }
        let tokens = 1 + (h / p) * (w / p);
        // Row 0: cls + pos₀; patch rows: conv bias + pos (the conv's bias added here, not to
        // the class token's zero row).
        let mut table = self.pos_encoding(h, w)?;
        table[..d].iter_mut().zip(&self.cls_token).for_each(|(t, c)| *t += c);
        for row in table[d..].chunks_exact_mut(d) {
            row.iter_mut().zip(&self.patch_bias).for_each(|(t, bias)| *t += bias);
        }
        let gpu = self.norm.weight.gpu().clone();
        let rows = Tensor::from_f32(&gpu, &[b, tokens, ch * p * p], &self.patch_rows(pixels, b, h, w))?;
        let table = Tensor::from_f32(&gpu, &[tokens, d], &table)?;
        let mut x = add_bcast(&self.patch_proj.forward(&rows)?, &table, 1)?;
        for blk in &self.blocks {
            x = blk.forward(x, c.num_heads)?;
        }
        // The class token of each image (LayerNorm is per token: norm after taking it).
        let all = x.to_f32()?;
        let cls: Vec<f32> = (0..b).flat_map(|i| all[i * tokens * d..i * tokens * d + d].to_vec()).collect();
        self.norm.forward(&Tensor::from_f32(&gpu, &[b, d], &cls)?)
    }
}

/// A loaded DINO model: `config.json` (optional) + weights in timm's key layout.
pub struct DinoModel {
    pub vit: VisionTransformer,
}

impl DinoModel {
    pub fn from_dir(gpu: &Arc<Gpu>, dir: &Path, placement: Placement) -> Result<DinoModel> {
        let config = DinoConfig::from_file(&dir.join("config.json"))?;
        let w = Weights::open_dir(gpu, dir, placement)?;
        let vit = VisionTransformer::load(&w.at(""), config)?;
        // timm's classifier head of num_classes 0 is absent; a DINO training checkpoint's
        // `head.*` (none in the published backbone) would be refused by finish().
        w.finish()?;
        Ok(DinoModel { vit })
    }

    /// CLS features (B rows of D) of normalised images (B, 3, h, w).
    pub fn features(&self, pixels: &[f32], b: usize, h: usize, w: usize) -> Result<Vec<Vec<f32>>> {
        let d = self.vit.config.embed_dim;
        Ok(self.vit.forward(pixels, b, h, w)?.to_f32()?.chunks_exact(d).map(<[f32]>::to_vec).collect())
    }
}

/// The folder of a DINO model: a folder as is, `tiny-random` (a miniature random DINO t2v makes
/// on first use: offline runs, meaningless scores), or a hub repo id (timm layout, fetched into
/// the Hugging Face cache).
pub fn resolve_with(model: &str, gpu: &Arc<Gpu>) -> Result<PathBuf> {
    if model == crate::weights::tiny_random::NAME {
        return ensure_tiny_random(gpu);
    }
    let path = Path::new(model);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if !model.contains('/') {
        return Err(Error::Other(format!("DINO model '{model}' is neither a folder nor a hub repo id like {DEFAULT_MODEL}")));
    }
    crate::weights::hub::fetch_files(model, &["config.json"], &["model.safetensors"])
}

/// The tiny-random DINO: patch 8, 16 wide, 2 blocks of 2 heads, trained size 32 (a 4×4 table).
const TINY_CONFIG: &str = r#"{"_t2v_note": "tiny-random: random weights, scores are meaningless", "embed_dim": 16, "depth": 2,
  "num_heads": 2, "mlp_ratio": 4.0, "patch_size": 8, "img_size": 32, "in_chans": 3, "layer_norm_eps": 1e-6}"#;
/// Bump when the generated model changes.
const TINY_VERSION: &str = "1";

/// Generates the tiny-random DINO folder (config.json + model.safetensors) once, into a
/// temporary name renamed into place (as `weights::tiny_random` does for the CLIP scorer).
pub fn ensure_tiny_random(gpu: &Arc<Gpu>) -> Result<PathBuf> {
    use crate::weights::tiny_random::{cache_root, generate, write_file, NAME};
    let dir = cache_root().join(format!("{NAME}-dino-v{TINY_VERSION}"));
    generate(&dir, "config.json", &|tmp| {
        write_file(tmp, "config.json", TINY_CONFIG)?;
        let w = Weights::synthetic(gpu, "dino", Placement { matrices: DType::F32 });
        VisionTransformer::load(&w.at(""), DinoConfig::from_file(&tmp.join("config.json"))?)?;
        let st = tmp.join("model.safetensors");
        crate::weights::write_f32(&st, &w.synthesized()).map_err(|e| Error::Other(format!("writing {}: {e}", st.display())))
    })
}
