//! The comparison's output folder. Every result is keyed by everything that determines it, so
//! a rerun does only what is missing, an interrupted run resumes, and shards on many machines
//! can share one folder:
//!
//! ```text
//! OUT/videos/<video key>.mp4      the generated video
//! OUT/results/<result key>.json   its numbers (one Record)
//! OUT/.t2v-hashes.json            content hashes of local weight files (path, size, mtime → sha256)
//! OUT/report.html, results.json, results.csv   written by `t2v compare --report` (and at the end of a run)
//! ```
//!
//! video key = sha256 of the model's weights hash, prompt, negative prompt, seed and every
//! generation setting; result key = sha256 of the video key and the CLIP scorer's hash, plus,
//! when VBench dimensions are chosen, the metric list and every metric network's hash. Files
//! are written to a temporary name and renamed, so a key's file is complete or absent.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Keys are the first 16 hex digits (64 bits) of a sha256: short file names, and a collision
/// needs ~4·10⁹ results.
pub fn key_of(material: &serde_json::Value) -> String {
    sha256_hex(material.to_string().as_bytes())[..16].to_string()
}

/// A file's content id. Hugging Face cache snapshots are symlinks to `blobs/<sha256 or etag>`,
/// which names the content already; other files are hashed (once per path, size and mtime:
/// remembered in `cache`).
fn file_id(path: &Path, cache: &mut BTreeMap<String, String>) -> Result<String> {
    if let Ok(target) = std::fs::read_link(path) {
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let in_blobs = target.parent().and_then(|p| p.file_name()).is_some_and(|n| n == "blobs");
        if in_blobs && name.len() >= 40 && name.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(name);
        }
    }
    let io = |e: std::io::Error| Error::Other(format!("{}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(io)?;
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let stamp = format!("{}|{}|{mtime}", canon.display(), meta.len());
    if let Some(h) = cache.get(&stamp) {
        return Ok(h.clone());
    }
    let mut hasher = Sha256::new();
    let mut f = std::fs::File::open(path).map_err(io)?;
    std::io::copy(&mut f, &mut hasher).map_err(io)?;
    let h: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    cache.insert(stamp, h.clone());
    Ok(h)
}

/// A folder's content hash: every file under it (symlinks followed; hidden files skipped) by
/// relative path and content id. Two copies of the same model hash alike wherever they live.
/// `out` (the comparison's folder) keeps a cache of file hashes; None hashes afresh.
pub fn folder_hash(dir: &Path, out: Option<&Path>) -> Result<String> {
    let cache_path = out.map(|o| o.join(".t2v-hashes.json"));
    let mut cache: BTreeMap<String, String> =
        cache_path.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let before = cache.len();
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut listing = String::new();
    for rel in &files {
        listing += &format!("{}\t{}\n", rel.display(), file_id(&dir.join(rel), &mut cache)?);
    }
    if let (true, Some(cache_path)) = (cache.len() != before, cache_path) {
        // Whichever shard writes last wins; every writer's entries are correct.
        let text = serde_json::to_string_pretty(&cache).unwrap_or_default();
        crate::video::write_atomic(&cache_path, |w| w.write_all(text.as_bytes()).map_err(|e| Error::Other(e.to_string())))?;
    }
    Ok(sha256_hex(listing.as_bytes())[..16].to_string())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Other(format!("{}: {e}", dir.display())))?;
    for e in entries.filter_map(|e| e.ok()) {
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(root, &p, out)?;
        } else if p.is_file() {
            out.push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
        }
    }
    Ok(())
}

/// One video's numbers: what made it, how good it is, what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub video_key: String,
    /// Relative to the output folder.
    pub video: String,
    /// The model as named on the command line, and its weights' content hash.
    pub model: String,
    pub model_hash: String,
    pub prompt_id: String,
    pub prompt: String,
    pub category: Option<String>,
    pub negative_prompt: String,
    pub seed: u64,
    pub num_frames: usize,
    pub height: usize,
    pub width: usize,
    pub num_inference_steps: usize,
    pub guidance_scale: f32,
    pub scheduler: String,
    pub fps: u32,
    pub weights_dtype: String,
    /// The CLIP model that scored it, and its hash.
    pub scorer: String,
    pub scorer_hash: String,
    pub clipsim: f64,
    pub fetv_clipscore: f64,
    pub clip_temp: Option<f64>,
    pub flicker: Option<f64>,
    /// VBench's dimensions (issue 20; absent in older results), and what computed them
    /// (metric → model and hash).
    #[serde(default)]
    pub background_consistency: Option<f64>,
    #[serde(default)]
    pub subject_consistency: Option<f64>,
    #[serde(default)]
    pub aesthetic_quality: Option<f64>,
    /// VBench's dynamic degree (0/1) and static filter (whether VBench keeps the video for
    /// temporal flickering; None: not run, flicker unfiltered).
    #[serde(default)]
    pub dynamic_degree: Option<f64>,
    #[serde(default)]
    pub is_static: Option<bool>,
    #[serde(default)]
    pub metric_models: BTreeMap<String, String>,
    /// Seconds: loading the pipeline (in the process that made this video), prompt encoding,
    /// the denoising loop, VAE decoding; and the loop's seconds per step.
    pub load_s: f64,
    pub encode_s: f64,
    pub denoise_s: f64,
    pub decode_s: f64,
    pub s_per_step: f64,
    /// Device bytes: the memory plan's peak and the pool's measured peak for this generation.
    pub planned_peak_bytes: u64,
    pub measured_peak_bytes: u64,
}

impl Record {
    /// The seconds a video takes once the model is loaded.
    pub fn generate_s(&self) -> f64 {
        self.encode_s + self.denoise_s + self.decode_s
    }
}

pub fn result_path(out: &Path, key: &str) -> PathBuf {
    out.join("results").join(format!("{key}.json"))
}

pub fn video_rel(video_key: &str) -> String {
    format!("videos/{video_key}.mp4")
}

pub fn write_record(out: &Path, r: &Record) -> Result<()> {
    let path = result_path(out, &r.key);
    let text = serde_json::to_string_pretty(r).map_err(|e| Error::Other(e.to_string()))?;
    crate::video::write_atomic(&path, |w| w.write_all(text.as_bytes()).map_err(|e| Error::Other(format!("{}: {e}", path.display()))))
}

/// Every complete record under `out/results/`, in key order (temporary files are skipped).
pub fn read_records(out: &Path) -> Result<Vec<Record>> {
    let dir = out.join("results");
    let mut records = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(records) };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| Error::Other(format!("{}: {e}", p.display())))?;
        records.push(serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: not a t2v result: {e}", p.display())))?);
    }
    Ok(records)
}
