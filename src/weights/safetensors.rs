//! safetensors reader: memory-mapped, header validated up front so a truncated or malformed
//! file fails with its path and the offending key instead of a panic mid-load.
//!
//! Format: 8-byte little-endian header length N, N bytes of JSON
//! `{"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`,
//! then the data section the offsets index into.

use super::{StoredDType, WeightError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub dtype: StoredDType,
    pub shape: Vec<usize>,
    /// Byte range inside the file.
    pub start: usize,
    pub end: usize,
}

pub struct SafeTensors {
    pub path: PathBuf,
    mmap: memmap2::Mmap,
    pub tensors: BTreeMap<String, TensorInfo>,
    pub metadata: BTreeMap<String, String>,
}

impl SafeTensors {
    pub fn open(path: &Path) -> Result<SafeTensors, WeightError> {
        let file = std::fs::File::open(path).map_err(|e| WeightError::Io { path: path.to_path_buf(), msg: e.to_string() })?;
        // SAFETY: the map is read-only; a file truncated underneath us while mapped is the
        // same hazard every mmap-based loader (including Python's) accepts.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| WeightError::Io { path: path.to_path_buf(), msg: e.to_string() })?;
        let (tensors, metadata) = parse_header(path, &mmap)?;
        Ok(SafeTensors { path: path.to_path_buf(), mmap, tensors, metadata })
    }

    pub fn bytes(&self, info: &TensorInfo) -> &[u8] {
        &self.mmap[info.start..info.end]
    }
}

/// The tensors and metadata a safetensors file's bytes describe, validated (`path` names the
/// file in errors). Separate from [`SafeTensors::open`] so it can be fuzzed on bytes.
pub fn parse_header(path: &Path, mmap: &[u8]) -> Result<(BTreeMap<String, TensorInfo>, BTreeMap<String, String>), WeightError> {
    let bad = |msg: String| WeightError::Malformed { path: path.to_path_buf(), msg };
    if mmap.len() < 8 {
        return Err(bad(format!("file is {} bytes, too short for a safetensors header", mmap.len())));
    }
    let n = u64::from_le_bytes(mmap[..8].try_into().unwrap_or([0; 8]));
    if n > (mmap.len() - 8) as u64 {
        return Err(bad(format!("header claims {n} bytes but the file has only {} after the length (truncated?)", mmap.len() - 8)));
    }
    let n = n as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&mmap[8..8 + n]).map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
    let data_start = 8 + n;
    let data_len = mmap.len() - data_start;
    let mut tensors = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    for (name, v) in header {
        if name == "__metadata__" {
            if let Some(m) = v.as_object() {
                for (k, v) in m {
                    metadata.insert(k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
                }
            }
            continue;
        }
        let field = |f: &str| v.get(f).ok_or_else(|| bad(format!("tensor '{name}' has no '{f}'")));
        let dtype_s = field("dtype")?.as_str().ok_or_else(|| bad(format!("tensor '{name}': dtype is not a string")))?;
        let dtype = StoredDType::parse(dtype_s);
        let shape: Vec<usize> = field("shape")?
            .as_array()
            .and_then(|a| a.iter().map(|x| x.as_u64().map(|u| u as usize)).collect())
            .ok_or_else(|| bad(format!("tensor '{name}': shape is not a list of sizes")))?;
        let offs: Vec<usize> = field("data_offsets")?
            .as_array()
            .and_then(|a| a.iter().map(|x| x.as_u64().map(|u| u as usize)).collect())
            .filter(|o: &Vec<usize>| o.len() == 2)
            .ok_or_else(|| bad(format!("tensor '{name}': data_offsets is not [begin, end]")))?;
        let (b, e) = (offs[0], offs[1]);
        if b > e || e > data_len {
            return Err(bad(format!(
                "tensor '{name}' spans bytes {b}..{e} of a {data_len}-byte data section (truncated file?)"
            )));
        }
        if let Some(size) = dtype.size() {
            // Checked: a corrupt shape must be an error, not an overflow (tests/fuzz regression).
            let want = shape.iter().try_fold(size, |acc, &d| acc.checked_mul(d));
            if want != Some(e - b) {
                let need = want.map_or_else(|| "more than 2^64".to_string(), |w| w.to_string());
                return Err(bad(format!("tensor '{name}' has {} bytes but {dtype_s} {shape:?} needs {need}", e - b)));
            }
        }
        tensors.insert(name, TensorInfo { dtype, shape, start: data_start + b, end: data_start + e });
    }
    Ok((tensors, metadata))
}

/// Writes f32 tensors as a safetensors file (sorted keys, 8-byte aligned header), through a
/// temporary file renamed into place.
pub fn write_f32(path: &Path, tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>) -> std::io::Result<()> {
    let mut header = serde_json::Map::new();
    let mut at = 0usize;
    for (name, (shape, data)) in tensors {
        let len = data.len() * 4;
        header.insert(name.clone(), serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [at, at + len]}));
        at += len;
    }
    let mut h = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + at);
    out.extend((h.len() as u64).to_le_bytes());
    out.extend(h);
    for (_, data) in tensors.values() {
        out.extend(bytemuck::cast_slice::<f32, u8>(data));
    }
    let tmp = path.with_extension("safetensors.partial");
    std::fs::write(&tmp, out)?;
    std::fs::rename(tmp, path)
}
