//! `tiny-random`: a miniature ModelScope-architecture pipeline with random weights, generated
//! by t2v itself so everything runs offline. Real block types and layouts, every size tiny, a
//! byte-level CLIP tokenizer (no merges). Its videos are noise — it exists to exercise the
//! whole path, not to make pictures. The same name as a scorer (`--clip-model tiny-random`) is a
//! miniature CLIPModel made the same way ([`ensure_clip`]): offline compare and score runs, with
//! meaningless numbers.

use crate::error::{Error, Result};
use crate::models::text_encoder::{ClipTextConfig, ClipTextModel};
use crate::models::unet::{UNet3DConditionModel, UNet3DConfig};
use crate::models::vae::{AutoencoderKL, AutoencoderKLConfig};
use crate::weights::{write_f32, Placement, Weights};
use crate::{DType, Gpu};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const NAME: &str = "tiny-random";
/// Bump when the generated model changes, so stale caches are rebuilt.
const VERSION: &str = "1";

const UNET: &str = r#"{
  "_class_name": "UNet3DConditionModel", "act_fn": "silu", "attention_head_dim": 4,
  "block_out_channels": [8, 16, 16, 16], "cross_attention_dim": 8,
  "down_block_types": ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"],
  "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
  "downsample_padding": 1, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
  "norm_eps": 1e-05, "norm_num_groups": 4, "out_channels": 4, "sample_size": 8
}"#;
const VAE: &str = r#"{
  "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [8, 16, 16, 16],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
  "norm_num_groups": 4, "sample_size": 32, "scaling_factor": 0.18215
}"#;
const TEXT_ENCODER: &str = r#"{
  "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_act": "gelu",
  "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
  "max_position_embeddings": 77, "layer_norm_eps": 1e-05, "projection_dim": 8, "vocab_size": 514,
  "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1
}"#;
/// ModelScope's own scheduler config (MODELS.md §2b).
const SCHEDULER: &str = r#"{
  "_class_name": "DDIMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
  "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000,
  "prediction_type": "epsilon", "set_alpha_to_one": false, "skip_prk_steps": true,
  "steps_offset": 1, "thresholding": false
}"#;
const MODEL_INDEX: &str = r#"{
  "_class_name": "TextToVideoSDPipeline", "_t2v_note": "tiny-random: random weights, output is noise",
  "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
  "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet3DConditionModel"],
  "vae": ["diffusers", "AutoencoderKL"]
}"#;

/// The tiny CLIPModel scorer: text tower as the pipeline's, a 2-layer ViT on 32×32 images.
const CLIP_CONFIG: &str = r#"{
  "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 8, "_t2v_note": "tiny-random: random weights, scores are meaningless",
  "text_config": {"hidden_act": "gelu", "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                  "max_position_embeddings": 77, "layer_norm_eps": 1e-05, "vocab_size": 514, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1},
  "vision_config": {"hidden_act": "quick_gelu", "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                    "num_channels": 3, "image_size": 32, "patch_size": 8, "layer_norm_eps": 1e-05}
}"#;
const CLIP_PREPROCESSOR: &str = r#"{
  "image_processor_type": "CLIPImageProcessor", "do_resize": true, "size": {"shortest_edge": 32}, "resample": 3,
  "do_center_crop": true, "crop_size": {"height": 32, "width": 32}, "do_rescale": true, "rescale_factor": 0.00392156862745098,
  "do_normalize": true, "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
  "do_convert_rgb": true
}"#;

/// GPT-2/CLIP's reversible byte → printable-character table, in CLIP's vocabulary order.
fn byte_chars() -> Vec<char> {
    let mut bytes: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut chars: Vec<u32> = bytes.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !bytes.contains(&b) {
            bytes.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    chars.into_iter().filter_map(char::from_u32).collect()
}

/// The byte-level CLIP tokenizer files (no merges) under `prefix`.
fn write_tokenizer(write: &dyn Fn(&str, &str) -> Result<()>, prefix: &str) -> Result<()> {
    let mut vocab = serde_json::Map::new();
    let chars = byte_chars();
    for c in &chars {
        vocab.insert(c.to_string(), (vocab.len() as u64).into());
    }
    for c in &chars {
        vocab.insert(format!("{c}</w>"), (vocab.len() as u64).into());
    }
    vocab.insert("<|startoftext|>".into(), 512.into());
    vocab.insert("<|endoftext|>".into(), 513.into());
    write(&format!("{prefix}vocab.json"), &serde_json::Value::Object(vocab).to_string())?;
    write(&format!("{prefix}merges.txt"), "#version: 0.2\n")?;
    write(
        &format!("{prefix}special_tokens_map.json"),
        r#"{"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "!", "unk_token": "<|endoftext|>"}"#,
    )?;
    write(
        &format!("{prefix}tokenizer_config.json"),
        r#"{"do_lower_case": true, "model_max_length": 77, "pad_token": "<|endoftext|>", "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}"#,
    )
}

/// Writes a generated folder through `fill` into a temporary name and renames it into place
/// (another process finishing first is fine: either copy is complete).
pub(crate) fn generate(dir: &Path, marker: &str, fill: &dyn Fn(&Path) -> Result<()>) -> Result<PathBuf> {
    if dir.join(marker).is_file() {
        return Ok(dir.to_path_buf());
    }
    let parent = cache_root();
    std::fs::create_dir_all(&parent).map_err(|e| io_err(&parent, e))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!("{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    fill(&tmp)?;
    match std::fs::rename(&tmp, dir) {
        Ok(()) => Ok(dir.to_path_buf()),
        Err(_) if dir.join(marker).is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir.to_path_buf())
        }
        Err(e) => Err(io_err(dir, e)),
    }
}

