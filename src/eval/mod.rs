//! Measuring videos: CLIP-based and pixel metrics ([`metrics`]), VBench's quality dimensions
//! ([`vbench`], on VBench's own preprocessing [`vbench_preprocess`]; the RAFT ones, dynamic
//! degree and the static filter, in [`motion`]), the scorer ([`Scorer`]:
//! the CLIP model and the networks the chosen dimensions need), prompt files ([`prompts`]), the
//! keyed result store of `t2v compare` ([`store`]) and its report ([`report`]).

pub mod metrics;
pub mod motion;
pub mod prompts;
pub mod report;
pub mod store;
pub mod vbench;
pub mod vbench_preprocess;

use crate::models::clip::ClipModel;
use crate::models::aesthetic::AestheticHead;
use crate::models::dino::DinoModel;
use crate::models::raft::RaftModel;
use crate::error::Result;
use crate::weights::Placement;
use crate::{DType, Gpu};
use std::path::Path;
use std::sync::Arc;

pub use metrics::VideoScores;
pub use vbench::MetricSet;

/// What scores a video: the CLIP scorer (hub id, folder or `tiny-random`) and the VBench
/// dimensions chosen.
#[derive(Debug, Clone)]
pub struct ScorerSpec {
    pub clip_model: String,
    pub metrics: MetricSet,
    /// DINO for subject consistency: hub id (timm layout), folder or `tiny-random`.
    pub dino_model: String,
    /// Aesthetic quality: the CLIP it runs on (hub id, folder, `tiny-random`) and the LAION V1
    /// head (file, folder, hub id, `tiny-random`).
    pub aesthetic_clip: String,
    pub aesthetic_head: String,
    /// RAFT for dynamic degree and the static filter: a .pth / .safetensors file or folder,
    /// `owner/repo[:file]` on the hub, or `tiny-random`.
    pub raft_model: String,
}

/// A weight file's or folder's content hash.
fn path_hash(p: &Path, hash_cache: Option<&Path>) -> Result<String> {
    if p.is_dir() {
        return store::folder_hash(p, hash_cache);
    }
    let bytes = std::fs::read(p).map_err(|e| crate::error::Error::Other(format!("{}: {e}", p.display())))?;
    Ok(store::sha256_hex(&bytes)[..16].to_string())
}

impl ScorerSpec {
    /// What the results depend on beyond the CLIP scorer's hash (None: nothing, the key
    /// material of results made before issue 20). `gpu` makes `tiny-random` folders.
    pub fn key_material(&self, gpu: &Arc<Gpu>, hash_cache: Option<&Path>) -> Result<Option<serde_json::Value>> {
        if self.metrics.is_base() {
            return Ok(None);
        }
        // Background consistency is VBench's preprocessing of the same CLIP scorer (its hash is
        // keyed already); the metric list, t2v's version of the VBench formulas and every other
        // metric network's weights are what change a result.
        let mut m = serde_json::json!({ "metrics": self.metrics.names(), "vbench": 1 });
        if self.metrics.subject_consistency {
            let dir = crate::models::dino::resolve_with(&self.dino_model, gpu)?;
            m["dino_hash"] = store::folder_hash(&dir, hash_cache)?.into();
        }
        if self.metrics.aesthetic_quality {
            let clip = crate::models::clip::resolve_with(&self.aesthetic_clip, gpu)?;
            let dim = crate::models::clip::ClipConfig::from_file(&clip.join("config.json"))?.projection_dim;
            m["aesthetic_clip_hash"] = store::folder_hash(&clip, hash_cache)?.into();
            m["aesthetic_head_hash"] = path_hash(&crate::models::aesthetic::resolve_with(&self.aesthetic_head, dim)?, hash_cache)?.into();
        }
        if self.metrics.needs_raft() {
            m["raft_hash"] = path_hash(&crate::models::raft::resolve_with(&self.raft_model, gpu)?, hash_cache)?.into();
        }
        Ok(Some(m))
    }
}

