//! Checkpoint weights: safetensors files of one component (unet/, vae/, text_encoder/),
//! parameters bound by their state-dict keys, uploaded in the device dtype the model asks for.
//! Every key must be used exactly once: missing, mis-shaped and unexpected keys are errors that
//! name the key and the file.

pub mod hub;
pub mod pickle;
mod safetensors;
pub mod stream;
pub mod tiny_random;
mod torch_bin;

pub use safetensors::{parse_header as parse_safetensors_header, write_f32, SafeTensors, TensorInfo};
pub use torch_bin::TorchBin;

use crate::error::Result;
use crate::gpu::Gpu;
use crate::tensor::{DType, Tensor};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredDType {
    F32,
    F16,
    BF16,
    Other(String),
}

impl StoredDType {
    pub fn parse(s: &str) -> StoredDType {
        match s {
            "F32" => StoredDType::F32,
            "F16" => StoredDType::F16,
            "BF16" => StoredDType::BF16,
            o => StoredDType::Other(o.to_string()),
        }
    }
    pub fn size(&self) -> Option<usize> {
        match self {
            StoredDType::F32 => Some(4),
            StoredDType::F16 | StoredDType::BF16 => Some(2),
            StoredDType::Other(_) => None,
        }
    }
    pub fn name(&self) -> &str {
        match self {
            StoredDType::F32 => "f32",
            StoredDType::F16 => "f16",
            StoredDType::BF16 => "bf16",
            StoredDType::Other(s) => s,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("{path}: {msg}")]
    Io { path: PathBuf, msg: String },
    #[error("{path}: malformed weights: {msg}")]
    Malformed { path: PathBuf, msg: String },
    #[error("{component}: missing weight '{key}' (looked in {files})")]
    Missing { component: String, key: String, files: String },
    #[error("{path}: weight '{key}' has shape {found:?}, expected {expected:?}")]
    Shape { path: PathBuf, key: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("{path}: weight '{key}' is stored as {dtype}; t2v reads f32, f16 and bf16")]
    DType { path: PathBuf, key: String, dtype: String },
    #[error("{component}: {count} unexpected weight(s) not used by the model, e.g. {examples} (wrong config.json for these weights?)")]
    Unexpected { component: String, count: usize, examples: String },
    #[error("{path}: no weights found: {msg}")]
    NotFound { path: PathBuf, msg: String },
    #[error("{path}: weight '{key}' holds values up to {max:e}, beyond f16's range (±65504); load this component with f32 weights")]
    F16Range { path: PathBuf, key: String, max: f32 },
}

/// How a component's parameters live on the device: matrices (linear and conv weights) in
/// `matrices`; vectors (biases, norm gains) always f32 — they are tiny and feed f32 math.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub matrices: DType,
}

/// One checkpoint file: safetensors, or a PyTorch `.bin` (zip + pickle, read without running
/// anything).
pub enum WeightFile {
    Safe(SafeTensors),
    Bin(TorchBin),
}

impl WeightFile {
    pub fn open(path: &Path) -> Result<WeightFile> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        Ok(if ext == "bin" || ext == "pt" || ext == "pth" {
            WeightFile::Bin(TorchBin::open(path)?)
        } else {
            WeightFile::Safe(SafeTensors::open(path)?)
        })
    }
    pub fn path(&self) -> &Path {
        match self {
            WeightFile::Safe(f) => &f.path,
            WeightFile::Bin(f) => &f.path,
        }
    }
    pub fn tensors(&self) -> &BTreeMap<String, TensorInfo> {
        match self {
            WeightFile::Safe(f) => &f.tensors,
            WeightFile::Bin(f) => &f.tensors,
        }
    }
    pub fn bytes(&self, info: &TensorInfo) -> &[u8] {
        match self {
            WeightFile::Safe(f) => f.bytes(info),
            WeightFile::Bin(f) => f.bytes(info),
        }
    }
}

/// Alternative spellings of a key in older checkpoints (2023-era VAE attention).
const LEGACY: [(&str, &str); 4] = [(".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.")];

/// Synthetic parameters made so far: key → (shape, values), so a key asked twice is the same.
type SyntheticValues = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

