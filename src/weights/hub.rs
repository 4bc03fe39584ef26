//! Models by name, downloaded from the Hugging Face hub into its standard cache (shared with
//! Python users; HF_HOME and HF_HUB_OFFLINE respected), or a local folder.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Which pipeline family a known model is (its configs ship in the binary for plans).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownFamily {
    /// TextToVideoSDPipeline (ModelScope / Zeroscope) and Stable Diffusion for Text2Video-Zero.
    UNet,
    /// WanPipeline, with the folder of `configs/` holding its architecture.
    Wan(&'static str),
}

/// A published text-to-video model t2v knows by a short name.
pub struct KnownModel {
    pub name: &'static str,
    pub repo: &'static str,
    pub family: KnownFamily,
    /// Files to fetch besides the configs: weights (safetensors variants or PyTorch .bin), or
    /// a sharded component's `*.safetensors.index.json`, whose shards are fetched after it.
    pub weights: &'static [&'static str],
    /// diffusers' recommended size for this model (height, width).
    pub size: (usize, usize),
    pub about: &'static str,
}

pub const MODELS: [KnownModel; 8] = [
    KnownModel {
        name: "zeroscope-576w",
        repo: "cerspense/zeroscope_v2_576w",
        family: KnownFamily::UNet,
        weights: &["text_encoder/pytorch_model.bin", "unet/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.bin"],
        size: (320, 576),
        about: "Zeroscope v2 576w (fp16 .bin), 576×320",
    },
    KnownModel {
        name: "zeroscope-xl",
        repo: "cerspense/zeroscope_v2_XL",
        family: KnownFamily::UNet,
        weights: &["text_encoder/pytorch_model.bin", "unet/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.bin"],
        size: (576, 1024),
        about: "Zeroscope v2 XL (fp16 .bin), 1024×576 (made for upscaling 576w output)",
    },
    KnownModel {
        name: "modelscope-1.7b",
        repo: "ali-vilab/text-to-video-ms-1.7b",
        family: KnownFamily::UNet,
        weights: &[
            "text_encoder/model.fp16.safetensors",
            "unet/diffusion_pytorch_model.fp16.safetensors",
            "vae/diffusion_pytorch_model.fp16.safetensors",
        ],
        size: (256, 256),
        about: "ModelScope text-to-video 1.7B (fp16 variant), 256×256",
    },
    // Text2Video-Zero runs on a text-to-image model; this is the one diffusers' docs use.
    KnownModel {
        name: "text2video-zero",
        repo: "stable-diffusion-v1-5/stable-diffusion-v1-5",
        family: KnownFamily::UNet,
        weights: &[
            "text_encoder/model.fp16.safetensors",
            "unet/diffusion_pytorch_model.fp16.safetensors",
            "vae/diffusion_pytorch_model.fp16.safetensors",
        ],
        size: (512, 512),
        about: "Text2Video-Zero on Stable Diffusion 1.5 (fp16 variant), 512×512, 8 frames",
    },
    // Wan 2.1 (WanPipeline): its Diffusers repos store f32 shards; t2v uploads them in 16 bits.
    KnownModel {
        name: "wan2.1-t2v-1.3b",
        repo: "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        family: KnownFamily::Wan("wan2.1-t2v-1.3b"),
        weights: &[
            "text_encoder/model.safetensors.index.json",
            "transformer/diffusion_pytorch_model.safetensors.index.json",
            "vae/diffusion_pytorch_model.safetensors",
        ],
        size: (480, 832),
        about: "Wan 2.1 text-to-video 1.3B (f32 shards, ~28 GB with its UMT5-XXL text encoder), 832×480, 81 frames at 16 fps",
    },
    KnownModel {
        name: "wan2.1-t2v-14b",
        repo: "Wan-AI/Wan2.1-T2V-14B-Diffusers",
        family: KnownFamily::Wan("wan2.1-t2v-14b"),
        weights: &[
            "text_encoder/model.safetensors.index.json",
            "transformer/diffusion_pytorch_model.safetensors.index.json",
            "vae/diffusion_pytorch_model.safetensors",
        ],
        size: (480, 832),
        about: "Wan 2.1 text-to-video 14B (f32 shards, ~80 GB), 832×480 (720p: 1280×720 with --flow-shift 5), 81 frames at 16 fps",
    },
    // Wan 2.2 TI2V-5B in text-to-video mode: the 5B transformer and the Wan 2.2 VAE.
    KnownModel {
        name: "wan2.2-ti2v-5b",
        repo: "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        family: KnownFamily::Wan("wan2.2-ti2v-5b"),
        weights: &[
            "text_encoder/model.safetensors.index.json",
            "transformer/diffusion_pytorch_model.safetensors.index.json",
            "vae/diffusion_pytorch_model.safetensors",
        ],
        size: (704, 1280),
        about: "Wan 2.2 TI2V-5B, text-to-video (bf16 UMT5, 2.8 GB f32 VAE), 1280×704 (or 704×1280), 121 frames at 24 fps; sizes multiples of 32",
    },
    // Wan 2.2 A14B: two 14B experts, switched at boundary_ratio 0.875 (one on the device at a time).
    KnownModel {
        name: "wan2.2-t2v-a14b",
        repo: "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
        family: KnownFamily::Wan("wan2.2-t2v-a14b"),
        weights: &[
            "text_encoder/model.safetensors.index.json",
            "transformer/diffusion_pytorch_model.safetensors.index.json",
            "transformer_2/config.json",
            "transformer_2/diffusion_pytorch_model.safetensors.index.json",
            "vae/diffusion_pytorch_model.safetensors",
        ],
        size: (480, 832),
        about: "Wan 2.2 text-to-video A14B: two 14B experts (high noise for t ≥ 875, low noise below; f32 shards, ~126 GB), 832×480 or 1280×720, 81 frames at 16 fps; the card: 40 steps, --guidance-scale 4 --guidance-scale-2 3",
    },
];

