//! T5/umT5 tokenizer and Wan's prompt cleaning. Expected strings in the cleaning tables are
//! what CPython 3.11's `html.unescape` and diffusers' `prompt_clean` (with `regex`, no ftfy)
//! return for them; token ids of a tiny Unigram vocabulary follow from its pieces. Ids against
//! transformers itself: `fixture_ids_match_transformers` (tests/fixtures/wan).

use std::path::PathBuf;
use t2v::tokenizer::clean::html_unescape;
use t2v::tokenizer::{prompt_clean, T5Tokenizer};

#[test]
fn html_unescape_matches_python() {
    let cases: &[(&str, &str)] = &[
        ("a &amp; b", "a & b"),
        ("&amp;lt;tag&amp;gt;", "&lt;tag&gt;"),
        ("&lt", "<"),
        ("&ltx", "<x"),
        ("&notin;", "∉"),
        ("&notit;", "¬it;"),
        ("&amp", "&"),
        ("&#39;", "'"),
        ("&#x27;", "'"),
        ("&#X41;&#65", "AA"),
        ("&#0;", "\u{fffd}"),
        ("&#128;", "€"),
        ("&#x80;", "€"),
        ("&#129;", "\u{81}"),
        ("&#xD800;", "\u{fffd}"),
        ("&#x110000;", "\u{fffd}"),
        ("&#99999999999999999999;", "\u{fffd}"),
        ("&#1;", ""),
        ("&#x7f;", ""),
        ("&#xFFFF;", ""),
        ("&#13;", "\r"),
        ("&#;", "&#;"),
        ("&#x;", "&#x;"),
        ("&", "&"),
        ("&&amp;", "&&"),
        ("&abcdefghijklmnopqrstuvwxyzabcdefghij;", "&abcdefghijklmnopqrstuvwxyzabcdefghij;"),
        ("&unknown;", "&unknown;"),
        ("&AMP;", "&"),
        ("&Eacute;t&eacute", "Été"),
        ("caf&eacute;s", "cafés"),
        ("&nbsp;x", "\u{a0}x"),
        ("&frac12;&frac34", "½¾"),
        ("&ThickSpace;", "\u{205f}\u{200a}"),
        ("&NotEqualTilde;", "≂\u{338}"),
        ("&copy2026", "©2026"),
        ("&#x1F600;", "😀"),
        ("&#128512;", "😀"),
        ("&le;&ge", "≤&ge"),
        ("&;", "&;"),
        ("& amp;", "& amp;"),
        ("&amp ;", "& ;"),
        ("&é;", "&é;"),
        ("&lt;é", "<é"),
    ];
    let bad: Vec<String> = cases
        .iter()
        .filter(|(i, o)| html_unescape(i) != *o)
        .map(|(i, o)| format!("{i:?}: got {:?}, Python {o:?}", html_unescape(i)))
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn prompt_clean_matches_diffusers() {
    let cases: &[(&str, &str)] = &[
        ("  a \t\n b  ", "a b"),
        ("\u{3000}x\u{a0}y\u{2028}", "x y"),
        ("\u{1f}a b\u{1c}", "a b"),  // str.strip() strips U+001C–U+001F …
        ("a\u{1f}b", "a\u{1f}b"),    // … but `\s` does not match them
        ("x &amp;nbsp; y", "x y"),  // unescaped twice: &amp;nbsp; → &nbsp; → U+00A0
        ("&#32;&#32;a", "a"),
        ("a&#10;b", "a b"),
        ("\u{200b}z", "\u{200b}z"), // zero-width space is not White_Space
        ("", ""),
    ];
    for (i, o) in cases {
        assert_eq!(prompt_clean(i), *o, "prompt_clean({i:?})");
    }
}

/// A T5Tokenizer-style tokenizer.json over a tiny Unigram vocabulary (WAN.md §8.1's), as
/// transformers 5 saves one, optionally with the padding/truncation blocks a padded call leaves.
fn tiny_dir(name: &str, persisted_padding: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("t2v-tok-t5-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut vocab = vec![
        serde_json::json!(["<pad>", 0.0]),
        serde_json::json!(["</s>", 0.0]),
        serde_json::json!(["<unk>", 0.0]),
        serde_json::json!(["▁", -2.0]),
    ];
    for (p, s) in [("▁dance", -3.0), ("▁monkey", -3.1), ("▁neg", -3.2), ("ative", -3.3)] {
        vocab.push(serde_json::json!([p, s]));
    }
    for c in 'a'..='z' {
        vocab.push(serde_json::json!([c.to_string(), -8.0]));
    }
    let added: Vec<_> = ["<pad>", "</s>", "<unk>"]
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    let (padding, truncation) = if persisted_padding {
        (
            serde_json::json!({"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "<pad>"}),
            serde_json::json!({"direction": "Right", "max_length": 16, "strategy": "LongestFirst", "stride": 0}),
        )
    } else {
        (serde_json::Value::Null, serde_json::Value::Null)
    };
    let doc = serde_json::json!({
        "version": "1.0", "truncation": truncation, "padding": padding, "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
        "post_processor": null, "decoder": null,
        "model": {"type": "Unigram", "unk_id": 2, "vocab": vocab, "byte_fallback": false},
    });
    std::fs::write(dir.join("tokenizer.json"), doc.to_string()).unwrap();
    dir
}

#[test]
fn eos_padding_mask_and_truncation() {
    for persisted in [false, true] {
        let dir = tiny_dir(&format!("basic{persisted}"), persisted);
        let tok = T5Tokenizer::from_dir(&dir).unwrap();
        assert_eq!((tok.eos_id(), tok.pad_id()), (1, 0));
        let e = tok.encode_prompt("  dance   monkey ", 8).unwrap();
        assert_eq!(e.ids, [4, 5, 1, 0, 0, 0, 0, 0], "persisted padding block: {persisted}");
        assert_eq!(e.mask, [1, 1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(e.seq_len, 3);
        assert!(!e.truncated && tok.truncation_warning(&e).is_none());
        // Empty prompt (diffusers' default negative prompt): just </s>.
        let e = tok.encode_prompt("", 512).unwrap();
        assert_eq!((e.ids.len(), e.seq_len, &e.ids[..2]), (512, 1, &[1u32, 0][..]));
        // Truncation keeps max_length − 1 pieces and ends in </s>.
        let e = tok.encode("dance dance dance dance monkey", 4).unwrap();
        assert_eq!(e.ids, [4, 4, 4, 1]);
        assert_eq!(e.mask, [1, 1, 1, 1]);
        assert!(e.truncated);
        assert_eq!(e.num_tokens, 6);
        let w = tok.truncation_warning(&e).unwrap();
        assert!(w.contains("6 tokens") && w.contains("at most 4") && w.contains("dance monkey"), "{w}");
        // A character outside the vocabulary becomes unk (id 2, as transformers 5 hard-codes).
        let e = tok.encode("dance 7", 6).unwrap();
        assert_eq!(&e.ids[..4], &[4, 3, 2, 1]);
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn bad_tokenizer_files_name_the_file() {
    let dir = std::env::temp_dir().join(format!("t2v-tok-t5-{}-bad", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = T5Tokenizer::from_dir(&dir).err().unwrap().to_string();
    assert!(e.contains("tokenizer.json") && e.contains("not found"), "{e}");
    let path = dir.join("tokenizer.json");
    std::fs::write(&path, "{not json").unwrap();
    let e = T5Tokenizer::from_dir(&dir).err().unwrap().to_string();
    assert!(e.contains(&path.display().to_string()) && e.contains("not valid JSON"), "{e}");
    std::fs::write(&path, r#"{"model": {"type": "BPE", "vocab": {}, "merges": []}}"#).unwrap();
    let e = T5Tokenizer::from_dir(&dir).err().unwrap().to_string();
    assert!(e.contains(&path.display().to_string()) && e.contains("not a T5-style") && e.contains("BPE"), "{e}");
    std::fs::write(&path, r#"{"model": {"type": "Unigram", "vocab": [["a", 0.0], ["b", 0.0], ["c", 0.0]]}}"#).unwrap();
    let e = T5Tokenizer::from_dir(&dir).err().unwrap().to_string();
    assert!(e.contains("\"</s>\" is not in the vocabulary"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    prompt: String,
    cleaned: String,
    num_tokens_untruncated: usize,
    seq_len: usize,
    input_ids: Vec<u32>,
}

/// tests/fixtures/wan/tokenizer_cases.json: diffusers' prompt_clean and transformers 5's
/// T5Tokenizer (512, padded, truncated) on the tiny-wan tokenizer, as WanPipeline calls them.
#[test]
fn fixture_ids_match_transformers() {
    let wan = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan");
    let tok = T5Tokenizer::from_dir(&wan.join("tiny-wan/tokenizer")).unwrap();
    let cases: Vec<Case> = serde_json::from_str(&std::fs::read_to_string(wan.join("tokenizer_cases.json")).unwrap()).unwrap();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    let mut bad = Vec::new();
    for c in &cases {
        let cleaned = prompt_clean(&c.prompt);
        if cleaned != c.cleaned {
            bad.push(format!("{}: cleaned {cleaned:?}, diffusers {:?}", c.name, c.cleaned));
        }
        let e = tok.encode_prompt(&c.prompt, 512).unwrap();
        if e.ids != c.input_ids {
            let first = e.ids.iter().zip(&c.input_ids).position(|(a, b)| a != b).unwrap_or(0);
            bad.push(format!("{}: ids differ from position {first}: ours {:?}, transformers {:?}", c.name, &e.ids[first..(first + 8).min(512)], &c.input_ids[first..(first + 8).min(512)]));
        }
        if e.seq_len != c.seq_len || e.num_tokens != c.num_tokens_untruncated || e.truncated != (c.num_tokens_untruncated > 512) {
            bad.push(format!("{}: seq_len {} num_tokens {} (transformers {} {})", c.name, e.seq_len, e.num_tokens, c.seq_len, c.num_tokens_untruncated));
        }
        let ones = e.mask.iter().take_while(|&&m| m == 1).count();
        assert!(ones == c.seq_len && e.mask[ones..].iter().all(|&m| m == 0), "{}: mask", c.name);
    }
    assert!(bad.is_empty(), "{} mismatches:\n{}", bad.len(), bad.join("\n"));
    let long = cases.iter().find(|c| c.name == "long_over_512").unwrap();
    let e = tok.encode_prompt(&long.prompt, 512).unwrap();
    assert!(tok.truncation_warning(&e).is_some_and(|w| w.contains("at most 512")));
}