/// Frames per vision-tower batch on VBench's preprocessing (as the CLIP model's own).
const FRAMES_PER_BATCH: usize = 16;

/// The loaded networks that score videos.
pub struct Scorer {
    pub clip: ClipModel,
    /// The model as named (hub id or folder) and the content hash of its folder.
    pub name: String,
    pub hash: String,
    pub metrics: MetricSet,
    /// DINO (subject consistency): the model, its name and folder hash.
    pub dino: Option<(DinoModel, String, String)>,
    pub aesthetic: Option<Aesthetic>,
    /// RAFT (dynamic degree, static filter): the model, its name and file hash.
    pub raft: Option<(RaftModel, String, String)>,
}

/// Aesthetic quality's networks: its CLIP (None: the scorer's own, when both are the same
/// model) and the LAION head; "name hash" of each for the record.
pub struct Aesthetic {
    pub clip: Option<ClipModel>,
    pub head: AestheticHead,
    pub models: String,
}

impl Scorer {
    /// Loads `name` (a hub id or folder) on `gpu`, f32 weights (scores are compared across
    /// runs and machines: no f16 rounding of CLIP's weights). `hash_cache` is a folder for the
    /// weights-hash cache (the comparison's output folder). Only the base metrics.
    pub fn load(gpu: &Arc<Gpu>, name: &str, hash_cache: Option<&Path>) -> Result<Scorer> {
        let spec = ScorerSpec {
            clip_model: name.to_string(),
            metrics: MetricSet::parse(&[])?,
            dino_model: String::new(),
            aesthetic_clip: String::new(),
            aesthetic_head: String::new(),
            raft_model: String::new(),
        };
        Scorer::load_spec(gpu, &spec, hash_cache)
    }

    /// Loads every network `spec` needs.
    pub fn load_spec(gpu: &Arc<Gpu>, spec: &ScorerSpec, hash_cache: Option<&Path>) -> Result<Scorer> {
        let dir = crate::models::clip::resolve_with(&spec.clip_model, gpu)?;
        let hash = store::folder_hash(&dir, hash_cache)?;
        let f32_weights = Placement { matrices: DType::F32 };
        let clip = ClipModel::from_dir(gpu, &dir, f32_weights)?;
        let dino = if spec.metrics.subject_consistency {
            let d = crate::models::dino::resolve_with(&spec.dino_model, gpu)?;
            let h = store::folder_hash(&d, hash_cache)?;
            Some((DinoModel::from_dir(gpu, &d, f32_weights)?, spec.dino_model.clone(), h))
        } else {
            None
        };
        let aesthetic = if spec.metrics.aesthetic_quality {
            let cdir = crate::models::clip::resolve_with(&spec.aesthetic_clip, gpu)?;
            let chash = store::folder_hash(&cdir, hash_cache)?;
            let own = if chash == hash { None } else { Some(ClipModel::from_dir(gpu, &cdir, f32_weights)?) };
            let dim = own.as_ref().unwrap_or(&clip).config.projection_dim;
            let hpath = crate::models::aesthetic::resolve_with(&spec.aesthetic_head, dim)?;
            let hhash = path_hash(&hpath, hash_cache)?;
            let head = AestheticHead::load(gpu, &hpath, dim)?;
            Some(Aesthetic { clip: own, head, models: format!("{} {chash} + {} {hhash}", spec.aesthetic_clip, spec.aesthetic_head) })
        } else {
            None
        };
        let raft = if spec.metrics.needs_raft() {
            let p = crate::models::raft::resolve_with(&spec.raft_model, gpu)?;
            let h = path_hash(&p, hash_cache)?;
            Some((RaftModel::load(gpu, &p)?, spec.raft_model.clone(), h))
        } else {
            None
        };
        Ok(Scorer { clip, name: spec.clip_model.clone(), hash, metrics: spec.metrics, dino, aesthetic, raft })
    }

