//! PyTorch `.bin` / `.pt` checkpoints (the zip format of `torch.save`, torch ≥ 1.6), read
//! without Python and without running the pickle (see `pickle.rs`).
//!
//! Layout: an uncompressed ("stored") zip whose entries share one top folder: `data.pkl` (the
//! state dict, pickled), `data/<key>` (each storage's raw little-endian bytes, 64-byte
//! aligned), `byteorder`, `version`, … torch writes the local headers with a data descriptor
//! (sizes zero there), so sizes come from the central directory; it pads alignment with the
//! local header's extra field, so data offsets come from the local header. Files over 4 GiB
//! (fp32 UNets) use zip64 records.
//!
//! The result has the same surface as [`SafeTensors`](super::SafeTensors): `tensors` maps each
//! key to a [`TensorInfo`] whose bytes [`TorchBin::bytes`] returns, contiguous and
//! little-endian. Tensors that are plain slices of a storage (the norm, including several
//! sharing one storage at different offsets) are served from the memory map; the rare
//! non-contiguous one (e.g. a transposed view saved as is) is gathered into memory at open.

use super::pickle::{self, StorageType, TensorRef};
use super::{StoredDType, TensorInfo, WeightError};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub struct TorchBin {
    pub path: PathBuf,
    mmap: memmap2::Mmap,
    /// Gathered copies of non-contiguous tensors; see [`TorchBin::bytes`].
    gathered: Vec<u8>,
    pub tensors: BTreeMap<String, TensorInfo>,
}

impl TorchBin {
    pub fn open(path: &Path) -> Result<TorchBin, WeightError> {
        let io = |e: std::io::Error| WeightError::Io { path: path.to_path_buf(), msg: e.to_string() };
        let bad = |msg: String| WeightError::Malformed { path: path.to_path_buf(), msg };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: read-only map; see SafeTensors::open for the shared truncation caveat.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        if mmap.starts_with(&[0x80, 0x02, 0x8a, 0x0a]) {
            return Err(bad("this is the legacy (torch < 1.6) torch.save format, which t2v does not read; \
                            re-save it with a recent torch or convert it to safetensors"
                .into()));
        }
        let entries = zip_entries(&mmap).map_err(bad)?;
        let pkl_names: Vec<&String> = entries.keys().filter(|n| n.ends_with("data.pkl") && n.matches('/').count() == 1).collect();
        let pkl_name = match pkl_names.as_slice() {
            [one] => (*one).clone(),
            [] => return Err(bad("no <folder>/data.pkl in the zip: not a torch.save checkpoint".into())),
            _ => return Err(bad(format!("several data.pkl entries: {pkl_names:?}"))),
        };
        let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
        if let Some(r) = entries.get(&format!("{prefix}byteorder")) {
            if &mmap[r.clone()] != b"little" {
                return Err(bad(format!("byteorder is {:?}; t2v reads little-endian checkpoints", String::from_utf8_lossy(&mmap[r.clone()]))));
            }
        }
        let state = pickle::load_state_dict(&mmap[entries[&pkl_name].clone()]).map_err(bad)?;

        let mut tensors = BTreeMap::new();
        let mut gathered = Vec::new();
        for (key, t) in state {
            let entry = format!("{prefix}data/{}", t.storage.key);
            let range = entries
                .get(&entry)
                .ok_or_else(|| bad(format!("tensor '{key}': its storage '{entry}' is not in the zip")))?
                .clone();
            let info = place(&key, &t, range, &mmap, mmap.len(), &mut gathered).map_err(bad)?;
            tensors.insert(key, info);
        }
        Ok(TorchBin { path: path.to_path_buf(), mmap, gathered, tensors })
    }

    /// The tensor's bytes, contiguous row-major. Ranges past the end of the file address the
    /// gathered copies (that keeps `TensorInfo` the same plain byte range as for safetensors).
    pub fn bytes(&self, info: &TensorInfo) -> &[u8] {
        let n = self.mmap.len();
        if info.start >= n {
            &self.gathered[info.start - n..info.end - n]
        } else {
            &self.mmap[info.start..info.end]
        }
    }
}

fn stored_dtype(s: StorageType) -> StoredDType {
    StoredDType::parse(s.dtype_name())
}

/// Where a tensor's bytes are: a slice of its storage if it is contiguous, else a gathered copy.
fn place(
    key: &str,
    t: &TensorRef,
    storage: std::ops::Range<usize>,
    file: &[u8],
    file_len: usize,
    gathered: &mut Vec<u8>,
) -> Result<TensorInfo, String> {
    let es = t.storage.dtype.element_size();
    let storage_bytes = storage.end - storage.start;
    let numel_bytes = t.storage.numel.checked_mul(es).ok_or_else(|| format!("tensor '{key}': storage size overflows"))?;
    if storage_bytes < numel_bytes {
        return Err(format!(
            "tensor '{key}': storage '{}' has {storage_bytes} bytes but {} × {es}-byte elements were promised (truncated file?)",
            t.storage.key, t.storage.numel
        ));
    }
    let count = t.size.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| format!("tensor '{key}': size overflows"))?;
    let dtype = stored_dtype(t.storage.dtype);
    if count == 0 {
        return Ok(TensorInfo { dtype, shape: t.size.clone(), start: storage.start, end: storage.start });
    }
    // Highest element index the view touches; every index must lie inside the storage.
    let last = t.size.iter().zip(&t.stride).try_fold(t.offset, |a, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| a.checked_add(x)));
    match last {
        Some(l) if l < t.storage.numel => {}
        _ => {
            return Err(format!(
                "tensor '{key}': size {:?}, stride {:?} at offset {} reaches past its storage of {} elements",
                t.size, t.stride, t.offset, t.storage.numel
            ))
        }
    }
    let base = storage.start;
    if is_contiguous(&t.size, &t.stride) {
        let start = base + t.offset * es;
        return Ok(TensorInfo { dtype, shape: t.size.clone(), start, end: start + count * es });
    }
    let start = file_len + gathered.len();
    gathered.reserve(count * es);
    let mut index = vec![0usize; t.size.len()];
    for _ in 0..count {
        let elem = t.offset + index.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
        let at = base + elem * es;
        gathered.extend_from_slice(&file[at..at + es]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.size[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(TensorInfo { dtype, shape: t.size.clone(), start, end: start + count * es })
}

/// Row-major contiguity; the stride of a size-1 dimension never matters.
fn is_contiguous(size: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&d, &s) in size.iter().zip(stride).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}

fn le16(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as u64)
}
fn le32(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64)
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes)
}

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;