pub struct Weights {
    pub component: String,
    gpu: Arc<Gpu>,
    /// Instead of files: every requested key gets deterministic random values, recorded so they
    /// can be written out (how `tiny-random` is made: the model code is the key list).
    synthetic: Option<Mutex<SyntheticValues>>,
    files: Vec<WeightFile>,
    index: BTreeMap<String, usize>,
    used: Mutex<BTreeSet<String>>,
    pub placement: Placement,
    /// Streamed parameters whose stored dtype is not the device's, converted once: key →
    /// device bytes (see [`streamed`](Self::streamed)).
    host_copies: Mutex<BTreeMap<String, Arc<Vec<u8>>>>,
    /// Inside [`streamed`](Self::streamed): conversions are kept in `host_copies`.
    streaming: std::sync::atomic::AtomicBool,
}

impl Weights {
    /// Opens every tensor file of a component folder. Prefers `*.safetensors` without a variant
    /// suffix, then the `.fp16` variant; a sharded `*.index.json` names its shards.
    pub fn open_dir(gpu: &Arc<Gpu>, dir: &Path, placement: Placement) -> Result<Weights> {
        let files = find_weight_files(dir)?;
        Weights::open_files(gpu, &dir.display().to_string(), &files, placement)
    }

    pub fn open_files(gpu: &Arc<Gpu>, component: &str, paths: &[PathBuf], placement: Placement) -> Result<Weights> {
        let mut files = Vec::new();
        let mut index = BTreeMap::new();
        for p in paths {
            let st = WeightFile::open(p)?;
            for k in st.tensors().keys() {
                index.insert(k.clone(), files.len());
            }
            files.push(st);
        }
        Ok(Weights {
            component: component.into(),
            gpu: gpu.clone(),
            synthetic: None,
            files,
            index,
            used: Default::default(),
            placement,
            host_copies: Default::default(),
            streaming: Default::default(),
        })
    }

    /// Random weights for whatever the model asks for (see `synthetic` above).
    pub fn synthetic(gpu: &Arc<Gpu>, component: &str, placement: Placement) -> Weights {
        Weights {
            component: component.into(),
            gpu: gpu.clone(),
            synthetic: Some(Mutex::new(BTreeMap::new())),
            files: Vec::new(),
            index: BTreeMap::new(),
            used: Default::default(),
            placement,
            host_copies: Default::default(),
            streaming: Default::default(),
        }
    }

    /// Runs `load` (a streamed unit's upload) keeping every parameter it converts (bf16 or f32
    /// stored, f16 on the device) as a host copy in the device dtype, so later uploads of the
    /// unit are a copy, not a conversion. Same-dtype parameters upload from the mapped file.
    pub fn streamed<T>(&self, load: impl FnOnce() -> Result<T>) -> Result<T> {
        use std::sync::atomic::Ordering::Relaxed;
        let was = self.streaming.swap(true, Relaxed);
        let r = load();
        self.streaming.store(was, Relaxed);
        r
    }

    /// Bytes of converted host copies kept for streaming (host memory, not device).
    pub fn host_copy_bytes(&self) -> u64 {
        self.host_copies.lock().unwrap_or_else(|p| p.into_inner()).values().map(|v| v.len() as u64).sum()
    }

    /// Marks every stored key under `prefix.` as used: a unit that streams is checked when
    /// the pipeline opens its folder and uploaded only when it runs.
    pub fn defer(&self, prefix: &str) {
        let dotted = format!("{prefix}.");
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        for k in self.index.keys().filter(|k| k.starts_with(&dotted)) {
            used.insert(k.clone());
        }
    }

