#!/usr/bin/env python3
"""torch.randn on a CPU torch.Generator: tests/fixtures/randn.safetensors.

    tools/reference/.venv/bin/python tools/reference/randn_fixtures.py

(or main(out_dir) from another script). Each case seeds one `torch.Generator()` with
`manual_seed(seed)` and calls `torch.randn(n, generator=g, dtype=torch.float32)` once per entry
of `calls`, in order, on that same generator; tensor `<case>.<k>` is the k-th call's output
(flattened: randn of any shape is the same stream in row-major order). `__metadata__["cases"]`
is a JSON list of {"name", "seed", "calls"}.

Tensors keep the case's dtype (float32, float16 or bfloat16).

Covered: both of torch's paths (n < 16: double-precision Box-Muller with the cached second
sample; n >= 16: the vectorised float32 fill, with and without a 16-element tail), seeds of 2^32
and above (torch keeps only the low 32 bits), and successive calls (the stream and the cached
sample carry over; a large call leaves the cache alone).

The vectorised path's log/sin/cos depend on torch's CPU capability: AVX2 and AVX-512 builds use
the same avx_mathfun polynomials (identical output, checked below when the CPU has AVX-512),
ATEN_CPU_CAPABILITY=default uses libm and differs in the last bits. AVX2 is pinned here, as
make_fixtures.py does.
"""

from __future__ import annotations

import os
import sys

sys.dont_write_bytecode = True
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import pathlib
import subprocess
from collections import OrderedDict

import torch
from safetensors.torch import load_file

HERE = pathlib.Path(__file__).resolve().parent


SEEDS = [0, 1, 42, 1234, 2**32 + 5, 2**64 - 1]
SIZES = [1, 2, 7, 15, 16, 17, 31, 37, 64, 288, 360]  # 288 = the pipeline fixture's (1, 4, 3, 4, 6)

# (name, seed, calls, dtype): successive torch.randn calls on one generator.
SEQUENCES = [
    ("seq_odd_small", 0, [5, 5, 1], "float32"),  # the cached sin sample carries into the next small call
    ("seq_small_large_small", 7, [3, 40, 1, 2], "float32"),  # a large call neither uses nor clears the cache
    ("seq_large", 1234, [37, 37, 16], "float32"),
    ("seq_twist", 3, [700, 700, 1], "float32"),  # crosses MT19937's 624-word refills several times
    ("latent_4x3x8x12", 42, [4 * 3 * 8 * 12], "float32"),
    # float16 / bfloat16 (diffusers draws latents in the pipeline's dtype): the tail of a size
    # that is not a multiple of 16 comes from a different stream position than for float32.
    ("f16_seq", 0, [7, 37, 288, 300], "float16"),
    ("f16_s42", 42, [17, 3], "float16"),
    ("bf16_seq", 0, [7, 37, 288, 300], "bfloat16"),
]
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def cases() -> list:
    out = [(f"s{seed}_n{n}", seed, [n], "float32") for seed in SEEDS for n in SIZES]
    return out + SEQUENCES


def draw(seed: int, calls: list, dtype: str = "float32") -> list:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g, dtype=DTYPES[dtype]) for n in calls]


def main(out_dir) -> pathlib.Path:
    torch.set_num_threads(1)
    out_dir = pathlib.Path(out_dir)
    tensors: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    meta = []
    for name, seed, calls, dtype in cases():
        for k, t in enumerate(draw(seed, calls, dtype)):
            tensors[f"{name}.{k}"] = t
        meta.append({"name": name, "seed": seed, "calls": calls, "dtype": dtype})

    # Facts the Rust side relies on.
    assert torch.equal(draw(2**32 + 5, [40])[0], draw(5, [40])[0]), "seeds >= 2^32: low 32 bits only"
    g = torch.Generator().manual_seed(0)
    a = torch.randn(1, generator=g)
    g2 = torch.Generator().manual_seed(0)
    assert torch.equal(torch.randn(2, generator=g2)[:1], a), "one small call = one stream"
    assert not torch.equal(draw(0, [37], "float16")[0], draw(0, [37])[0].half()), "f16 tail is drawn later"
    assert torch.equal(draw(0, [288], "float16")[0], draw(0, [288])[0].half()), "16 | n: f16 = rounded f32"

    metadata = {"cases": json.dumps(meta, separators=(",", ":")), "torch": torch.__version__,
                "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    path = out_dir / "randn.safetensors"
    write_exact(path, tensors, metadata)
    back = load_file(str(path))
    assert back.keys() == tensors.keys() and all(back[k].dtype == t.dtype and torch.equal(back[k], t) for k, t in tensors.items())
    check_avx512_same(path)
    print(f"{path}: {len(tensors)} tensors, {path.stat().st_size} bytes, capability {metadata['cpu_capability']}")
    return path


ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def write_exact(path: pathlib.Path, tensors: "OrderedDict[str, torch.Tensor]", metadata: dict) -> None:
    """safetensors with each tensor's own dtype (dumping.write_safetensors upcasts floats to
    float32) and a fixed header order (safetensors' save_file orders __metadata__ randomly)."""
    import struct

    header: "OrderedDict[str, object]" = OrderedDict([("__metadata__", OrderedDict(sorted(metadata.items())))])
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = OrderedDict([("dtype", ST_DTYPES[t.dtype]), ("shape", list(t.shape)), ("data_offsets", [offset, offset + len(raw)])])
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def check_avx512_same(path: pathlib.Path) -> None:
    """On an AVX-512 CPU, regenerate with ATEN_CPU_CAPABILITY=avx512 and compare."""
    if os.environ.get("RANDN_FIXTURE_CHILD"):
        return
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return
    if "avx512f" not in flags:
        return
    import tempfile

    with tempfile.TemporaryDirectory() as td:
        env = dict(os.environ, ATEN_CPU_CAPABILITY="avx512", RANDN_FIXTURE_CHILD="1")
        subprocess.run([sys.executable, __file__, td], env=env, check=True, capture_output=True)
        a, b = load_file(str(path)), load_file(str(pathlib.Path(td) / "randn.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "avx512 differs from avx2"
    print("avx512 capability: identical output")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else HERE.parent.parent / "tests" / "fixtures")
