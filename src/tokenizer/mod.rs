//! CLIP tokenizer, exactly as transformers 5's `CLIPTokenizer` tokenizes a prompt for
//! `TextToVideoSDPipeline` (`padding="max_length", max_length=77, truncation=True`).
//!
//! transformers 5 has no Python-side CLIP tokenizer any more: it always rebuilds one
//! `tokenizers` pipeline from the vocabulary and merges, whichever files hold them
//! (`vocab.json` + `merges.txt`, or the `model` section of `tokenizer.json`), so t2v does the
//! same with the same library (see `pipeline.rs`). The published ModelScope/Zeroscope repos
//! ship the first layout; transformers 5's `save_pretrained` writes the second.
//!
//! Quirks that matter for exact ids (found with tests/fixtures/tokenizer_cases.json):
//! - special tokens are cut out of the text before normalisation and BPE. The pad token of
//!   these repos is "!" (special_tokens_map.json overrides tokenizer_config.json), so every "!"
//!   in a prompt becomes id 0, not `!</w>` (256): "hi!" → [49406, 1883, 0, 49407].
//! - `<|startoftext|>` / `<|endoftext|>` are matched after lower-casing, "!" before.
//! - no ftfy, no HTML unescaping, no accent stripping.

pub mod clean;
mod files;
mod html_entities;
mod pipeline;
pub mod t5;

pub use clean::prompt_clean;
pub use t5::{T5Encoded, T5Tokenizer, WAN_MAX_LENGTH};

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A prompt as token ids, ready for the text encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// BOS, the prompt's tokens, EOS, then pad ids: always `max_length` (77) long.
    pub ids: Vec<u32>,
    /// The prompt had more tokens than fit; the tail was dropped (EOS kept last).
    pub truncated: bool,
    /// Tokens before truncation, BOS and EOS included.
    pub num_tokens: usize,
    /// The dropped prompt tokens, for the warning.
    dropped: Vec<u32>,
}

pub struct ClipTokenizer {
    inner: tokenizers::Tokenizer,
    bos: u32,
    eos: u32,
    pad: u32,
    max_length: usize,
    dir: PathBuf,
}

impl ClipTokenizer {
    /// Loads a `tokenizer/` folder: `tokenizer.json` when present, else `vocab.json` +
    /// `merges.txt`; special tokens from `special_tokens_map.json` over `tokenizer_config.json`
    /// (as transformers resolves them), `model_max_length` from `tokenizer_config.json`.
    pub fn from_dir(dir: &Path) -> Result<ClipTokenizer> {
        let spec = files::read_dir(dir)?;
        let inner = pipeline::build(&spec)?;
        let id = |token: &str, role: &str| {
            inner.token_to_id(token).ok_or_else(|| Error::Config {
                path: dir.display().to_string(),
                msg: format!("the {role} token {token:?} is not in the vocabulary"),
            })
        };
        let bos = id(&spec.bos.content, "bos")?;
        let eos = id(&spec.eos.content, "eos")?;
        let pad = id(&spec.pad.content, "pad")?;
        if spec.max_length < 2 {
            return Err(Error::Config {
                path: dir.join("tokenizer_config.json").display().to_string(),
                msg: format!("model_max_length {} leaves no room for BOS and EOS", spec.max_length),
            });
        }
        Ok(ClipTokenizer { inner, bos, eos, pad, max_length: spec.max_length, dir: dir.to_path_buf() })
    }

    /// Token ids of `text`, padded (and if need be truncated) to `max_length`.
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        let enc = self.inner.encode(text, false).map_err(|e| self.err(format!("cannot tokenize {text:?}: {e}")))?;
        let content = enc.get_ids();
        let room = self.max_length - 2;
        let kept = content.len().min(room);
        let mut ids = Vec::with_capacity(self.max_length);
        ids.push(self.bos);
        ids.extend_from_slice(&content[..kept]);
        ids.push(self.eos);
        ids.resize(self.max_length, self.pad);
        Ok(Encoded { ids, truncated: content.len() > room, num_tokens: content.len() + 2, dropped: content[kept..].to_vec() })
    }

    /// What diffusers logs when a prompt is cut: `None` if nothing was.
    pub fn truncation_warning(&self, enc: &Encoded) -> Option<String> {
        if !enc.truncated {
            return None;
        }
        let dropped = self.decode(&enc.dropped);
        Some(format!(
            "the prompt is {} tokens but CLIP reads at most {}; this part was dropped: {dropped:?}",
            enc.num_tokens, self.max_length
        ))
    }

    /// Text of token ids, as transformers' CLIPTokenizer decodes (word ends become spaces).
    pub fn decode(&self, ids: &[u32]) -> String {
        let text = self.inner.decode(ids, true).unwrap_or_default();
        text.replace("</w>", " ").trim().to_string()
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// The tokenizer in `tokenizer.json` form (what transformers 5's `save_pretrained` writes).
    pub fn to_tokenizer_json(&self) -> Result<String> {
        self.inner.to_string(true).map_err(|e| self.err(format!("cannot serialise the tokenizer: {e}")))
    }

    fn err(&self, msg: String) -> Error {
        Error::Config { path: self.dir.display().to_string(), msg }
    }
}