    /// The synthetic parameters handed out so far (empty for file-backed weights).
    pub fn synthesized(&self) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
        self.synthetic.as_ref().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone()).unwrap_or_default()
    }

    /// Records a synthetic parameter's shape without making values (planning).
    fn synthetic_shape(&self, key: &str, shape: &[usize]) {
        if let Some(m) = &self.synthetic {
            m.lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_string()).or_insert_with(|| (shape.to_vec(), Vec::new()));
        }
    }

    fn synth(&self, key: &str, shape: &[usize]) -> Option<Vec<f32>> {
        let mut map = self.synthetic.as_ref()?.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(key.to_string()).or_insert_with(|| (shape.to_vec(), random_init(key, shape)));
        Some(entry.1.clone())
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// Every stored key with its dtype and shape (for `t2v inspect`).
    pub fn entries(&self) -> impl Iterator<Item = (&String, &TensorInfo)> {
        self.files.iter().flat_map(|f| f.tensors().iter())
    }

    /// The stored shape of `key` (None for synthetic weights or a missing key): for models whose
    /// widths are read from the checkpoint (RAFT).
    pub fn stored_shape(&self, key: &str) -> Option<Vec<usize>> {
        self.lookup(key).map(|(_, _, info)| info.shape.clone())
    }

    /// Whether the weights are synthetic (made up per key, nothing stored).
    pub fn is_synthetic(&self) -> bool {
        self.synthetic.is_some()
    }

    /// Whether `key` can be provided (always, for synthetic weights).
    pub fn contains(&self, key: &str) -> bool {
        self.synthetic.is_some() || self.lookup(key).is_some()
    }

    fn lookup(&self, key: &str) -> Option<(String, &WeightFile, &TensorInfo)> {
        let mut candidates = vec![key.to_string()];
        for (new, old) in LEGACY {
            if key.contains(new) {
                candidates.push(key.replacen(new, old, 1));
            }
        }
        candidates.into_iter().find_map(|k| {
            let f = &self.files[*self.index.get(&k)?];
            let info = f.tensors().get(&k)?;
            Some((k, f, info))
        })
    }

    /// The stored values of `key` as f32 on the host, checked against `shape`.
    pub fn host_f32(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        if let Some(v) = self.synth(key, shape) {
            return Ok(v);
        }
        let (stored, file, info) = self.find(key, shape)?;
        let bytes = file.bytes(info);
        let v = match &info.dtype {
            StoredDType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(bytes),
            StoredDType::F16 => bytemuck::pod_collect_to_vec::<u8, half::f16>(bytes).iter().map(|h| h.to_f32()).collect(),
            StoredDType::BF16 => bytemuck::pod_collect_to_vec::<u8, half::bf16>(bytes).iter().map(|h| h.to_f32()).collect(),
            StoredDType::Other(d) => {
                return Err(WeightError::DType { path: file.path().to_path_buf(), key: stored, dtype: d.clone() }.into());
            }
        };
        self.used.lock().unwrap_or_else(|p| p.into_inner()).insert(stored);
        Ok(v)
    }

    fn find(&self, key: &str, shape: &[usize]) -> Result<(String, &WeightFile, &TensorInfo)> {
        let (stored, file, info) = self.lookup(key).ok_or_else(|| WeightError::Missing {
            component: self.component.clone(),
            key: key.into(),
            files: self.files.iter().map(|f| f.path().display().to_string()).collect::<Vec<_>>().join(", "),
        })?;
        // Legacy attention projections were 1×1 convs: [C, C, 1, 1] stands for [C, C].
        let squeezed: Vec<usize> = if stored != key { info.shape.iter().copied().filter(|&d| d != 1).collect() } else { info.shape.clone() };
        let want: Vec<usize> = if stored != key { shape.iter().copied().filter(|&d| d != 1).collect() } else { shape.to_vec() };
        if squeezed != want {
            return Err(WeightError::Shape { path: file.path().to_path_buf(), key: stored, expected: shape.to_vec(), found: info.shape.clone() }.into());
        }
        Ok((stored, file, info))
    }

    /// A parameter on the device: matrices (≥ 2-D) in the placement's dtype, vectors in f32.
    pub fn tensor(&self, key: &str, shape: &[usize]) -> Result<Tensor> {
        let dtype = if shape.len() >= 2 { self.placement.matrices } else { DType::F32 };
        self.tensor_as(key, shape, dtype)
    }

    pub fn tensor_as(&self, key: &str, shape: &[usize], dtype: DType) -> Result<Tensor> {
        if self.synthetic.is_some() && self.gpu.is_planning() {
            // A plan needs shapes only: no values, not even on the host.
            self.synthetic_shape(key, shape);
            return Tensor::empty(&self.gpu, shape, dtype);
        }
        if self.synthetic.is_some() && self.streaming.load(std::sync::atomic::Ordering::Relaxed) {
            // Synthetic weights streamed (benchmarks): a host copy in the device dtype, as for files.
            return self.upload_host_copy(key, shape, dtype, || Ok(device_bytes(&self.synth(key, shape).unwrap_or_default(), dtype)));
        }
        if let Some(v) = self.synth(key, shape) {
            return match dtype {
                DType::F32 => Tensor::from_f32(&self.gpu, shape, &v),
                DType::F16 => Tensor::from_f32_as_f16(&self.gpu, shape, &v),
            };
        }
        let (stored, file, info) = self.find(key, shape)?;
        if self.gpu.is_planning() {
            // Checking a folder on a planning device (keys, shapes, dtypes): nothing is read or
            // uploaded, so a 28 GB checkpoint is not paged in just to be checked.
            if let StoredDType::Other(d) = &info.dtype {
                return Err(WeightError::DType { path: file.path().to_path_buf(), key: stored, dtype: d.clone() }.into());
            }
            self.used.lock().unwrap_or_else(|p| p.into_inner()).insert(stored);
            return Tensor::empty(&self.gpu, shape, dtype);
        }
        let bytes = file.bytes(info);
        // Same dtype on both sides: upload the mapped bytes as they are.
        let t = match (&info.dtype, dtype) {
            (StoredDType::F16, DType::F16) => {
                Tensor::from_f16(&self.gpu, shape, &bytemuck::pod_collect_to_vec::<u8, half::f16>(bytes))?
            }
            (StoredDType::F32, DType::F32) => Tensor::from_f32(&self.gpu, shape, &bytemuck::pod_collect_to_vec::<u8, f32>(bytes))?,
            // Converted (bf16 → f16, f32 ↔ f16): once into a kept host copy when streamed.
            _ if self.streaming.load(std::sync::atomic::Ordering::Relaxed) => {
                self.upload_host_copy(&stored, shape, dtype, || self.converted(key, shape, &stored, file, dtype))?
            }
            _ => {
                let t = Tensor::empty(&self.gpu, shape, dtype)?;
                t.write_raw(&self.converted(key, shape, &stored, file, dtype)?)?;
                t
            }
        };
        self.used.lock().unwrap_or_else(|p| p.into_inner()).insert(stored);
        Ok(t)
    }

    /// `key`'s values in the device `dtype` as bytes, f16 range-checked: an f32 or bf16 value of
    /// 65520 or more rounds to ±inf in f16.
    fn converted(&self, key: &str, shape: &[usize], stored: &str, file: &WeightFile, dtype: DType) -> Result<Vec<u8>> {
        let v = self.host_f32(key, shape)?;
        if dtype == DType::F16 {
            let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            if max >= 65520.0 {
                return Err(WeightError::F16Range { path: file.path().to_path_buf(), key: stored.to_string(), max }.into());
            }
        }
        Ok(device_bytes(&v, dtype))
    }

    /// A tensor uploaded from the host copy kept under `key` (made by `make` the first time).
    fn upload_host_copy(&self, key: &str, shape: &[usize], dtype: DType, make: impl FnOnce() -> Result<Vec<u8>>) -> Result<Tensor> {
        let cached = self.host_copies.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned();
        let bytes = match cached {
            Some(b) => b,
            None => {
                let b = Arc::new(make()?);
                self.host_copies.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_string(), b.clone());
                b
            }
        };
        let t = Tensor::empty(&self.gpu, shape, dtype)?;
        t.write_raw(&bytes)?;
        Ok(t)
    }

    /// A matrix [n, k] uploaded as column blocks [n, kᵢ] (`widths` summing to k), in the
    /// placement's dtype: for a weight whose rows are too long to bind whole, multiplied
    /// against matching column blocks of its input and the partial products summed.
    pub fn column_blocks(&self, key: &str, shape: [usize; 2], widths: &[usize]) -> Result<Vec<Tensor>> {
        let [n, k] = shape;
        if widths.iter().sum::<usize>() != k {
            return crate::error::shape_err("column_blocks", format!("{key}: block widths {widths:?} do not sum to {k}"));
        }
        let dtype = self.placement.matrices;
        if self.synthetic.is_some() && self.gpu.is_planning() {
            self.synthetic_shape(key, &shape);
            return widths.iter().map(|&w| Tensor::empty(&self.gpu, &[n, w], dtype)).collect();
        }
        let v = self.host_f32(key, &shape)?;
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if dtype == DType::F16 && max >= 65520.0 {
            let path = self.lookup(key).map(|(_, f, _)| f.path().to_path_buf()).unwrap_or_else(|| self.component.clone().into());
            return Err(WeightError::F16Range { path, key: key.into(), max }.into());
        }
        let mut out = Vec::with_capacity(widths.len());
        let mut at = 0;
        for &w in widths {
            let block: Vec<f32> = v.chunks(k).flat_map(|row| row[at..at + w].iter().copied()).collect();
            out.push(match dtype {
                DType::F32 => Tensor::from_f32(&self.gpu, &[n, w], &block)?,
                DType::F16 => Tensor::from_f32_as_f16(&self.gpu, &[n, w], &block)?,
            });
            at += w;
        }
        Ok(out)
    }

    /// Marks a stored key as known and unused (buffers like CLIP's `position_ids`).
    pub fn ignore(&self, key: &str) {
        self.used.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_string());
    }

    /// Checks that `key` exists with `shape` without loading it, and marks it used.
    pub fn check(&self, key: &str, shape: &[usize]) -> Result<()> {
        if self.synthetic.is_some() {
            if self.gpu.is_planning() {
                self.synthetic_shape(key, shape);
            } else {
                self.synth(key, shape);
            }
            return Ok(());
        }
        let (stored, _, _) = self.find(key, shape)?;
        self.used.lock().unwrap_or_else(|p| p.into_inner()).insert(stored);
        Ok(())
    }

    /// Selected rows of a 2-D parameter as f32 on the host (embedding lookups).
    pub fn rows_f32(&self, key: &str, shape: &[usize], rows: &[usize]) -> Result<Vec<f32>> {
        if self.synthetic.is_some() && self.gpu.is_planning() {
            return Ok(vec![0.0; rows.len() * shape[1]]);
        }
        if let Some(v) = self.synth(key, shape) {
            let w = shape[1];
            return Ok(rows.iter().flat_map(|&r| v[r * w..(r + 1) * w].to_vec()).collect());
        }
        let (stored, file, info) = self.find(key, shape)?;
        let width = shape[1];
        let es = info.dtype.size().unwrap_or(0);
        let bytes = file.bytes(info);
        let mut out = Vec::with_capacity(rows.len() * width);
        for &r in rows {
            let row = &bytes[r * width * es..(r + 1) * width * es];
            match &info.dtype {
                StoredDType::F32 => out.extend(bytemuck::pod_collect_to_vec::<u8, f32>(row)),
                StoredDType::F16 => out.extend(bytemuck::pod_collect_to_vec::<u8, half::f16>(row).iter().map(|h| h.to_f32())),
                StoredDType::BF16 => out.extend(bytemuck::pod_collect_to_vec::<u8, half::bf16>(row).iter().map(|h| h.to_f32())),
                StoredDType::Other(d) => return Err(WeightError::DType { path: file.path().to_path_buf(), key: stored, dtype: d.clone() }.into()),
            }
        }
        Ok(out)
    }

    /// Errors when the files hold keys the model never asked for.
    pub fn finish(&self) -> Result<()> {
        let used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let unused: Vec<&String> = self.index.keys().filter(|k| !used.contains(*k)).collect();
        if unused.is_empty() {
            return Ok(());
        }
        Err(WeightError::Unexpected {
            component: self.component.clone(),
            count: unused.len(),
            examples: unused.iter().take(5).map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", "),
        }
        .into())
    }

    /// A view that prefixes keys: `w.at("down_blocks.0").at("resnets.1")`.
    pub fn at(&self, prefix: impl std::fmt::Display) -> Scope<'_> {
        Scope { w: self, prefix: prefix.to_string() }
    }
}

