"""CLIP tokenizer files in the layout published by the ModelScope / Zeroscope repos.

vocab.json / merges.txt are rebuilt from OpenAI CLIP's BPE data (bpe_simple_vocab_16e6.txt.gz,
shipped in the open_clip_torch wheel) exactly as CLIP's SimpleTokenizer builds its vocabulary:
the 256 byte-to-unicode characters, the same 256 with "</w>", the first 48,894 merges joined,
then <|startoftext|> (49406) and <|endoftext|> (49407). The files are written the way
transformers 4.x CLIPTokenizer.save_vocabulary wrote them (vocab.json: indent=2, sorted keys,
raw UTF-8, trailing newline; merges.txt: "#version: 0.2" then one merge per line), which gives
the published sizes (vocab.json 1,059,962 B, merges.txt 524,619 B); special_tokens_map.json
(pad "!") and tokenizer_config.json come out at the published 460 B and 755 B.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import json
from pathlib import Path

NUM_MERGES = 49152 - 256 - 2  # 48,894, as CLIP's SimpleTokenizer: merges[1 : 49152 - 256 - 2 + 1]


def bpe_data_path() -> Path:
    # Read the data file without importing open_clip (importing it needs torchvision).
    dist = importlib.metadata.distribution("open_clip_torch")
    p = Path(dist.locate_file("open_clip/bpe_simple_vocab_16e6.txt.gz"))
    if not p.exists():
        raise SystemExit(f"{p} missing: pip install --no-deps open_clip_torch==3.3.0 (see tools/reference/README.md)")
    return p


def bytes_to_unicode() -> dict:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build_vocab_and_merges():
    lines = gzip.open(bpe_data_path()).read().decode("utf-8").split("\n")
    merges = lines[1 : NUM_MERGES + 1]
    assert len(merges) == NUM_MERGES
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    for m in merges:
        vocab.append("".join(m.split()))
    vocab.extend(["<|startoftext|>", "<|endoftext|>"])
    assert len(vocab) == 49408 and len(set(vocab)) == 49408
    return {t: i for i, t in enumerate(vocab)}, merges


def _added_token(content: str, typed: bool) -> dict:
    d = {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    return {"__type": "AddedToken", **d} if typed else d


def write_published_layout(dir_: Path) -> None:
    """vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json."""
    dir_.mkdir(parents=True, exist_ok=True)
    encoder, merges = build_vocab_and_merges()
    (dir_ / "vocab.json").write_text(json.dumps(encoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    (dir_ / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges), encoding="utf-8")
    special = {
        "bos_token": _added_token("<|startoftext|>", False),
        "eos_token": _added_token("<|endoftext|>", False),
        "pad_token": "!",
        "unk_token": _added_token("<|endoftext|>", False),
    }
    (dir_ / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    config = {
        "add_prefix_space": False,
        "bos_token": _added_token("<|startoftext|>", True),
        "do_lower_case": True,
        "eos_token": _added_token("<|endoftext|>", True),
        "errors": "replace",
        "model_max_length": 77,
        "pad_token": "<|endoftext|>",
        "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": _added_token("<|endoftext|>", True),
    }
    (dir_ / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


# Prompts chosen to exercise every branch of the tokenizer: the normalizer (NFC, whitespace
# collapse, lowercase), the pre-tokenizer regex (contractions, letters, single digits, runs of
# other characters), byte-level fallback for characters outside the vocabulary, the pad token
# "!" (an added special token: transformers splits it out of the text, see README), the
# special-token strings typed literally, and truncation at 77.
TOKENIZER_CASES = [
    "a photo of a cat",
    "",
    "A lion walking in the jungle",
    "An astronaut riding a horse on Mars, 4k, highly detailed, trending on artstation",
    "Hello, World! How's it going?",
    "!",
    "!!!wow!!! amazing!great",
    "don't stop, it's 5 o'clock; we'll see, they've gone, I'm here, you're there, he'd go",
    "DON'T SHOUT. IT'S LOUD. WE'LL'VE",
    "mr. smith's dog's toy 'quoted' rock'n'roll",
    "it\u2019s a curly apostrophe \u2018single\u2019 \u201cdouble\u201d",
    "   multiple   spaces\tand\ttabs\nand\nnew lines\r\n  trailing   ",
    "\n\n\t",
    "non\u00a0breaking\u2003em\u2002en\u3000ideographic spaces",
    "zero\u200bwidth\u200djoiner",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00dcber \u00c6SIR fa\u00e7ade \u00df",
    "cafe\u0301 combining acute (NFC makes it \u00e9)",
    "\u00c9COLE \u00c0 PARIS, \u0130stanbul, \u03a3\u0399\u03a3\u03a5\u03a6\u039f\u03a3",
    "emoji \U0001f431\U0001f680\U0001f44d\U0001f3fd and family \U0001f468\u200d\U0001f469\u200d\U0001f467 flags \U0001f1eb\U0001f1f7",
    "CJK: \u732b\u304c\u8d70\u308b \u4e2d\u6587\u5b57\u7b26 \ud55c\uad6d\uc5b4",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e and \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22 and \u0645\u0631\u062d\u0628\u0627",
    "numbers 1234567890 3.14159 -42 1,000,000 2023-06-21 24fps 576x320",
    "x\u00b2 \u00bd \u2153 \u216b \u0663\u0664 \u2460 \uff21\uff22\uff23 \ufb01 ligature",
    "punctuation ??? ... --- (brackets) [x] {y} <z> @#$%^&*_+=|\\/~` \"quotes\"",
    "html &amp; entities &lt;b&gt; stay literal",
    "<|startoftext|> and <|endoftext|> typed in the prompt",
    "A<|endoftext|>B <|ENDOFTEXT|> upper-case special token",
    "hi! hi ! \uff48\uff49\uff01 full-width",
    "UPPER lower MiXeD CamelCaseWord",
    "bell\u0007control\u001fchars",
    " ".join(["word"] * 75),
    " ".join(["word"] * 76),
    "a very long prompt that keeps going " * 20,
]


def tokenizer_cases(tokenizer) -> list:
    out = []
    for prompt in TOKENIZER_CASES:
        enc = tokenizer(prompt, padding="max_length", max_length=77, truncation=True)
        full = tokenizer(prompt).input_ids
        out.append({"prompt": prompt, "num_tokens_untruncated": len(full), "input_ids": list(enc.input_ids)})
    return out


def dumps_cases(cases: list) -> str:
    # One case per line: readable diffs, small file.
    return "[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n"
