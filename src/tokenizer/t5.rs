//! T5 / umT5 tokenizer, exactly as transformers 5's `T5Tokenizer` tokenizes a prompt for
//! `WanPipeline` (`padding="max_length", max_length=512, truncation=True`): no BOS, the
//! prompt's pieces, `</s>`, then `<pad>` to the length; a longer prompt keeps its first
//! `max_length − 1` pieces and still ends in `</s>`.
//!
//! transformers 5 does not run the tokenizer.json it loads: `T5Tokenizer.__init__` rebuilds a
//! `tokenizers` pipeline from parts of it (tokenization_t5.py; tokenization_utils_tokenizers.py
//! `convert_to_native_format`), and so does t2v, with the same library:
//! - model: Unigram over the file's `(piece, score)` vocabulary, `unk_id` 2 (hard-coded there,
//!   whatever the file says), no byte fallback;
//! - normalizer: only the file's sentencepiece `Precompiled` charsmap (searched inside a
//!   `Sequence`), any other normalizer dropped; none when the file has no charsmap;
//! - pre-tokenizer: WhitespaceSplit, then Metaspace (`▁`, prepended always, split);
//! - post-processor: the template `$A </s>`;
//! - added tokens: the file's `added_tokens` (plus tokenizer_config.json's
//!   `added_tokens_decoder`), cut out of the text before normalisation.
//!
//! Padding and truncation blocks persisted in the file (a tokenizer saved after a padded call
//! keeps them) are cleared; t2v pads and truncates itself.

use crate::error::{Error, Result};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// WanPipeline's `max_sequence_length` default (and what UMT5 was trained with).
pub const WAN_MAX_LENGTH: usize = 512;

/// A tokenized prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T5Encoded {
    /// The prompt's pieces, `</s>`, then pad ids: always `max_length` long.
    pub ids: Vec<u32>,
    /// 1 for the real tokens (`</s>` included), 0 for padding.
    pub mask: Vec<u32>,
    /// Real tokens, `</s>` included (diffusers' `seq_lens`).
    pub seq_len: usize,
    /// The prompt had more pieces than fit; the tail was dropped (`</s>` kept last).
    pub truncated: bool,
    /// Tokens before truncation, `</s>` included.
    pub num_tokens: usize,
    dropped: Vec<u32>,
}

pub struct T5Tokenizer {
    inner: tokenizers::Tokenizer,
    eos: u32,
    pad: u32,
    path: PathBuf,
}

fn cfg_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Config { path: path.display().to_string(), msg: msg.into() }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| cfg_err(path, format!("cannot read the tokenizer: {e}")))?;
    serde_json::from_str(&text).map_err(|e| cfg_err(path, format!("not valid JSON: {e}")))
}

/// A special token's text from tokenizer_config.json (a string or an AddedToken dict).
fn special(config: &Value, key: &str, default: &str) -> String {
    match &config[key] {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.get("content").and_then(Value::as_str).unwrap_or(default).to_string(),
        _ => default.to_string(),
    }
}