/// Name → byte range of each stored entry, from the central directory.
fn zip_entries(b: &[u8]) -> Result<HashMap<String, std::ops::Range<usize>>, String> {
    let truncated = "no zip end-of-central-directory record: the file is truncated or is not a torch.save checkpoint";
    // The EOCD record is 22 bytes plus a comment of at most 65,535 bytes, at the very end.
    let lowest = b.len().saturating_sub(22 + 65_535);
    let eocd = (lowest..=b.len().saturating_sub(22)).rev().find(|&i| le32(b, i) == Some(EOCD as u64)).ok_or(truncated)?;
    let field = |at: usize| le16(b, eocd + at).ok_or(truncated);
    let mut count = field(10)?;
    let mut cd_size = le32(b, eocd + 12).ok_or(truncated)?;
    let mut cd_offset = le32(b, eocd + 16).ok_or(truncated)?;
    if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        let loc = eocd.checked_sub(20).filter(|&l| le32(b, l) == Some(ZIP64_LOCATOR as u64)).ok_or("zip64 locator missing")?;
        let rec = le64(b, loc + 8).ok_or("zip64 locator cut short")? as usize;
        if le32(b, rec) != Some(ZIP64_EOCD as u64) {
            return Err("zip64 end-of-central-directory record missing (truncated file?)".into());
        }
        count = le64(b, rec + 32).ok_or(truncated)?;
        cd_size = le64(b, rec + 40).ok_or(truncated)?;
        cd_offset = le64(b, rec + 48).ok_or(truncated)?;
    }
    let cd_end = (cd_offset as usize).checked_add(cd_size as usize).filter(|&e| e <= b.len()).ok_or(truncated)?;
    let mut at = cd_offset as usize;
    let mut out = HashMap::new();
    for _ in 0..count {
        let cut = || format!("central directory entry at byte {at} is cut short (truncated file?)");
        if at + 46 > cd_end || le32(b, at) != Some(CENTRAL as u64) {
            return Err(format!("bad central directory entry at byte {at} (truncated or corrupt file)"));
        }
        let method = le16(b, at + 10).ok_or_else(cut)?;
        let mut csize = le32(b, at + 20).ok_or_else(cut)?;
        let mut usize_ = le32(b, at + 24).ok_or_else(cut)?;
        let name_len = le16(b, at + 28).ok_or_else(cut)? as usize;
        let extra_len = le16(b, at + 30).ok_or_else(cut)? as usize;
        let comment_len = le16(b, at + 32).ok_or_else(cut)? as usize;
        let mut local = le32(b, at + 42).ok_or_else(cut)?;
        let name_bytes = b.get(at + 46..at + 46 + name_len).ok_or_else(cut)?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let extra = b.get(at + 46 + name_len..at + 46 + name_len + extra_len).ok_or_else(cut)?;
        // zip64 extended information: present fields are those whose 32-bit value is all ones.
        let mut e = 0;
        while e + 4 <= extra.len() {
            let id = le16(extra, e).unwrap_or(0);
            let len = le16(extra, e + 2).unwrap_or(0) as usize;
            if id == 1 {
                let mut p = e + 4;
                for v in [&mut usize_, &mut csize, &mut local] {
                    if *v == 0xFFFF_FFFF {
                        *v = le64(extra, p).ok_or_else(cut)?;
                        p += 8;
                    }
                }
            }
            e += 4 + len;
        }
        if method != 0 {
            return Err(format!("zip entry '{name}' is compressed (method {method}); torch.save writes stored entries"));
        }
        if csize != usize_ {
            return Err(format!("zip entry '{name}': stored entry with differing sizes {csize} / {usize_}"));
        }
        let local = local as usize;
        if le32(b, local) != Some(LOCAL as u64) {
            return Err(format!("zip entry '{name}': no local header at byte {local} (truncated or corrupt file)"));
        }
        let lname = le16(b, local + 26).ok_or(truncated)? as usize;
        let lextra = le16(b, local + 28).ok_or(truncated)? as usize;
        let start = local + 30 + lname + lextra;
        let end = start.checked_add(csize as usize).filter(|&e| e <= b.len()).ok_or_else(|| {
            format!("zip entry '{name}' needs bytes {start}..{} but the file has {} (truncated file?)", start as u64 + csize, b.len())
        })?;
        out.insert(name, start..end);
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}
