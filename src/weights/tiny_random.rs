//! `tiny-random`: a miniature ModelScope-architecture pipeline with random weights, generated
//! by t2v itself so everything runs offline. Real block types and layouts, every size tiny, a
//! byte-level CLIP tokenizer (no merges). Its videos are noise — it exists to exercise the
//! whole path, not to make pictures.

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

fn cache_root() -> PathBuf {
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
    if dir.join("model_index.json").is_file() {
        return Ok(dir);
    }
    let io = |p: &Path, e: std::io::Error| Error::Other(format!("writing {}: {e}", p.display()));
    let parent = cache_root();
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    let tmp = parent.join(format!("{NAME}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let write = |rel: &str, text: &str| -> Result<()> {
        let p = tmp.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
        }
        std::fs::write(&p, text).map_err(|e| io(&p, e))
    };
    write("model_index.json", MODEL_INDEX)?;
    write("scheduler/scheduler_config.json", SCHEDULER)?;
    write("unet/config.json", UNET)?;
    write("vae/config.json", VAE)?;
    write("text_encoder/config.json", TEXT_ENCODER)?;
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
    write("tokenizer/vocab.json", &serde_json::Value::Object(vocab).to_string())?;
    write("tokenizer/merges.txt", "#version: 0.2\n")?;
    write(
        "tokenizer/special_tokens_map.json",
        r#"{"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "!", "unk_token": "<|endoftext|>"}"#,
    )?;
    write(
        "tokenizer/tokenizer_config.json",
        r#"{"do_lower_case": true, "model_max_length": 77, "pad_token": "<|endoftext|>", "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}"#,
    )?;

    let place = Placement { matrices: DType::F32 };
    let parse = |what: &str, text: &str| Error::Other(format!("built-in {what} config: {text}"));
    let w = Weights::synthetic(gpu, "unet", place);
    let cfg: UNet3DConfig = serde_json::from_str(UNET).map_err(|e| parse("unet", &e.to_string()))?;
    UNet3DConditionModel::load(cfg, &w)?;
    let p = tmp.join("unet/diffusion_pytorch_model.safetensors");
    write_f32(&p, &w.synthesized()).map_err(|e| io(&p, e))?;

    let w = Weights::synthetic(gpu, "vae", place);
    let cfg: AutoencoderKLConfig = serde_json::from_str(VAE).map_err(|e| parse("vae", &e.to_string()))?;
    AutoencoderKL::load(cfg, &w)?;
    let p = tmp.join("vae/diffusion_pytorch_model.safetensors");
    write_f32(&p, &w.synthesized()).map_err(|e| io(&p, e))?;

    let w = Arc::new(Weights::synthetic(gpu, "text_encoder", place));
    let cfg: ClipTextConfig = serde_json::from_str(TEXT_ENCODER).map_err(|e| parse("text_encoder", &e.to_string()))?;
    ClipTextModel::load(cfg, w.clone())?;
    let p = tmp.join("text_encoder/model.safetensors");
    write_f32(&p, &w.synthesized()).map_err(|e| io(&p, e))?;

    // Another process may have finished first; either copy is complete.
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if dir.join("model_index.json").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(io(&dir, e)),
    }
}