/// The tiny-random CLIPModel scorer folder (`--clip-model tiny-random`), generated on first use.
pub fn ensure_clip(gpu: &Arc<Gpu>) -> Result<PathBuf> {
    use crate::models::clip::{ClipConfig, ClipVisionTransformer};
    use crate::nn::Linear;
    let dir = cache_root().join(format!("{NAME}-clip-v{VERSION}"));
    generate(&dir, "config.json", &|tmp| {
        let write = |rel: &str, text: &str| write_file(tmp, rel, text);
        write("config.json", CLIP_CONFIG)?;
        write("preprocessor_config.json", CLIP_PREPROCESSOR)?;
        write_tokenizer(&write, "")?;
        let config = ClipConfig::from_file(&tmp.join("config.json"))?;
        let w = Arc::new(Weights::synthetic(gpu, "clip", Placement { matrices: DType::F32 }));
        ClipTextModel::load_at(config.text.clone(), w.clone(), "text_model")?;
        ClipVisionTransformer::load(&w.at("vision_model"), config.vision.clone())?;
        let p = config.projection_dim;
        Linear::load(&w.at("visual_projection"), config.vision.hidden_size, p, false)?;
        Linear::load(&w.at("text_projection"), config.text.hidden_size, p, false)?;
        write_weights(&tmp.join("model.safetensors"), &w)
    })
}

/// Where generated tiny-random models live (`T2V_CACHE`, else the user's cache folder).
pub(crate) fn cache_root() -> PathBuf {
    if let Ok(p) = std::env::var("T2V_CACHE") {
        return PathBuf::from(p);
    }
    let base = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|_| std::env::temp_dir());
    base.join("t2v")
}

/// The tiny-random folder, generated on first use (needs a device to run the model builders).
pub fn ensure(gpu: &Arc<Gpu>) -> Result<PathBuf> {
    let dir = cache_root().join(format!("{NAME}-v{VERSION}"));
    generate(&dir, "model_index.json", &|tmp| {
        let write = |rel: &str, text: &str| write_file(tmp, rel, text);
        write("model_index.json", MODEL_INDEX)?;
        write("scheduler/scheduler_config.json", SCHEDULER)?;
        write("unet/config.json", UNET)?;
        write("vae/config.json", VAE)?;
        write("text_encoder/config.json", TEXT_ENCODER)?;
        write_tokenizer(&write, "tokenizer/")?;

        let place = Placement { matrices: DType::F32 };
        let parse = |what: &str, text: &str| Error::Other(format!("built-in {what} config: {text}"));
        let w = Arc::new(Weights::synthetic(gpu, "unet", place));
        let cfg: UNet3DConfig = serde_json::from_str(UNET).map_err(|e| parse("unet", &e.to_string()))?;
        UNet3DConditionModel::load(cfg, w.clone())?;
        write_weights(&tmp.join("unet/diffusion_pytorch_model.safetensors"), &w)?;

        let w = Weights::synthetic(gpu, "vae", place);
        let cfg: AutoencoderKLConfig = serde_json::from_str(VAE).map_err(|e| parse("vae", &e.to_string()))?;
        AutoencoderKL::load(cfg, &w)?;
        write_weights(&tmp.join("vae/diffusion_pytorch_model.safetensors"), &w)?;

        let w = Arc::new(Weights::synthetic(gpu, "text_encoder", place));
        let cfg: ClipTextConfig = serde_json::from_str(TEXT_ENCODER).map_err(|e| parse("text_encoder", &e.to_string()))?;
        ClipTextModel::load(cfg, w.clone())?;
        write_weights(&tmp.join("text_encoder/model.safetensors"), &w)
    })
}

fn io_err(p: &Path, e: std::io::Error) -> Error {
    Error::Other(format!("writing {}: {e}", p.display()))
}

/// `text` at `rel` under `root`, its folders made as needed.
pub(crate) fn write_file(root: &Path, rel: &str, text: &str) -> Result<()> {
    let p = root.join(rel);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
    }
    std::fs::write(&p, text).map_err(|e| io_err(&p, e))
}

/// The random values a synthetic load drew, as an f32 safetensors file.
fn write_weights(path: &Path, w: &Weights) -> Result<()> {
    write_f32(path, &w.synthesized()).map_err(|e| io_err(path, e))
}
