#!/usr/bin/env python3
"""CLIP scorer fixtures for `t2v compare` / `t2v score` (issue 11): tests/fixtures/clip/.

    tools/reference/.venv/bin/python tools/reference/clip_fixtures.py   (or via make_fixtures.py)

  clip/tiny-clip/      a tiny random-weight transformers `CLIPModel` in the OpenAI repos' layout:
                       config.json + model.safetensors (save_pretrained, float32, every parameter
                       randomised), preprocessor_config.json (CLIPImageProcessorPil, shortest edge
                       32, crop 32), tokenizer files as openai/clip-vit-base-patch32 has them
                       (vocab.json and merges.txt are symlinks into tiny-t2v/tokenizer; pad
                       "<|endoftext|>"). text_config.eos_token_id = 2 as in the OpenAI configs, so
                       transformers pools the text tower at argmax(input_ids).
  clip/features.safetensors  for the tiny model, all loaded back with from_pretrained:
                       `frames` (3, 48, 64, 3) u8 → `pixel_values` (CLIPImageProcessorPil) →
                       `image_embeds` (get_image_features); `text_embeds` (get_text_features of
                       the prompts in cases.json, tokenized with padding to 77).
  clip/preprocess.safetensors  CLIPImageProcessorPil() (the defaults: shortest edge 224, PIL
                       bicubic, crop 224, OpenAI mean/std) on procedural u8 images of awkward
                       sizes (smaller and larger than 224, non-square both ways): the 8-bit
                       image after resize + crop (`crop_<h>x<w>`) and, for one of them, the
                       final pixel_values (`pixels_<h>x<w>`).
  clip/cases.json      the prompts and their input_ids, the image sizes, and the metrics computed
                       in NumPy from the stored embeddings and frames (the Rust metrics must match).

The procedural images are `image(h, w, seed)` below; tests/eval_clip.rs makes the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections import OrderedDict
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_fixtures as mf  # noqa: E402  (first: pins the CPU code paths before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from dumping import write_safetensors  # noqa: E402

SEED = 11
TEXT = dict(vocab_size=49408, hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2,
            pad_token_id=1, projection_dim=8)
VISION = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_channels=3,
              image_size=32, patch_size=8, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=8)
PROMPTS = ["A lion walking in the jungle", "a photo of a cat", "",
           "An astronaut riding a horse on the moon, photorealistic, 4k, with a very long description " * 3]
# (height, width): upscale non-square both ways, downscale landscape and portrait, just above 224
PRE_SIZES = [(17, 23), (64, 48), (257, 391), (403, 229), (226, 225)]
PRE_PIXELS = [(257, 391)]
SPECIAL = {"content": None, "single_word": False, "lstrip": False, "rstrip": False, "normalized": True}


def image(h: int, w: int, seed: int) -> np.ndarray:
    """(h, w, 3) u8: hard-edged blocks (bicubic overshoots and clips at their edges) mixed with
    splitmix64 noise of the flat index — the same integer recipe as tests/eval_clip.rs."""
    y, x, c = np.meshgrid(np.arange(h, dtype=np.uint64), np.arange(w, dtype=np.uint64), np.arange(3, dtype=np.uint64),
                          indexing="ij")
    with np.errstate(over="ignore"):
        z = (y * np.uint64(w) + x) * np.uint64(3) + c + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    noise = (z >> np.uint64(56)).astype(np.int64)
    block = (((x // np.uint64(5) + y // np.uint64(7) + c) % np.uint64(2)) * np.uint64(255)).astype(np.int64)
    return ((3 * block + noise) // 4).astype(np.uint8)


@torch.no_grad()
def randomize(model: nn.Module, seed: int) -> None:
    """Every parameter random (tiny_models.randomize's rules, plus CLIP's bare parameters)."""
    g = torch.Generator().manual_seed(seed)
    mods = dict(model.named_modules())
    for name, p in model.named_parameters():
        mname, _, pname = name.rpartition(".")
        m = mods[mname]
        noise = torch.randn(p.shape, generator=g)
        if isinstance(m, nn.LayerNorm):
            val = 1.0 + 0.2 * noise if pname == "weight" else 0.1 * noise
        elif isinstance(m, nn.Embedding) or pname == "class_embedding":
            val = 0.5 * noise
        elif pname == "logit_scale":
            val = torch.full_like(p, math.log(1 / 0.07))
        elif pname == "bias":
            val = 0.1 * noise
        elif pname == "weight" and p.dim() >= 2 and isinstance(m, (nn.Linear, nn.Conv2d)):
            val = noise * 1.2 / math.sqrt(p[0].numel())
        else:
            raise RuntimeError(f"randomize: no rule for {name} of {type(m).__name__}")
        p.copy_(val)


def write_tokenizer(out: Path, fix: Path) -> None:
    for f in ["vocab.json", "merges.txt"]:
        os.symlink(os.path.relpath(fix / "tiny-t2v" / "tokenizer" / f, out), out / f)
    special = {k: dict(SPECIAL, content=v) for k, v in
               [("bos_token", "<|startoftext|>"), ("eos_token", "<|endoftext|>"), ("unk_token", "<|endoftext|>")]}
    (out / "special_tokens_map.json").write_text(json.dumps(dict(special, pad_token="<|endoftext|>"), indent=2) + "\n")
    cfg = dict(special, pad_token="<|endoftext|>", add_prefix_space=False, errors="replace", do_lower_case=True,
               model_max_length=77, tokenizer_class="CLIPTokenizer")
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def metrics(img: np.ndarray, txt: np.ndarray, frames: np.ndarray) -> dict:
    """The README's definitions, in NumPy float64."""
    img = img.astype(np.float64)
    txt = txt.astype(np.float64)
    unit = img / np.linalg.norm(img, axis=1, keepdims=True)
    t = txt / np.linalg.norm(txt)
    cos = unit @ t
    pooled = unit.mean(axis=0)
    pooled /= np.linalg.norm(pooled)
    consecutive = (unit[:-1] * unit[1:]).sum(axis=1)
    f = frames.astype(np.float64)
    mae = np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))
    return {"clipsim": float(100 * cos.mean()), "fetv_clipscore": float(pooled @ t),
            "clip_temp": float(consecutive.mean()), "flicker": float((255.0 - mae.mean()) / 255.0)}


