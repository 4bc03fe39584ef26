//! Reading a `tokenizer/` folder into what the pipeline needs, with errors that name the file.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// A special token and whether it is matched on the normalised (lower-cased) text.
#[derive(Debug, Clone)]
pub struct Special {
    pub content: String,
    pub normalized: bool,
}

pub struct Spec {
    /// token → id, as in vocab.json.
    pub vocab: Map<String, Value>,
    pub merges: Merges,
    /// `added_tokens` entries of tokenizer.json, kept as written (their flags win).
    pub added: Vec<Value>,
    pub bos: Special,
    pub eos: Special,
    pub unk: Special,
    pub pad: Special,
    pub max_length: usize,
}

type Merges = Vec<(String, String)>;

/// CLIP's own context length; also what these repos' tokenizer_config.json says.
const DEFAULT_MAX_LENGTH: usize = 77;
/// transformers writes `int(1e30)` ("VERY_LARGE_INTEGER") when a tokenizer has no limit.
const NO_LIMIT: f64 = 1e12;

fn cfg_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Config { path: path.display().to_string(), msg: msg.into() }
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| cfg_err(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map(Some).map_err(|e| cfg_err(path, format!("not valid JSON: {e}")))
}

pub fn read_dir(dir: &Path) -> Result<Spec> {
    if !dir.is_dir() {
        return Err(cfg_err(dir, "tokenizer folder not found"));
    }
    let config_path = dir.join("tokenizer_config.json");
    let map_path = dir.join("special_tokens_map.json");
    let config = read_json(&config_path)?.unwrap_or(Value::Null);
    let map = read_json(&map_path)?.unwrap_or(Value::Null);

    // special_tokens_map.json wins over tokenizer_config.json, as in transformers: for the
    // ModelScope/Zeroscope repos that turns pad "<|endoftext|>" into "!".
    let special = |key: &str, default: &str| -> Result<Special> {
        for (v, path) in [(&map[key], &map_path), (&config[key], &config_path)] {
            if let Some(s) = parse_special(v).map_err(|m| cfg_err(path, format!("'{key}': {m}")))? {
                return Ok(s);
            }
        }
        Ok(Special { content: default.into(), normalized: false })
    };
    let bos = special("bos_token", "<|startoftext|>")?;
    let eos = special("eos_token", "<|endoftext|>")?;
    let unk = special("unk_token", "<|endoftext|>")?;
    let pad = special("pad_token", "<|endoftext|>")?;

    let max_length = match &config["model_max_length"] {
        Value::Null => DEFAULT_MAX_LENGTH,
        v => match v.as_f64() {
            Some(x) if x >= NO_LIMIT => DEFAULT_MAX_LENGTH,
            Some(x) if x >= 0.0 && x.fract() == 0.0 => x as usize,
            _ => return Err(cfg_err(&config_path, format!("model_max_length {v} is not a token count"))),
        },
    };

    let json_path = dir.join("tokenizer.json");
    let (vocab, merges, added) = if json_path.exists() {
        read_tokenizer_json(&json_path)?
    } else {
        let vocab_path = dir.join("vocab.json");
        let merges_path = dir.join("merges.txt");
        if !vocab_path.exists() {
            let names: Vec<String> = std::fs::read_dir(dir)
                .map(|it| it.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            return Err(cfg_err(dir, format!("no tokenizer.json and no vocab.json + merges.txt here (found: {})", names.join(", "))));
        }
        let vocab = match read_json(&vocab_path)? {
            Some(Value::Object(m)) => m,
            _ => return Err(cfg_err(&vocab_path, "expected a JSON object {token: id}")),
        };
        check_vocab(&vocab, &vocab_path)?;
        if !merges_path.exists() {
            return Err(cfg_err(&merges_path, "not found (vocab.json needs its merges.txt)"));
        }
        let text = std::fs::read_to_string(&merges_path).map_err(|e| cfg_err(&merges_path, format!("cannot read: {e}")))?;
        (vocab, parse_merges_txt(&text, &merges_path)?, Vec::new())
    };
    Ok(Spec { vocab, merges, added, bos, eos, unk, pad, max_length })
}

/// A special-token entry: a plain string (transformers then matches it on the raw text), or an
/// `AddedToken` dict with its own `normalized` flag. `null`/absent → not given here.
fn parse_special(v: &Value) -> std::result::Result<Option<Special>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(Special { content: s.clone(), normalized: false })),
        Value::Object(o) => {
            let content = o.get("content").and_then(Value::as_str).ok_or("token dict without a \"content\" string")?;
            let normalized = o.get("normalized").and_then(Value::as_bool).unwrap_or(false);
            Ok(Some(Special { content: content.into(), normalized }))
        }
        other => Err(format!("expected a string or a token dict, found {other}")),
    }
}

fn check_vocab(vocab: &Map<String, Value>, path: &Path) -> Result<()> {
    if vocab.is_empty() {
        return Err(cfg_err(path, "the vocabulary is empty"));
    }
    for (token, id) in vocab {
        if id.as_u64().is_none_or(|i| i > u32::MAX as u64) {
            return Err(cfg_err(path, format!("token {token:?} has id {id}, not a token id")));
        }
    }
    Ok(())
}

/// merges.txt as the `tokenizers` BPE reader takes it: `#version` lines skipped, every other
/// line exactly two space-separated symbols.
fn parse_merges_txt(text: &str, path: &Path) -> Result<Merges> {
    let mut merges = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("#version") {
            continue;
        }
        let parts: Vec<&str> = line.split(' ').collect();
        if parts.len() != 2 {
            return Err(cfg_err(path, format!("line {}: expected two symbols separated by one space, found {line:?}", i + 1)));
        }
        merges.push((parts[0].to_string(), parts[1].to_string()));
    }
    Ok(merges)
}

/// The vocabulary, merges and added tokens of a `tokenizer.json`. Its normaliser and
/// pre-tokeniser are not used: transformers 5's CLIPTokenizer rebuilds its own pipeline from
/// these, and so does t2v.
fn read_tokenizer_json(path: &Path) -> Result<(Map<String, Value>, Merges, Vec<Value>)> {
    let Some(json) = read_json(path)? else {
        return Err(cfg_err(path, "not found"));
    };
    let model = &json["model"];
    if let Some(t) = model["type"].as_str() {
        if t != "BPE" {
            return Err(cfg_err(path, format!("model type {t:?}; a CLIP tokenizer is BPE")));
        }
    }
    let vocab = match &model["vocab"] {
        Value::Object(m) => m.clone(),
        _ => return Err(cfg_err(path, "model.vocab is not a {token: id} object")),
    };
    check_vocab(&vocab, path)?;
    let list = model["merges"].as_array().ok_or_else(|| cfg_err(path, "model.merges is not a list"))?;
    let mut merges = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let pair = match m {
            Value::String(s) => s.split_once(' ').filter(|(_, b)| !b.contains(' ')).map(|(a, b)| (a.to_string(), b.to_string())),
            Value::Array(a) if a.len() == 2 => match (a[0].as_str(), a[1].as_str()) {
                (Some(x), Some(y)) => Some((x.to_string(), y.to_string())),
                _ => None,
            },
            _ => None,
        };
        merges.push(pair.ok_or_else(|| cfg_err(path, format!("model.merges[{i}] = {m} is not a pair of symbols")))?);
    }
    let added = match &json["added_tokens"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a.clone(),
        _ => return Err(cfg_err(path, "added_tokens is not a list")),
    };
    Ok((vocab, merges, added))
}
