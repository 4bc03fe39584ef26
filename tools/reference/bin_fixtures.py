#!/usr/bin/env python3
"""PyTorch .bin (torch.save zip) checkpoints: tests/fixtures/bin/.

    tools/reference/.venv/bin/python tools/reference/bin_fixtures.py

(or main(out_dir) from another script; run make_fixtures.py first: it reads tiny-t2v/vae).

  bin/vae/                    the tiny VAE of tiny-t2v/vae, cast to float16 and saved the way
                              Zeroscope's repos ship it: `save_pretrained(safe_serialization=False)`
                              → config.json + diffusion_pytorch_model.bin (torch.save of the fp16
                              state dict, HalfStorage; includes the `_metadata` BUILD).
  bin/views.bin               tensors that share storages and are not contiguous: slices at an
                              offset, a transposed view, a column, a step slice, an expanded
                              (stride 0) tensor, a Parameter, bf16, f32 and int64 storages.
  bin/views.safetensors       the same tensors made contiguous (what a reader must return).
  bin/hostile_global.bin      a torch.save-style zip whose data.pkl calls os.system (GLOBAL
                              'os system' + REDUCE). Written byte by byte; never unpickled.
  bin/hostile_opcode.bin      the same through the INST opcode (no GLOBAL at all).
"""

from __future__ import annotations

import os
import sys

sys.dont_write_bytecode = True
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pathlib
import shutil
import zipfile
from collections import OrderedDict

import torch
from safetensors.torch import load_file, save_file

HERE = pathlib.Path(__file__).resolve().parent

REPO = HERE.parent.parent


def save_vae_bin(out: pathlib.Path) -> None:
    from diffusers import AutoencoderKL

    src = REPO / "tests" / "fixtures" / "tiny-t2v" / "vae"
    vae = AutoencoderKL.from_pretrained(src, torch_dtype=torch.float32)
    vae.half().save_pretrained(out, safe_serialization=False)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["config.json", "diffusion_pytorch_model.bin"], names
    # The .bin holds exactly the f32 weights rounded to f16.
    f32 = load_file(str(src / "diffusion_pytorch_model.safetensors"))
    f16 = torch.load(out / "diffusion_pytorch_model.bin", weights_only=True)
    assert f32.keys() == f16.keys()
    for k in f32:
        assert f16[k].dtype == torch.float16 and torch.equal(f32[k].half(), f16[k]), k


def views() -> "OrderedDict[str, torch.Tensor]":
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g).half()
    f32 = torch.randn(5, 8, generator=g)
    sd = OrderedDict()
    sd["base"] = base                       # storage 0, offset 0
    sd["rows_1_2"] = base[1:3]              # storage 0, offset 6, contiguous
    sd["flat_5_17"] = base.view(-1)[5:17]   # storage 0, offset 5
    sd["transposed"] = base.t()             # storage 0, stride (1, 6)
    sd["column_2"] = base[:, 2]             # storage 0, offset 2, stride (6,)
    sd["f32_step"] = f32[::2, 1::3]         # stride (16, 3), offset 1
    sd["f32_whole"] = f32
    sd["expanded"] = torch.arange(3, dtype=torch.float32).view(3, 1).expand(3, 4)  # stride (1, 0)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 3, generator=g))
    sd["bf16"] = torch.randn(7, generator=g).bfloat16()
    sd["int64"] = torch.arange(5)
    sd["scalar"] = torch.tensor(2.5)        # 0-dim
    sd["empty"] = torch.zeros(0, 3)
    # nn.Module.state_dict() attaches per-module versions; pickle stores them with BUILD.
    sd._metadata = OrderedDict({"": {"version": 1}, "conv": {"version": 2}})
    return sd


def torch_style_zip(path: pathlib.Path, folder: str, pkl: bytes) -> None:
    """A zip laid out like torch.save's: stored entries under one folder."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in [("data.pkl", pkl), ("byteorder", b"little"), ("version", b"3\n")]:
            z.writestr(zipfile.ZipInfo(f"{folder}/{name}", date_time=(1980, 1, 1, 0, 0, 0)), data)


# Hand-assembled pickles (protocol 2). They are only ever written as bytes here.
HOSTILE_GLOBAL = (
    b"\x80\x02"                               # PROTO 2
    b"cos\nsystem\n"                          # GLOBAL 'os system'
    b"X\x0a\x00\x00\x00echo pwned"            # BINUNICODE 'echo pwned'
    b"\x85"                                   # TUPLE1
    b"R"                                      # REDUCE  -> os.system('echo pwned')
    b"."                                      # STOP
)
HOSTILE_OPCODE = (
    b"\x80\x02"
    b"("                                      # MARK
    b"X\x0a\x00\x00\x00echo pwned"
    b"ios\nsystem\n"                          # INST 'os system' (calls it with the marked args)
    b"."
)


def main(out_dir) -> pathlib.Path:
    torch.set_num_threads(1)
    out = pathlib.Path(out_dir) / "bin"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    save_vae_bin(out / "vae")

    sd = views()
    torch.save(sd, out / "views.bin")
    back = torch.load(out / "views.bin", weights_only=True)
    assert back["rows_1_2"].untyped_storage().data_ptr() == back["base"].untyped_storage().data_ptr()
    assert not back["transposed"].is_contiguous() and back["expanded"].stride() == (1, 0)
    contiguous = OrderedDict((k, v.detach().contiguous().clone()) for k, v in sd.items())
    # safetensors' own writer keeps every dtype (dumping.write_safetensors upcasts floats).
    save_file(dict(contiguous), str(out / "views.safetensors"))
    back = load_file(str(out / "views.safetensors"))
    assert all(back[k].dtype == v.dtype and torch.equal(back[k], v) for k, v in contiguous.items())

    torch_style_zip(out / "hostile_global.bin", "hostile_global", HOSTILE_GLOBAL)
    torch_style_zip(out / "hostile_opcode.bin", "hostile_opcode", HOSTILE_OPCODE)

    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(out.parent)}: {p.stat().st_size} bytes")
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else REPO / "tests" / "fixtures")
