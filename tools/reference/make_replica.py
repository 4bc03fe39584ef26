#!/usr/bin/env python3
"""Writes a full-size random replica of the ModelScope / Zeroscope text-to-video pipeline from
the real configs in configs/modelscope-t2v/ (UNet3D 1.41 B parameters): for memory and speed
work on the real architecture without the (non-redistributable) weights. Never committed.

    tools/reference/.venv/bin/python tools/reference/make_replica.py OUT_DIR [--dtype fp16|fp32]

The tokenizer is the real CLIP BPE (from open_clip's data file, as the fixtures). Weights are
random (scaled so activations stay O(1)); outputs are noise.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "modelscope-t2v"


def randomize(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
            elif name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16")
    ap.add_argument("--components", default="unet,vae,text_encoder")
    args = ap.parse_args()
    from diffusers import AutoencoderKL, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIGS / "model_index.json", out / "model_index.json")
    (out / "scheduler").mkdir(exist_ok=True)
    shutil.copy(CONFIGS / "scheduler" / "scheduler_config.json", out / "scheduler" / "scheduler_config.json")
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from clip_tokenizer_files import write_published_layout  # beside this script

    write_published_layout(out / "tokenizer")
    wanted = set(args.components.split(","))
    for i, (name, build) in enumerate([
        ("unet", lambda: UNet3DConditionModel.from_config(json.loads((CONFIGS / "unet" / "config.json").read_text()))),
        ("vae", lambda: AutoencoderKL.from_config(json.loads((CONFIGS / "vae" / "config.json").read_text()))),
        ("text_encoder", lambda: CLIPTextModel(CLIPTextConfig(**json.loads((CONFIGS / "text_encoder" / "config.json").read_text())))),
    ]):
        if name not in wanted:
            continue
        t0 = time.time()
        m = build()
        randomize(m, seed=1000 + i)
        n = sum(p.numel() for p in m.parameters())
        m.to(dtype).save_pretrained(out / name, safe_serialization=True)
        print(f"{name}: {n / 1e6:.1f} M parameters, {args.dtype}, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
