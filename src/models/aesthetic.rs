//! LAION's aesthetic predictor V1 (LAION-AI/aesthetic-predictor `sa_0_4_vit_l_14_linear.pth`: one
//! `nn.Linear(768, 1)`), the head of VBench's aesthetic quality. Read from the LAION file (keys
//! `weight`, `bias`; a torch zip `.pth`), any safetensors holding them, or the
//! `shunk031/aesthetics-predictor-v1-vit-large-patch14` repo (keys `predictor.weight`,
//! `predictor.bias` beside a CLIP vision tower, which is not read). 769 floats: applied on the
//! host.

use crate::error::{Error, Result};
use crate::weights::{Placement, Weights};
use crate::{DType, Gpu};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The hub repo holding the V1 head (VBench downloads the same head from LAION's GitHub).
pub const DEFAULT_HEAD: &str = "shunk031/aesthetics-predictor-v1-vit-large-patch14";
/// The CLIP VBench runs it on.
pub const DEFAULT_CLIP: &str = "openai/clip-vit-large-patch14";

pub struct AestheticHead {
    /// (in_features) weights and the bias of the single output.
    pub weight: Vec<f32>,
    pub bias: f32,
}

impl AestheticHead {
    /// From a weight file (`.pth`/`.bin`/`.pt` torch zip, else safetensors) or a folder holding
    /// one; `dim` is the CLIP projection width it must match.
    pub fn load(gpu: &Arc<Gpu>, path: &Path, dim: usize) -> Result<AestheticHead> {
        let w = if path.is_dir() {
            Weights::open_dir(gpu, path, Placement { matrices: DType::F32 })?
        } else {
            Weights::open_files(gpu, &path.display().to_string(), &[path.to_path_buf()], Placement { matrices: DType::F32 })?
        };
        let prefix = if w.contains("predictor.weight") { "predictor." } else { "" };
        let weight = w.host_f32(&format!("{prefix}weight"), &[1, dim]).map_err(|e| {
            Error::Other(format!("aesthetic head {}: {e} (a LAION V1 head on a {dim}-wide CLIP embedding: weight [1, {dim}], bias [1])", path.display()))
        })?;
        let bias = w.host_f32(&format!("{prefix}bias"), &[1])?[0];
        Ok(AestheticHead { weight, bias })
    }
}

/// The file or folder of a head: a local path as is, `tiny-random` (a random head of width `dim`
/// generated on first use), or a hub repo id (its weights file fetched; only the two predictor
/// tensors are read).
pub fn resolve_with(head: &str, dim: usize) -> Result<PathBuf> {
    if head == crate::weights::tiny_random::NAME {
        return ensure_tiny_random(dim);
    }
    let path = Path::new(head);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    if !head.contains('/') {
        return Err(Error::Other(format!("aesthetic head '{head}' is neither a file, a folder nor a hub repo id like {DEFAULT_HEAD}")));
    }
    crate::weights::hub::fetch_files(head, &["config.json"], &["model.safetensors", "pytorch_model.bin"])
}

fn ensure_tiny_random(dim: usize) -> Result<PathBuf> {
    let root = crate::weights::tiny_random::cache_root();
    let file = root.join(format!("tiny-random-aesthetic-head-v1-{dim}.safetensors"));
    if file.is_file() {
        return Ok(file);
    }
    // Deterministic values (SplitMix64): a head whose scores vary with the embedding.
    let mut s = 0x5EED_u64 + dim as u64;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let weight: Vec<f32> = (0..dim).map(|_| 10.0 * next()).collect();
    let mut tensors = std::collections::BTreeMap::new();
    tensors.insert("weight".to_string(), (vec![1, dim], weight));
    tensors.insert("bias".to_string(), (vec![1], vec![5.0]));
    let io = |e: std::io::Error| Error::Other(format!("writing {}: {e}", file.display()));
    std::fs::create_dir_all(&root).map_err(io)?;
    let tmp = root.join(format!("tiny-random-aesthetic-head.partial-{}", std::process::id()));
    crate::weights::write_f32(&tmp, &tensors).map_err(io)?;
    std::fs::rename(&tmp, &file).map_err(io)?;
    Ok(file)
}