const UNET_FILES: [&str; 9] = [
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "tokenizer/merges.txt",
    "tokenizer/vocab.json",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "unet/config.json",
    "vae/config.json",
];

const WAN_FILES: [&str; 8] = [
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "tokenizer/tokenizer.json",
    "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json",
    "transformer/config.json",
    "vae/config.json",
];

impl KnownModel {
    /// Every file of the model but the shards of sharded components.
    pub fn files(&self) -> Vec<&'static str> {
        let common: &[&str] = match self.family {
            KnownFamily::UNet => &UNET_FILES,
            KnownFamily::Wan(_) => &WAN_FILES,
        };
        common.iter().chain(self.weights).copied().collect()
    }
}

/// The shard files a `*.safetensors.index.json` names (its `weight_map` values), relative to
/// the repo (beside the index).
fn shards_of(index_rel: &str, index: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::Other(format!("{}: {e}", index.display())))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Config { path: index.display().to_string(), msg: format!("not JSON: {e}") })?;
    let map = v["weight_map"]
        .as_object()
        .ok_or_else(|| Error::Config { path: index.display().to_string(), msg: "no \"weight_map\" object".into() })?;
    let folder = index_rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let mut shards: Vec<String> = map.values().filter_map(|f| f.as_str()).map(|f| if folder.is_empty() { f.to_string() } else { format!("{folder}/{f}") }).collect();
    shards.sort();
    shards.dedup();
    Ok(shards)
}

pub fn known(name: &str) -> Option<&'static KnownModel> {
    MODELS.iter().find(|m| m.name == name || m.repo == name)
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The local folder of `model`: an existing directory as is, `tiny-random` generated on first
/// use, or a known model fetched into the Hugging Face cache (only missing files download).
pub fn resolve(model: &str, gpu: &std::sync::Arc<crate::Gpu>) -> Result<PathBuf> {
    let path = Path::new(model);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if model == super::tiny_random::NAME {
        return super::tiny_random::ensure(gpu);
    }
    let Some(m) = known(model) else {
        let names: Vec<&str> = MODELS.iter().map(|m| m.name).chain([super::tiny_random::NAME]).collect();
        return Err(Error::Other(format!(
            "model '{model}' is neither a folder nor a known model name ({})",
            names.join(", ")
        )));
    };
    let files = m.files();
    let cache = hf_hub::Cache::from_env();
    let cached = cache.model(m.repo.to_string());
    let complete = || -> Option<PathBuf> {
        let paths = files.iter().map(|f| cached.get(f)).collect::<Option<Vec<_>>>()?;
        for (f, p) in files.iter().zip(&paths) {
            if f.ends_with(".index.json") {
                for shard in shards_of(f, p).ok()? {
                    cached.get(&shard)?;
                }
            }
        }
        Some(paths[0].clone())
    };
    if let Some(p) = complete() {
        return snapshot_dir(&p);
    }
    let fallback = "run offline with `--model tiny-random`, or pass a local diffusers folder with `--model PATH`";
    if offline() {
        return Err(Error::Other(format!(
            "{} is not fully in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set; {fallback}",
            m.repo,
            cache.path().display()
        )));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| Error::Other(format!("cannot reach the Hugging Face hub: {e}; {fallback}")))?;
    let repo = api.model(m.repo.to_string());
    let mut first = None;
    let get = |f: &str| repo.get(f).map_err(|e| Error::Other(format!("downloading {f} of {} failed: {e}; {fallback}", m.repo)));
    for f in files {
        let p = get(f)?;
        if f.ends_with(".index.json") {
            for shard in shards_of(f, &p)? {
                get(&shard)?;
            }
        }
        first.get_or_insert(p);
    }
    snapshot_dir(&first.unwrap_or_default())
}

/// `…/snapshots/<commit>/model_index.json` → `…/snapshots/<commit>`.
fn snapshot_dir(model_index: &Path) -> Result<PathBuf> {
    model_index
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::Other(format!("unexpected cache path {}", model_index.display())))
}

/// The snapshot folder of hub repo `repo` holding every one of `files` and the first of
/// `one_of` the repo has (e.g. `model.safetensors`, else `pytorch_model.bin`): from the cache
/// when there, else downloaded (the CLIP scorers of `t2v compare`/`t2v score`).
pub fn fetch_files(repo: &str, files: &[&str], one_of: &[&str]) -> Result<PathBuf> {
    let cache = hf_hub::Cache::from_env();
    let cached = cache.model(repo.to_string());
    let have_all = files.iter().all(|f| cached.get(f).is_some());
    if let (true, Some(p)) = (have_all, one_of.iter().find_map(|f| cached.get(f))) {
        return snapshot_dir(&p);
    }
    let fallback = "pass a local folder holding the CLIP model (config.json, preprocessor_config.json, tokenizer files, weights)";
    if offline() {
        return Err(Error::Other(format!(
            "{repo} is not fully in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set; {fallback}",
            cache.path().display()
        )));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| Error::Other(format!("cannot reach the Hugging Face hub: {e}; {fallback}")))?;
    let hub = api.model(repo.to_string());
    let mut last = None;
    for f in files {
        last = Some(hub.get(f).map_err(|e| Error::Other(format!("downloading {f} of {repo} failed: {e}; {fallback}")))?);
    }
    let mut weights = Err(Error::Other(format!("{repo} has none of {}; {fallback}", one_of.join(", "))));
    for f in one_of {
        if let Ok(p) = hub.get(f) {
            weights = Ok(p);
            break;
        }
    }
    let p = weights?;
    snapshot_dir(last.as_ref().unwrap_or(&p))
}
