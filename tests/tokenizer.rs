//! CLIP tokenizer against transformers 5.24 (tests/fixtures/tokenizer_cases.json: ids from
//! `CLIPTokenizer.from_pretrained("tests/fixtures/tiny-t2v/tokenizer")(prompt,
//! padding="max_length", max_length=77, truncation=True)`).

use std::path::{Path, PathBuf};
use t2v::tokenizer::ClipTokenizer;

#[derive(serde::Deserialize)]
struct Case {
    prompt: String,
    num_tokens_untruncated: usize,
    input_ids: Vec<u32>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn published_dir() -> PathBuf {
    fixtures().join("tiny-t2v/tokenizer")
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("tokenizer_cases.json")).expect("tokenizer_cases.json");
    serde_json::from_str(&text).expect("cases parse")
}

/// Every case through `tok`; returns one line per mismatch.
fn mismatches(tok: &ClipTokenizer) -> Vec<String> {
    let mut bad = Vec::new();
    for c in cases() {
        let enc = tok.encode(&c.prompt).expect("encode");
        if enc.ids != c.input_ids {
            bad.push(format!("{:?}\n  ours:         {:?}\n  transformers: {:?}", c.prompt, enc.ids, c.input_ids));
        }
        if enc.num_tokens != c.num_tokens_untruncated || enc.truncated != (c.num_tokens_untruncated > 77) {
            bad.push(format!("{:?}: num_tokens {} truncated {} (transformers: {})", c.prompt, enc.num_tokens, enc.truncated, c.num_tokens_untruncated));
        }
    }
    bad
}

#[test]
fn published_layout_matches_transformers_on_every_case() {
    let tok = ClipTokenizer::from_dir(&published_dir()).expect("load published layout");
    assert_eq!(cases().len(), 33);
    let bad = mismatches(&tok);
    assert!(bad.is_empty(), "{} mismatches:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn pad_is_the_exclamation_mark_and_bang_in_text_is_id_0() {
    let tok = ClipTokenizer::from_dir(&published_dir()).expect("load");
    assert_eq!(tok.pad_id(), 0);
    assert_eq!(tok.max_length(), 77);
    let enc = tok.encode("hi!").expect("encode");
    assert_eq!(&enc.ids[..5], &[49406, 1883, 0, 49407, 0]);
    assert_eq!(enc.ids.len(), 77);
    assert!(!enc.truncated);
    assert_eq!(tok.truncation_warning(&enc), None);
}

#[test]
fn truncation_keeps_eos_and_says_what_was_dropped() {
    let tok = ClipTokenizer::from_dir(&published_dir()).expect("load");
    let prompt = format!("{} zebra giraffe", vec!["cat"; 75].join(" "));
    let enc = tok.encode(&prompt).expect("encode");
    assert!(enc.truncated);
    assert_eq!(enc.num_tokens, 79);
    assert_eq!(enc.ids.len(), 77);
    assert_eq!(enc.ids[75], enc.ids[1], "the 75th word is still 'cat'");
    assert_eq!(enc.ids[76], 49407);
    let warning = tok.truncation_warning(&enc).expect("warning");
    assert!(warning.contains("79 tokens") && warning.contains("\"zebra giraffe\""), "{warning}");
}

/// transformers 5's save_pretrained layout (tokenizer.json + a v5 tokenizer_config.json). The
/// real file is 3.6 MB, too big for the fixtures, so it is made here: the tokenizer built from
/// vocab.json/merges.txt serialised by the `tokenizers` library (the same library and format
/// transformers writes with), then loaded back through the tokenizer.json path.
#[test]
fn tokenizer_json_layout_gives_the_same_ids() {
    let from_files = ClipTokenizer::from_dir(&published_dir()).expect("load");
    let dir = tempdir("tokenizer-json");
    std::fs::write(dir.join("tokenizer.json"), from_files.to_tokenizer_json().expect("serialise")).expect("write");
    // As transformers 5.24 writes it: string tokens, pad "!".
    let config = r#"{"add_prefix_space": false, "backend": "tokenizers", "bos_token": "<|startoftext|>",
        "do_lower_case": true, "eos_token": "<|endoftext|>", "errors": "replace", "model_max_length": 77,
        "pad_token": "!", "tokenizer_class": "CLIPTokenizer", "unk_token": "<|endoftext|>"}"#;
    std::fs::write(dir.join("tokenizer_config.json"), config).expect("write");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).expect("read")).expect("json");
    assert_eq!(json["model"]["vocab"].as_object().map(|m| m.len()), Some(49408));
    assert_eq!(json["model"]["merges"].as_array().map(|m| m.len()), Some(48894));

    let tok = ClipTokenizer::from_dir(&dir).expect("load tokenizer.json layout");
    let bad = mismatches(&tok);
    assert!(bad.is_empty(), "{} mismatches:\n{}", bad.len(), bad.join("\n"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn missing_and_corrupt_files_name_the_file() {
    let src = published_dir();
    let copy = |name: &str, dir: &Path| std::fs::copy(src.join(name), dir.join(name)).expect("copy");

    let dir = tempdir("no-merges");
    copy("vocab.json", &dir);
    let err = ClipTokenizer::from_dir(&dir).err().expect("must fail").to_string();
    assert!(err.contains("merges.txt"), "{err}");

    std::fs::write(dir.join("merges.txt"), "#version: 0.2\ni n\nthis line has three\n").expect("write");
    let err = ClipTokenizer::from_dir(&dir).err().expect("must fail").to_string();
    assert!(err.contains("merges.txt") && err.contains("line 3"), "{err}");

    std::fs::write(dir.join("vocab.json"), "{\"a\": 0, ").expect("write");
    let err = ClipTokenizer::from_dir(&dir).err().expect("must fail").to_string();
    assert!(err.contains("vocab.json") && err.contains("JSON"), "{err}");
    std::fs::remove_dir_all(&dir).ok();

    let dir = tempdir("bad-config");
    copy("vocab.json", &dir);
    copy("merges.txt", &dir);
    std::fs::write(dir.join("special_tokens_map.json"), "{\"pad_token\": 5}").expect("write");
    let err = ClipTokenizer::from_dir(&dir).err().expect("must fail").to_string();
    assert!(err.contains("special_tokens_map.json") && err.contains("pad_token"), "{err}");
    std::fs::write(dir.join("special_tokens_map.json"), "{\"pad_token\": \"<|notinvocab|>\"}").expect("write");
    // transformers would add an unknown pad token at a new id; it still encodes.
    let tok = ClipTokenizer::from_dir(&dir).expect("unknown pad token is added");
    assert_eq!(tok.pad_id(), 49408);
    std::fs::remove_dir_all(&dir).ok();

    let dir = tempdir("empty");
    let err = ClipTokenizer::from_dir(&dir).err().expect("must fail").to_string();
    assert!(err.contains("vocab.json") && err.contains("tokenizer.json"), "{err}");
    std::fs::write(dir.join("tokenizer.json"), "not json").expect("write");
    let err = ClipTokenizer::from_dir(&dir).err().expect("must fail").to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    std::fs::remove_dir_all(&dir).ok();

    let err = ClipTokenizer::from_dir(&fixtures().join("does-not-exist")).err().expect("must fail").to_string();
    assert!(err.contains("does-not-exist"), "{err}");
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("t2v-tokenizer-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
