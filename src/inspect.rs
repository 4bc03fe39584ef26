//! `t2v inspect`: what a diffusers model folder holds — components, parameter counts, stored
//! dtypes — and the device memory its weights take under t2v's placement rules, read from the
//! safetensors headers alone (no GPU, nothing loaded).

use crate::error::{Bytes, Error, Result};
use crate::weights::{StoredDType, WeightFile};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

pub struct ComponentReport {
    pub name: String,
    pub class: String,
    pub params: u64,
    pub tensors: usize,
    /// Parameters per stored dtype.
    pub dtypes: BTreeMap<String, u64>,
    pub file_bytes: u64,
    /// Device bytes held while loaded, with matrices in f16 / in f32 (vectors always f32;
    /// CLIP's token and position tables and its encoder layers stay on the host).
    pub device_f16: u64,
    pub device_f32: u64,
    /// The largest CLIP encoder layer, on the device only while a prompt is encoded.
    pub streamed_f16: u64,
    pub streamed_f32: u64,
}

/// Parameters of a component that live on the host rather than the device.
fn host_resident(key: &str) -> bool {
    key.ends_with("token_embedding.weight") || key.ends_with("position_embedding.weight") || key.ends_with("position_ids")
}

/// CLIP encoder layers are uploaded one at a time during prompt encoding: the layer index.
fn streamed_layer(key: &str) -> Option<usize> {
    let rest = &key[key.find("encoder.layers.")? + "encoder.layers.".len()..];
    rest.split('.').next()?.parse().ok()
}

pub fn inspect_component(name: &str, class: &str, dir: &Path) -> Result<ComponentReport> {
    let mut r = ComponentReport {
        name: name.into(),
        class: class.into(),
        params: 0,
        tensors: 0,
        dtypes: BTreeMap::new(),
        file_bytes: 0,
        device_f16: 0,
        device_f32: 0,
        streamed_f16: 0,
        streamed_f32: 0,
    };
    let mut layers: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::Other(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors" || x == "bin"))
        .collect();
    files.sort();
    // Variant files (name.fp16.safetensors) duplicate the main ones: count one set, preferring
    // full precision as the loader does.
    let main: Vec<_> = files.iter().filter(|p| !p.file_stem().is_some_and(|s| s.to_string_lossy().contains('.'))).cloned().collect();
    let mut chosen = if main.is_empty() { files } else { main };
    // Folders with both formats hold the same weights twice; count the safetensors.
    if chosen.iter().any(|p| p.extension().is_some_and(|x| x == "safetensors")) {
        chosen.retain(|p| p.extension().is_some_and(|x| x == "safetensors"));
    }
    for path in &chosen {
        let st = WeightFile::open(path)?;
        r.file_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        for (key, info) in st.tensors() {
            let n: u64 = info.shape.iter().product::<usize>() as u64;
            r.params += n;
            r.tensors += 1;
            *r.dtypes.entry(info.dtype.name().to_string()).or_default() += n;
            if host_resident(key) || matches!(info.dtype, StoredDType::Other(_)) {
                continue;
            }
            let matrix = info.shape.len() >= 2;
            let (b16, b32) = (n * if matrix { 2 } else { 4 }, n * 4);
            match streamed_layer(key).filter(|_| name == "text_encoder") {
                Some(i) => {
                    let l = layers.entry(i).or_default();
                    (l.0, l.1) = (l.0 + b16, l.1 + b32);
                }
                None => (r.device_f16, r.device_f32) = (r.device_f16 + b16, r.device_f32 + b32),
            }
        }
    }
    r.streamed_f16 = layers.values().map(|l| l.0).max().unwrap_or(0);
    r.streamed_f32 = layers.values().map(|l| l.1).max().unwrap_or(0);
    Ok(r)
}

/// A report for a pipeline folder (with model_index.json) or a single component folder.
pub fn inspect(dir: &Path) -> Result<String> {
    if !dir.is_dir() {
        return Err(Error::Other(format!("{}: not a model folder (expected a diffusers pipeline or component directory)", dir.display())));
    }
    let mut out = String::new();
    let index = dir.join("model_index.json");
    let mut comps: Vec<(String, String)> = Vec::new();
    if index.is_file() {
        let v: serde_json::Value = crate::config::read_json(&index)?;
        let _ = writeln!(out, "{}: {}", dir.display(), v["_class_name"].as_str().unwrap_or("?"));
        if let Some(m) = v.as_object() {
            for (k, val) in m {
                // `_class_name`, `requires_safety_checker` and components saved as [null, null]
                // are not components.
                let Some(class) = val.as_array().and_then(|a| a.get(1)).and_then(|c| c.as_str()) else {
                    continue;
                };
                if k.starts_with('_') {
                    continue;
                }
                comps.push((k.clone(), class.to_string()));
            }
        }
    } else {
        comps.push((".".into(), "component".into()));
    }
    let (mut total_params, mut total16, mut total32) = (0u64, 0u64, 0u64);
    let _ = writeln!(out, "| component | class | parameters | stored dtypes | on disk | device (f16 weights) | device (f32 weights) |");
    let _ = writeln!(out, "|---|---|---:|---|---:|---:|---:|");
    for (name, class) in comps {
        if name == "safety_checker" || name == "feature_extractor" {
            // Stable Diffusion folders: t2v has no safety checker and never loads these.
            let _ = writeln!(out, "| {name} | {class} | not used by t2v | – | – | – | – |");
            continue;
        }
        let sub = if name == "." { dir.to_path_buf() } else { dir.join(&name) };
        let has_weights = std::fs::read_dir(&sub)
            .map(|rd| rd.filter_map(|e| e.ok()).any(|e| e.path().extension().is_some_and(|x| x == "safetensors" || x == "bin")))
            .unwrap_or(false);
        if !has_weights {
            let _ = writeln!(out, "| {name} | {class} | – | – | – | – | – |");
            continue;
        }
        let r = inspect_component(&name, &class, &sub)?;
        let dt: Vec<String> = r.dtypes.iter().map(|(k, v)| format!("{k} {}", human(*v))).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.class,
            human(r.params),
            dt.join(", "),
            Bytes(r.file_bytes),
            with_layer(r.device_f16, r.streamed_f16),
            with_layer(r.device_f32, r.streamed_f32)
        );
        total_params += r.params;
        total16 += r.device_f16 + r.streamed_f16;
        total32 += r.device_f32 + r.streamed_f32;
    }
    let _ = writeln!(out, "| total | | {} | | | {} | {} |", human(total_params), Bytes(total16), Bytes(total32));
    if let Some(p) = pipeline_for(dir) {
        let _ = writeln!(out, "runs with: {p}");
    }
    Ok(out)
}

fn with_layer(resident: u64, layer: u64) -> String {
    if layer == 0 {
        return Bytes(resident).to_string();
    }
    format!("{} + one layer at a time ({})", Bytes(resident), Bytes(layer))
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.3} B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2} M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// Which t2v pipeline a folder's UNet is for.
fn pipeline_for(dir: &Path) -> Option<&'static str> {
    let v: serde_json::Value = crate::config::read_json(&dir.join("unet/config.json")).ok()?;
    match v["_class_name"].as_str()? {
        "UNet3DConditionModel" => Some("t2v generate --pipeline text-to-video (TextToVideoSDPipeline)"),
        "UNet2DConditionModel" => Some("t2v generate --pipeline text2video-zero (TextToVideoZeroPipeline, Stable Diffusion 1.x)"),
        _ => None,
    }
}