impl T5Tokenizer {
    /// Loads a `tokenizer/` folder: its `tokenizer.json`, with special-token names from
    /// `tokenizer_config.json` when present.
    pub fn from_dir(dir: &Path) -> Result<T5Tokenizer> {
        let json_path = dir.join("tokenizer.json");
        if !json_path.is_file() {
            let names: Vec<String> = std::fs::read_dir(dir)
                .map(|it| it.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            return Err(cfg_err(
                &json_path,
                format!(
                    "not found; a Wan tokenizer folder needs the tokenizer.json that transformers saves (found: {}). \
                     A folder with only spiece.model can be converted with transformers' T5Tokenizer(...).save_pretrained",
                    if names.is_empty() { "nothing".into() } else { names.join(", ") }
                ),
            ));
        }
        let config_path = dir.join("tokenizer_config.json");
        let config = if config_path.is_file() { read_json(&config_path)? } else { Value::Null };
        Self::from_json(&json_path, read_json(&json_path)?, &config)
    }

    fn from_json(path: &Path, mut doc: Value, config: &Value) -> Result<T5Tokenizer> {
        let not_t5 = |what: String| cfg_err(path, format!("not a T5-style (Unigram) tokenizer: {what}"));
        let model = doc.get_mut("model").and_then(Value::as_object_mut).ok_or_else(|| not_t5("no \"model\" section".into()))?;
        match model.get("type").and_then(Value::as_str) {
            Some("Unigram") => {}
            Some(t) => return Err(not_t5(format!("its model is {t}"))),
            None => return Err(not_t5("its model has no \"type\"".into())),
        }
        let vocab = model.get("vocab").and_then(Value::as_array).ok_or_else(|| not_t5("model.vocab is not a list of [piece, score]".into()))?;
        if vocab.len() < 3 {
            return Err(not_t5(format!("model.vocab has {} pieces; T5's unk id 2 needs at least 3", vocab.len())));
        }
        if let Some((i, bad)) = vocab.iter().enumerate().find(|(_, p)| !(p[0].is_string() && p[1].is_number())) {
            return Err(not_t5(format!("model.vocab[{i}] = {bad} is not [piece, score]")));
        }
        model.insert("unk_id".into(), json!(2));
        model.insert("byte_fallback".into(), json!(false));
        let charsmap = precompiled(&doc["normalizer"]);
        let mut added = match doc.get("added_tokens") {
            Some(Value::Array(a)) => a.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(other) => return Err(cfg_err(path, format!("added_tokens is {other}, not a list"))),
        };
        if let Some(Value::Object(dec)) = config.get("added_tokens_decoder") {
            for (id, tok) in dec {
                let content = tok["content"].as_str();
                if content.is_some() && !added.iter().any(|a| a["content"].as_str() == content) {
                    if let Ok(id) = id.parse::<u64>() {
                        let mut t: Map<String, Value> = tok.as_object().cloned().unwrap_or_default();
                        t.insert("id".into(), json!(id));
                        for (flag, default) in [("single_word", false), ("lstrip", false), ("rstrip", false), ("normalized", false), ("special", true)] {
                            t.entry(flag).or_insert(json!(default));
                        }
                        added.push(Value::Object(t));
                    }
                }
            }
        }
        let eos_name = special(config, "eos_token", "</s>");
        let pad_name = special(config, "pad_token", "<pad>");
        let id_in = |doc: &Value, name: &str| -> Option<u32> {
            let in_added = added.iter().find(|a| a["content"].as_str() == Some(name)).and_then(|a| a["id"].as_u64());
            let in_vocab = doc["model"]["vocab"].as_array()?.iter().position(|p| p[0].as_str() == Some(name)).map(|i| i as u64);
            in_added.or(in_vocab).map(|i| i as u32)
        };
        let eos = id_in(&doc, &eos_name).ok_or_else(|| not_t5(format!("its end-of-sequence token {eos_name:?} is not in the vocabulary")))?;
        let pad = id_in(&doc, &pad_name).ok_or_else(|| not_t5(format!("its pad token {pad_name:?} is not in the vocabulary")))?;
        let obj = doc.as_object_mut().ok_or_else(|| not_t5("not a JSON object".into()))?;
        obj.insert("added_tokens".into(), Value::Array(added));
        obj.insert("truncation".into(), Value::Null);
        obj.insert("padding".into(), Value::Null);
        obj.insert("normalizer".into(), charsmap.map_or(Value::Null, |c| json!({"type": "Precompiled", "precompiled_charsmap": c})));
        obj.insert(
            "pre_tokenizer".into(),
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "WhitespaceSplit"},
                {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
            ]}),
        );
        obj.insert("decoder".into(), json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}));
        obj.insert(
            "post_processor".into(),
            json!({"type": "TemplateProcessing",
                "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": eos_name, "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": eos_name, "type_id": 0}},
                         {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": eos_name, "type_id": 0}}],
                "special_tokens": {eos_name.clone(): {"id": eos_name, "ids": [eos], "tokens": [eos_name]}}}),
        );
        let inner = tokenizers::Tokenizer::from_str(&doc.to_string()).map_err(|e| cfg_err(path, format!("cannot build a T5 tokenizer from it: {e}")))?;
        Ok(T5Tokenizer { inner, eos, pad, path: path.to_path_buf() })
    }

    /// Token ids of `text` as given (no cleaning), padded (and if need be truncated) to
    /// `max_length` ≥ 1, with the attention mask.
    pub fn encode(&self, text: &str, max_length: usize) -> Result<T5Encoded> {
        if max_length == 0 {
            return Err(cfg_err(&self.path, "max_length 0 leaves no room for </s>"));
        }
        let enc = self.inner.encode(text, false).map_err(|e| cfg_err(&self.path, format!("cannot tokenize {text:?}: {e}")))?;
        let content = enc.get_ids();
        let room = max_length - 1;
        let kept = content.len().min(room);
        let mut ids = Vec::with_capacity(max_length);
        ids.extend_from_slice(&content[..kept]);
        ids.push(self.eos);
        let seq_len = ids.len();
        ids.resize(max_length, self.pad);
        let mask = (0..max_length).map(|i| u32::from(i < seq_len)).collect();
        Ok(T5Encoded { ids, mask, seq_len, truncated: content.len() > room, num_tokens: content.len() + 1, dropped: content[kept..].to_vec() })
    }

    /// What `WanPipeline` tokenizes: `prompt_clean(prompt)`, then [`encode`](Self::encode).
    pub fn encode_prompt(&self, prompt: &str, max_length: usize) -> Result<T5Encoded> {
        self.encode(&super::clean::prompt_clean(prompt), max_length)
    }

    /// A warning when the prompt was cut (diffusers cuts silently): `None` if nothing was.
    pub fn truncation_warning(&self, enc: &T5Encoded) -> Option<String> {
        if !enc.truncated {
            return None;
        }
        Some(format!(
            "the prompt is {} tokens but the UMT5 text encoder reads at most {}; this part was dropped: {:?}",
            enc.num_tokens,
            enc.ids.len(),
            self.decode(&enc.dropped)
        ))
    }

    /// Text of token ids (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }

    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// The sentencepiece charsmap of a tokenizer.json normaliser (alone or inside a Sequence), as
/// transformers 5 picks it.
fn precompiled(normalizer: &Value) -> Option<Value> {
    let list: Vec<&Value> = match normalizer["type"].as_str() {
        Some("Sequence") => normalizer["normalizers"].as_array()?.iter().collect(),
        Some(_) => vec![normalizer],
        None => return None,
    };
    list.into_iter().find(|n| n["type"].as_str() == Some("Precompiled")).and_then(|n| n.get("precompiled_charsmap").cloned()).filter(|c| !c.is_null())
}