/// f32 values as device bytes of `dtype` (f16: round to nearest even, as torch's `.half()`).
fn device_bytes(v: &[f32], dtype: DType) -> Vec<u8> {
    match dtype {
        DType::F32 => bytemuck::cast_slice(v).to_vec(),
        DType::F16 => bytemuck::cast_slice(&v.iter().map(|&x| half::f16::from_f32(x)).collect::<Vec<_>>()).to_vec(),
    }
}

/// Deterministic initial values for a synthetic parameter, seeded by its key: matrices
/// N(0, 1/fan_in), norm gains 1 + N(0, 0.1²), biases N(0, 0.05²), embeddings N(0, 0.5²) — so
/// activations stay O(1) through a random network, as in tools/reference's fixtures.
fn random_init(key: &str, shape: &[usize]) -> Vec<f32> {
    let mut state = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    let mut normal = move || {
        let mut next = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let (u1, u2) = (next().max(1e-300), next());
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    };
    let n: usize = shape.iter().product();
    let (mean, sd) = if key.contains("embedding") {
        (0.0, 0.5)
    } else if shape.len() >= 2 {
        (0.0, 1.0 / (shape[1..].iter().product::<usize>() as f32).sqrt())
    } else if key.ends_with("weight") {
        (1.0, 0.1)
    } else {
        (0.0, 0.05)
    };
    (0..n).map(|_| mean + sd * normal()).collect()
}

