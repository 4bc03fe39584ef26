#!/usr/bin/env python3
"""Writes a full-size random replica of Wan-AI/Wan2.1-T2V-1.3B-Diffusers (the diffusers folder
layout, the real configs of WAN.md §2.1 / §3.1 / §4.1 / §5.1) for memory and speed work on the
real architecture without the real weights. Never committed. Outputs are noise.

    tools/reference/.venv/bin/python tools/reference/make_wan_replica.py OUT_DIR
        [--dtype bf16|fp32] [--vae-dtype fp32|bf16] [--components transformer,text_encoder,vae]
        [--tiny]   (the tiny fixture configs instead: a seconds-long self-check of this script)

Sizes with the defaults (bf16, VAE fp32 as the real repo): transformer 2.84 GB (1,418,996,800
params, 2 shards + index), text encoder 11.36 GB (5,680,910,336 params, 3 shards + index),
VAE 0.51 GB; about 15 GB of disk, a few GB of RAM (tensors are written in row chunks; no model
is instantiated at full size: the key list comes from a meta-device instance).

The tokenizer is tests/fixtures/wan/tiny-wan/tokenizer (474 ids, the real one has 256,384 rows
in the embedding: every id is valid, most rows are never used). Random values: N(0,1)/sqrt(fan_in)
for matrices, 1 + 0.1·N for norm gains, 0.05·N for biases / 1-D tensors, 0.5·N for embeddings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import struct
import sys
import time
from collections import OrderedDict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TINY = ROOT / "tests" / "fixtures" / "wan" / "tiny-wan"

TRANSFORMER_1_3B = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
                        out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                        qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=None, added_kv_proj_dim=None,
                        rope_max_seq_len=1024)
UMT5_XXL = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
                dropout_rate=0.1, layer_norm_epsilon=1e-6, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                tie_word_embeddings=False, scalable_attention=True, tokenizer_class="T5Tokenizer")
VAE_2_1 = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
               temperal_downsample=[False, True, True], dropout=0.0,
               latents_mean=[-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715,
                             0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921],
               latents_std=[2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652,
                            1.5579, 1.6382, 1.1253, 2.8251, 1.916])
SHARD_BYTES = 5 * 10**9  # as the Hub repos (5 GB shards)
DTYPES = {"bf16": (torch.bfloat16, "BF16"), "fp32": (torch.float32, "F32")}


def tiny_configs():
    sys.path.insert(0, str(HERE))
    import importlib

    wf = importlib.import_module("wan_fixtures")  # pins CPU env vars; harmless here
    return dict(wf.TRANSFORMER_CONFIG), dict(wf.UMT5_CONFIG, vocab_size=512), dict(wf.VAE_CONFIG)


def values(name: str, shape, rows: slice, g: torch.Generator, kind: str) -> torch.Tensor:
    """Random values of rows `rows` (along dim 0) of a tensor of the given shape."""
    n = rows.stop - rows.start
    sub = (n,) + tuple(shape[1:])
    x = torch.randn(sub, generator=g)
    if kind == "embedding":
        return 0.5 * x
    if len(shape) >= 2:
        return x / math.sqrt(math.prod(shape[1:]))
    if kind == "norm":
        return 1.0 + 0.1 * x
    return 0.05 * x


def kind_of(model, name: str) -> str:
    mod = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    cls = type(mod).__name__
    if isinstance(mod, torch.nn.Embedding):
        return "embedding"
    if "Norm" in cls or "norm" in cls.lower() or name.endswith(".gamma"):
        return "norm" if name.endswith(("weight", "gamma")) else "bias"
    return "other"


def write_component(model, out: Path, stem: str, dtype_key: str, shard_bytes: int, seed: int) -> int:
    """Stream model's state-dict shapes into safetensors shard(s) (+ index when more than one)."""
    torch_dt, st_dt = DTYPES[dtype_key]
    esize = torch.tensor([], dtype=torch_dt).element_size()
    # tied tensors (UMT5's shared.weight = encoder.embed_tokens.weight) are written once, under
    # the first name, as save_pretrained does
    sd, seen = OrderedDict(), set()
    for k, v in model.state_dict(keep_vars=True).items():
        if id(v) not in seen:
            seen.add(id(v))
            sd[k] = tuple(v.shape)
    # shards in key order, each under shard_bytes (a tensor bigger than that gets its own shard)
    shards, cur, cur_bytes = [], [], 0
    for k, shp in sd.items():
        nb = math.prod(shp) * esize
        if cur and cur_bytes + nb > shard_bytes:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append(k)
        cur_bytes += nb
    shards.append(cur)
    out.mkdir(parents=True, exist_ok=True)
    names = [f"{stem}.safetensors"] if len(shards) == 1 else [
        f"{stem}-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map, total = OrderedDict(), 0
    g = torch.Generator().manual_seed(seed)
    for fname, keys in zip(names, shards):
        header, off = OrderedDict(), 0
        header["__metadata__"] = {"format": "pt"}
        for k in keys:
            nb = math.prod(sd[k]) * esize
            header[k] = {"dtype": st_dt, "shape": list(sd[k]), "data_offsets": [off, off + nb]}
            off += nb
            weight_map[k] = fname
        total += off
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        with open(out / fname, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for k in keys:
                shp, kind = sd[k], kind_of(model, k)
                n0 = shp[0] if shp else 1
                row = math.prod(shp[1:]) if len(shp) > 1 else 1
                step = max(1, (1 << 24) // max(row, 1))  # ~16 M values per chunk
                if not shp:
                    f.write(values(k, (1,), slice(0, 1), g, kind).to(torch_dt).reshape(()).view(torch.uint8).numpy().tobytes())
                    continue
                for r in range(0, n0, step):
                    v = values(k, shp, slice(r, min(n0, r + step)), g, kind).to(torch_dt).contiguous()
                    f.write(v.view(torch.uint8).numpy().tobytes())
        print(f"  {out.name}/{fname}: {off / 1e9:.2f} GB", flush=True)
    if len(names) > 1:
        idx = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        iname = f"{stem}.safetensors.index.json"
        (out / iname).write_text(json.dumps(idx, indent=2) + "\n")
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="transformer and text encoder")
    ap.add_argument("--vae-dtype", choices=["bf16", "fp32"], default="fp32")
    ap.add_argument("--components", default="transformer,text_encoder,vae")
    ap.add_argument("--tiny", action="store_true", help="tiny fixture configs (self-check: loads with WanPipeline)")
    args = ap.parse_args()
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    t0 = time.time()
    tr_cfg, te_cfg, vae_cfg = (TRANSFORMER_1_3B, UMT5_XXL, VAE_2_1) if not args.tiny else tiny_configs()
    shard = SHARD_BYTES if not args.tiny else 40_000
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(TINY / "model_index.json", out / "model_index.json")
    for sub in ("scheduler", "tokenizer"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
        shutil.copytree(TINY / sub, out / sub)
    wanted = set(args.components.split(","))
    def meta(build):
        with torch.device("meta"):  # shapes only: nothing is allocated
            return build()

    if "transformer" in wanted:
        m = meta(lambda: WanTransformer3DModel(**tr_cfg))
        m.save_config(out / "transformer")
        n = write_component(m, out / "transformer", "diffusion_pytorch_model", args.dtype, shard, 1)
        print(f"transformer: {sum(p.numel() for p in m.parameters()):,} params, {n / 1e9:.2f} GB", flush=True)
    if "text_encoder" in wanted:
        cfg = UMT5Config(**te_cfg)
        m = meta(lambda: UMT5EncoderModel(cfg))
        cfg.dtype = DTYPES[args.dtype][0]
        cfg.save_pretrained(out / "text_encoder")
        n = write_component(m, out / "text_encoder", "model", args.dtype, shard, 2)
        print(f"text_encoder: {sum(p.numel() for p in m.parameters()):,} params, {n / 1e9:.2f} GB", flush=True)
    if "vae" in wanted:
        m = meta(lambda: AutoencoderKLWan(**vae_cfg))
        m.save_config(out / "vae")
        n = write_component(m, out / "vae", "diffusion_pytorch_model", args.vae_dtype, 1 << 62, 3)
        print(f"vae: {sum(p.numel() for p in m.parameters()):,} params, {n / 1e9:.2f} GB", flush=True)
    if args.tiny:
        from diffusers import WanPipeline

        pipe = WanPipeline.from_pretrained(out, torch_dtype=torch.float32)
        v = pipe(prompt="a cat", height=16, width=16, num_frames=5, num_inference_steps=2, output_type="np",
                 generator=torch.Generator().manual_seed(0)).frames
        assert v.shape == (1, 5, 16, 16, 3) and torch.isfinite(torch.from_numpy(v)).all(), v.shape
        print(f"tiny self-check: WanPipeline.from_pretrained + 2 steps -> frames {v.shape}, std {v.std():.3f}")
    print(f"done in {time.time() - t0:.0f} s: {out}")


if __name__ == "__main__":
    main()
