//! The `tokenizers` pipeline transformers 5's `CLIPTokenizer.__init__` builds, as the
//! tokenizer.json it serialises to (so the one library, configured from one description,
//! does the Unicode work: NFC, `\s+` collapse, lower-casing, the CLIP split regex, GPT-2
//! byte-level mapping, BPE with `</w>` word ends, added-token extraction).

use super::files::{Spec, Special};
use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::str::FromStr;

/// CLIP's pre-tokenisation regex (transformers `CLIPTokenizer`, `tokenization_clip.py`).
const CLIP_SPLIT: &str = r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

pub fn build(spec: &Spec) -> Result<tokenizers::Tokenizer> {
    let id_of = |t: &str| spec.vocab.get(t).and_then(Value::as_u64);
    let mut next_id = spec.vocab.values().filter_map(Value::as_u64).max().unwrap_or(0) + 1;
    let mut added = spec.added.clone();
    let present = |added: &[Value], content: &str| added.iter().any(|a| a["content"].as_str() == Some(content));
    // transformers adds its special tokens after the file's own added tokens; one missing from
    // the vocabulary gets the next free id.
    for s in [&spec.pad, &spec.bos, &spec.eos, &spec.unk] {
        if !present(&added, &s.content) {
            let id = id_of(&s.content).unwrap_or_else(|| {
                next_id += 1;
                next_id - 1
            });
            added.push(added_token(s, id));
        }
    }
    let token_id = |s: &Special| {
        added.iter().find(|a| a["content"].as_str() == Some(&s.content)).and_then(|a| a["id"].as_u64()).unwrap_or(0)
    };
    let merges: Vec<[&str; 2]> = spec.merges.iter().map(|(a, b)| [a.as_str(), b.as_str()]).collect();
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"},
        ]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": CLIP_SPLIT}, "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        ]},
        "post_processor": {"type": "RobertaProcessing",
            "sep": [spec.eos.content, token_id(&spec.eos)], "cls": [spec.bos.content, token_id(&spec.bos)],
            "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": spec.unk.content, "continuing_subword_prefix": "",
            "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": spec.vocab, "merges": merges},
    });
    tokenizers::Tokenizer::from_str(&doc.to_string())
        .map_err(|e| Error::Other(format!("could not build the CLIP tokenizer from these files: {e}")))
}

fn added_token(s: &Special, id: u64) -> Value {
    json!({"id": id, "content": s.content, "single_word": false, "lstrip": false, "rstrip": false,
           "normalized": s.normalized, "special": true})
}