    /// Which network computed each chosen VBench dimension ("name hash"), for the record.
    pub fn metric_models(&self) -> std::collections::BTreeMap<String, String> {
        let mut m = std::collections::BTreeMap::new();
        if self.metrics.background_consistency {
            m.insert("background_consistency".into(), format!("{} {}", self.name, self.hash));
        }
        if let Some((_, name, hash)) = &self.dino {
            m.insert("subject_consistency".into(), format!("{name} {hash}"));
        }
        if let Some(a) = &self.aesthetic {
            m.insert("aesthetic_quality".into(), a.models.clone());
        }
        if let Some((_, name, hash)) = &self.raft {
            for (on, k) in [(self.metrics.dynamic_degree, "dynamic_degree"), (self.metrics.static_filter, "static_filter")] {
                if on {
                    m.insert(k.into(), format!("{name} {hash}"));
                }
            }
        }
        m
    }

    /// The metrics of 8-bit RGB frames (F, H, W, 3) for `prompt`; `fps` sets dynamic degree's
    /// frame interval (VBench: max(1, round(fps/8))).
    pub fn score(&self, rgb: &[u8], f: usize, h: usize, w: usize, fps: f64, prompt: &str) -> Result<VideoScores> {
        let frames = self.clip.image_features(rgb, f, h, w)?;
        let text = self.clip.text_features(prompt)?;
        let mut s = metrics::scores(&frames, &text, rgb, f, h, w);
        if self.metrics.is_base() {
            return Ok(s);
        }
        let x = vbench_preprocess::frames_from_rgb(rgb, f, h, w);
        if self.metrics.background_consistency {
            s.background_consistency = vbench::consistency(&vbench_clip_features(&self.clip, &x, f, h, w)?);
        }
        if let Some((dino, _, _)) = &self.dino {
            s.subject_consistency = vbench::consistency(&vbench_dino_features(dino, &x, f, h, w)?);
        }
        if let Some(a) = &self.aesthetic {
            let feats = vbench_clip_features(a.clip.as_ref().unwrap_or(&self.clip), &x, f, h, w)?;
            s.aesthetic_quality = vbench::aesthetic(&feats, &a.head.weight, a.head.bias);
        }
        if let Some((raft, _, _)) = &self.raft {
            let m = motion::motion(&raft.raft, rgb, f, h, w, fps, self.metrics.dynamic_degree, self.metrics.static_filter)?;
            s.dynamic_degree = m.dynamic.map(|d| if d { 1.0 } else { 0.0 });
            s.is_static = m.is_static;
        }
        Ok(s)
    }
}

/// DINO's CLS features of float frames (T, 3, H, W) 0..255 on VBench's `dino_transform(224)`
/// (bilinear shorter side to 224, no crop), one frame at a time as VBench runs it.
pub fn vbench_dino_features(dino: &DinoModel, frames: &[f32], t: usize, h: usize, w: usize) -> Result<Vec<Vec<f32>>> {
    let plane = 3 * h * w;
    let mut out = Vec::with_capacity(t);
    for i in 0..t {
        let px = vbench_preprocess::dino_transform(&frames[i * plane..(i + 1) * plane], 1, h, w, vbench::DINO_PX)?;
        out.extend(dino.features(&px.data, 1, px.height, px.width)?);
    }
    Ok(out)
}

/// A CLIP model's image features (`encode_image` = `get_image_features`) of float frames
/// (T, 3, H, W) 0..255 on VBench's `clip_transform` at the model's image size (224 for the
/// published CLIPs), in batches.
pub fn vbench_clip_features(clip: &ClipModel, frames: &[f32], t: usize, h: usize, w: usize) -> Result<Vec<Vec<f32>>> {
    let n_px = clip.config.vision.image_size;
    let plane = 3 * h * w;
    let mut out = Vec::with_capacity(t);
    for lo in (0..t).step_by(FRAMES_PER_BATCH) {
        let hi = (lo + FRAMES_PER_BATCH).min(t);
        let px = vbench_preprocess::clip_transform(&frames[lo * plane..hi * plane], hi - lo, h, w, n_px)?;
        out.extend(clip.image_features_pixels(&px.data, hi - lo)?);
    }
    Ok(out)
}
