//! Prompt → embeddings with CLIP (the UNet pipelines' tokenizer and text encoder), shared by
//! text-to-video, video-to-video and Text2Video-Zero.

use super::Progress;
use crate::error::{Error, Result};
use crate::models::text_encoder::{ClipTextConfig, ClipTextModel};
use crate::tensor::Tensor;
use crate::tokenizer::ClipTokenizer;
use crate::weights::{Placement, Weights};
use crate::Gpu;
use std::path::Path;
use std::sync::Arc;

pub struct ClipPrompt {
    /// None only for memory plans, which feed placeholder token ids.
    pub tokenizer: Option<ClipTokenizer>,
    pub text_encoder: ClipTextModel,
}

impl ClipPrompt {
    /// `tokenizer/` and `text_encoder/` of a diffusers pipeline folder.
    pub fn from_dir(gpu: &Arc<Gpu>, dir: &Path, placement: Placement) -> Result<ClipPrompt> {
        Ok(ClipPrompt {
            tokenizer: Some(ClipTokenizer::from_dir(&dir.join("tokenizer"))?),
            text_encoder: ClipTextModel::from_dir(gpu, &dir.join("text_encoder"), placement)?,
        })
    }

    /// Synthetic weights for a memory plan (no tokenizer).
    pub fn synthetic(gpu: &Arc<Gpu>, config: &ClipTextConfig, placement: Placement) -> Result<ClipPrompt> {
        let text = Arc::new(Weights::synthetic(gpu, "text_encoder", placement));
        Ok(ClipPrompt { tokenizer: None, text_encoder: ClipTextModel::load(config.clone(), text)? })
    }

    /// (1 or 2, 77, D) embeddings: [negative, positive] when `guided`, else the prompt's alone.
    pub fn encode(&self, prompt: &str, negative: &str, guided: bool, clip_skip: usize, progress: &mut dyn Progress) -> Result<Tensor> {
        let tokenizer = self.tokenizer.as_ref().ok_or_else(|| Error::Other("this pipeline has no tokenizer".into()))?;
        let texts: Vec<&str> = if guided { vec![negative, prompt] } else { vec![prompt] };
        let mut rows = Vec::new();
        for t in texts {
            let e = tokenizer.encode(t)?;
            if let Some(w) = tokenizer.truncation_warning(&e) {
                progress.note(&format!("warning: {w}"));
            }
            rows.push(e.ids);
        }
        self.text_encoder.forward(&rows, clip_skip)
    }

    /// What [`encode`](Self::encode) allocates, from placeholder ids (memory plans, benchmarks
    /// without a tokenizer): as many as the encoder's positions, which is CLIP's padded length.
    pub fn placeholder(&self, guided: bool, clip_skip: usize) -> Result<Tensor> {
        let ids = vec![vec![0u32; self.text_encoder.config.max_position_embeddings]; if guided { 2 } else { 1 }];
        self.text_encoder.forward(&ids, clip_skip)
    }
}
