//! Measuring videos: CLIP-based and pixel metrics ([`metrics`]), the CLIP scorer
//! ([`Scorer`]), prompt files ([`prompts`]), the keyed result store of `t2v compare`
//! ([`store`]) and its report ([`report`]).

pub mod metrics;
pub mod prompts;
pub mod report;
pub mod store;
pub mod vbench_preprocess;

use crate::models::clip::ClipModel;
use crate::error::Result;
use crate::weights::Placement;
use crate::{DType, Gpu};
use std::path::Path;
use std::sync::Arc;

pub use metrics::VideoScores;

/// A loaded CLIP model that scores videos against prompts.
pub struct Scorer {
    pub clip: ClipModel,
    /// The model as named (hub id or folder) and the content hash of its folder.
    pub name: String,
    pub hash: String,
}

impl Scorer {
    /// Loads `name` (a hub id or folder) on `gpu`, f32 weights (scores are compared across
    /// runs and machines: no f16 rounding of CLIP's weights). `hash_cache` is a folder for the
    /// weights-hash cache (the comparison's output folder).
    pub fn load(gpu: &Arc<Gpu>, name: &str, hash_cache: Option<&Path>) -> Result<Scorer> {
        let dir = crate::models::clip::resolve_with(name, gpu)?;
        let hash = store::folder_hash(&dir, hash_cache)?;
        let clip = ClipModel::from_dir(gpu, &dir, Placement { matrices: DType::F32 })?;
        Ok(Scorer { clip, name: name.to_string(), hash })
    }

    /// The metrics of 8-bit RGB frames (F, H, W, 3) for `prompt`.
    pub fn score(&self, rgb: &[u8], f: usize, h: usize, w: usize, prompt: &str) -> Result<VideoScores> {
        let frames = self.clip.image_features(rgb, f, h, w)?;
        let text = self.clip.text_features(prompt)?;
        Ok(metrics::scores(&frames, &text, rgb, f, h, w))
    }
}
