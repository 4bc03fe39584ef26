//! Reading the diffusers dumps in tests/fixtures (made by tools/reference/make_fixtures.py).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use t2v::weights::{SafeTensors, StoredDType};
use t2v::Tensor;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// One module call captured by a forward hook: inputs (`arg0`, `kw.<name>`), outputs (`out`,
/// `out.0`, `out.<field>`), and non-tensor arguments in the metadata.
pub struct Dump {
    pub name: String,
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f64>)>,
    pub meta: BTreeMap<String, String>,
}

pub fn dump(file: &str) -> Dump {
    dump_at(&fixtures().join("modules").join(format!("{file}.safetensors")), file)
}

/// A dump file anywhere under tests/fixtures (f32, f16 and i64 tensors, read as f64).
pub fn dump_at(path: &std::path::Path, file: &str) -> Dump {
    let st = SafeTensors::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut tensors = BTreeMap::new();
    for (k, info) in &st.tensors {
        let b = st.bytes(info);
        let v: Vec<f64> = match &info.dtype {
            StoredDType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(b).iter().map(|&x| x as f64).collect(),
            StoredDType::F16 => bytemuck::pod_collect_to_vec::<u8, half::f16>(b).iter().map(|&x| x.to_f64()).collect(),
            StoredDType::Other(d) if d == "I64" => bytemuck::pod_collect_to_vec::<u8, i64>(b).iter().map(|&x| x as f64).collect(),
            d => panic!("{file}: tensor {k} has unexpected dtype {d:?}"),
        };
        tensors.insert(k.clone(), (info.shape.clone(), v));
    }
    Dump { name: file.into(), tensors, meta: st.metadata.clone() }
}

impl Dump {
    pub fn get(&self, k: &str) -> &(Vec<usize>, Vec<f64>) {
        self.tensors.get(k).unwrap_or_else(|| panic!("{}: no tensor '{k}' (has {:?})", self.name, self.tensors.keys().collect::<Vec<_>>()))
    }
    pub fn host(&self, k: &str) -> Vec<f32> {
        self.get(k).1.iter().map(|&x| x as f32).collect()
    }
    pub fn want(&self, k: &str) -> &[f64] {
        &self.get(k).1
    }
    /// Uploads an f32 input to the test device.
    pub fn input(&self, k: &str) -> Tensor {
        let (shape, _) = self.get(k);
        Tensor::from_f32(&super::gpu(), shape, &self.host(k)).expect("upload fixture")
    }
    pub fn meta_usize(&self, k: &str) -> usize {
        let v = self.meta.get(k).unwrap_or_else(|| panic!("{}: no metadata '{k}'", self.name));
        v.trim_matches('"').parse().unwrap_or_else(|_| panic!("{}: metadata {k}={v} is not a number", self.name))
    }
    /// Checks a device output against a dumped tensor.
    #[track_caller]
    pub fn check(&self, k: &str, got: &Tensor, tol: f64) {
        let (shape, want) = self.get(k);
        assert_eq!(got.shape(), &shape[..], "{}: shape of {k}", self.name);
        super::assert_close(&format!("{} {k}", self.name), &got.to_f32().expect("download"), want, tol);
    }
}

/// A tensor as stored: name, safetensors dtype string, shape, raw bytes.
pub type Raw = (String, String, Vec<usize>, Vec<u8>);

/// Every tensor of a safetensors file, raw.
pub fn read_raw(path: &std::path::Path) -> Vec<Raw> {
    let st = SafeTensors::open(path).unwrap();
    st.tensors
        .iter()
        .map(|(k, i)| {
            let dt = match &i.dtype {
                StoredDType::F32 => "F32".to_string(),
                StoredDType::F16 => "F16".to_string(),
                StoredDType::BF16 => "BF16".to_string(),
                StoredDType::Other(s) => s.clone(),
            };
            (k.clone(), dt, i.shape.clone(), st.bytes(i).to_vec())
        })
        .collect()
}

/// Writes a safetensors file (independent of the engine's reader, for corruption tests).
pub fn write_raw(path: &std::path::Path, tensors: &[Raw]) {
    let mut header = serde_json::Map::new();
    let mut at = 0usize;
    for (name, dt, shape, bytes) in tensors {
        header.insert(name.clone(), serde_json::json!({"dtype": dt, "shape": shape, "data_offsets": [at, at + bytes.len()]}));
        at += bytes.len();
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    for (_, _, _, b) in tensors {
        out.extend(b);
    }
    std::fs::write(path, out).unwrap();
}

/// A scratch copy of a fixture component folder (config + weights) under target/.
pub fn scratch_copy(component: &str, tag: &str) -> PathBuf {
    let src = fixtures().join(component);
    let dst = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{tag}", component.replace('/', "-")));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

/// The procedural test image of clip_fixtures.py's `image(h, w, seed)`, same integer recipe.
pub fn image(h: usize, w: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(h * w * 3);
    for y in 0..h as u64 {
        for x in 0..w as u64 {
            for c in 0..3u64 {
                let mut z = ((y * w as u64 + x) * 3 + c).wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                let noise = (z >> 56) as i64;
                let block = (((x / 5 + y / 7 + c) % 2) * 255) as i64;
                out.push(((3 * block + noise) / 4) as u8);
            }
        }
    }
    out
}