def main(fix: Path) -> None:
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    out = fix / "clip"
    shutil.rmtree(out, ignore_errors=True)
    model_dir = out / "tiny-clip"
    torch.manual_seed(SEED)
    cfg = CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=8)
    model = CLIPModel(cfg)
    randomize(model, SEED)
    model.eval().save_pretrained(model_dir, safe_serialization=True)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(model_dir)
    write_tokenizer(model_dir, fix)

    # Everything below from what was saved.
    model = CLIPModel.from_pretrained(model_dir).eval()
    proc = CLIPImageProcessorPil.from_pretrained(model_dir)
    tok = CLIPTokenizer.from_pretrained(model_dir)
    assert tok.pad_token_id == 49407 and tok("a photo of a cat").input_ids == mf.CAT_IDS, tok("a photo of a cat").input_ids
    frames = np.stack([image(48, 64, s) for s in range(3)])
    pixels = proc(images=list(frames), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (3, 3, 32, 32), pixels.shape
    ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pixels).pooler_output
        txt = model.get_text_features(input_ids=ids).pooler_output
        # every tower path counts: zeroing the last layer's MLP moves both outputs
        for tower, fn in [("vision_model", lambda: model.get_image_features(pixel_values=pixels).pooler_output),
                          ("text_model", lambda: model.get_text_features(input_ids=ids).pooler_output)]:
            fc2 = getattr(model, tower).encoder.layers[-1].mlp.fc2.weight
            keep = fc2.clone()
            base = fn()
            fc2.zero_()
            rel = float((fn() - base).norm() / base.norm())
            fc2.copy_(keep)
            assert rel > 0.01, (tower, rel)
    write_safetensors(out / "features.safetensors", OrderedDict(
        frames=torch.from_numpy(frames), pixel_values=pixels, image_embeds=img, text_embeds=txt), {})

    pre = CLIPImageProcessorPil()
    tensors = OrderedDict()
    for i, (h, w) in enumerate(PRE_SIZES):
        im = image(h, w, 100 + i)
        from PIL import Image
        # the 8-bit image transformers normalises: its resize (PIL) then its centre crop
        arr = np.moveaxis(im, -1, 0)
        from transformers.image_processing_backends import SizeDict
        resized = pre.resize(arr, SizeDict(shortest_edge=224), resample=pre.resample)
        crop = pre.center_crop(resized, SizeDict(height=224, width=224))
        tensors[f"crop_{h}x{w}"] = torch.from_numpy(np.ascontiguousarray(np.moveaxis(crop, 0, -1)))
        full = pre(images=im, return_tensors="pt")["pixel_values"][0]
        # the crop above is what the full processor normalised
        again = (torch.from_numpy(crop.astype(np.float64) / 255).float() - torch.tensor(pre.image_mean).view(3, 1, 1)) / torch.tensor(pre.image_std).view(3, 1, 1)
        assert torch.allclose(full, again, atol=1e-6), (h, w)
        # and PIL itself agrees with transformers' resize
        short, long_ = (w, h) if w <= h else (h, w)
        nl = int(224 * long_ / short)
        size = (224, nl) if w <= h else (nl, 224)
        assert np.array_equal(np.asarray(Image.fromarray(im).resize(size, Image.BICUBIC)), np.moveaxis(resized, 0, -1))
        if (h, w) in PRE_PIXELS:
            tensors[f"pixels_{h}x{w}"] = full
    write_safetensors(out / "preprocess.safetensors", tensors, {})

    m = [metrics(img.numpy(), txt[i].numpy(), frames) for i in range(len(PROMPTS))]
    cases = {"prompts": PROMPTS, "input_ids": ids.tolist(), "frame_size": [48, 64], "frame_seeds": [0, 1, 2],
             "preprocess_sizes": PRE_SIZES, "preprocess_seed0": 100, "pixels_sizes": PRE_PIXELS,
             "metrics_per_prompt": m, "image_seed_note": "image(h, w, seed) in tools/reference/clip_fixtures.py"}
    (out / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"clip fixtures: {size / 1e6:.2f} MB in {out}")


if __name__ == "__main__":
    main(mf.FIX)