/// Weights under a key prefix, so model code reads like the state dict.
#[derive(Clone)]
pub struct Scope<'a> {
    pub w: &'a Weights,
    pub prefix: String,
}

impl<'a> Scope<'a> {
    pub fn at(&self, name: impl std::fmt::Display) -> Scope<'a> {
        Scope { w: self.w, prefix: self.key(&name.to_string()) }
    }
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.w.tensor(&self.key(name), shape)
    }
    pub fn vector(&self, name: &str, len: usize) -> Result<Tensor> {
        self.w.tensor_as(&self.key(name), &[len], DType::F32)
    }
    pub fn has(&self, name: &str) -> bool {
        self.w.contains(&self.key(name))
    }
}

/// The weight files of a diffusers/transformers component folder, in the order Python's
/// loaders prefer them: full precision first, then the `fp16` variant; single file or shards.
fn find_weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let not_found = |msg: String| WeightError::NotFound { path: dir.to_path_buf(), msg };
    for variant in ["", ".fp16"] {
        for stem in ["diffusion_pytorch_model", "model"] {
            let single = dir.join(format!("{stem}{variant}.safetensors"));
            if single.is_file() {
                return Ok(vec![single]);
            }
            let index = dir.join(format!("{stem}{variant}.safetensors.index.json"));
            if index.is_file() {
                return shards(&index);
            }
        }
    }
    // PyTorch pickles last, as diffusers prefers safetensors (Zeroscope ships only these).
    for variant in ["", ".fp16"] {
        for stem in ["diffusion_pytorch_model", "pytorch_model"] {
            let single = dir.join(format!("{stem}{variant}.bin"));
            if single.is_file() {
                return Ok(vec![single]);
            }
            let index = dir.join(format!("{stem}{variant}.bin.index.json"));
            if index.is_file() {
                return shards(&index);
            }
        }
    }
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| not_found(e.to_string()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    Err(not_found(format!("no (diffusion_pytorch_)model[.fp16].safetensors or .bin here (found: {})", names.join(", "))).into())
}

/// The shard files a `*.index.json` names in its weight_map.
fn shards(index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| WeightError::Io { path: index.to_path_buf(), msg: e.to_string() })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| WeightError::Malformed { path: index.to_path_buf(), msg: e.to_string() })?;
    let files: BTreeSet<String> = json["weight_map"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    if files.is_empty() {
        return Err(WeightError::Malformed { path: index.to_path_buf(), msg: "weight_map names no files".into() }.into());
    }
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut paths = Vec::with_capacity(files.len());
    for name in files {
        let path = dir.join(&name);
        // Shards sit beside their index (transformers and diffusers write bare file names).
        if Path::new(&name).components().count() != 1 || !path.is_file() {
            return Err(WeightError::NotFound {
                path: index.to_path_buf(),
                msg: format!("its weight_map names the shard {name:?}, which is not in {} (an interrupted download?)", dir.display()),
            }
            .into());
        }
        paths.push(path);
    }
    Ok(paths)
}
