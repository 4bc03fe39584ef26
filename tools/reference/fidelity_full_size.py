#!/usr/bin/env python3
"""t2v against diffusers at full size (not in CI): the full-size random replica of the
ModelScope / Zeroscope architecture (make_replica.py) at 576×320, 2 frames, 1 DDIM step,
guidance 9, seed 0, through TextToVideoSDPipeline (float32, from_pretrained) and `t2v generate`
(raw frames as .npy); prints the frame error.

    tools/reference/.venv/bin/python tools/reference/fidelity_full_size.py [--replica DIR] [--t2v target/release/t2v] [--runner .ci/in-trixie]

The replica is written with make_replica.py (fp16 files, ~2.8 GB) when DIR has none. diffusers
loads it upcast to float32; t2v keeps the f16 matrices on the device and computes in f32, so
both compute in f32 on the same values.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replica", type=Path, default=Path("/tmp/t2v-replica"))
    ap.add_argument("--t2v", type=Path, default=REPO / "target" / "release" / "t2v")
    ap.add_argument("--runner", default="", help="command prefix for t2v, e.g. .ci/in-trixie (Mesa 26 lavapipe)")
    ap.add_argument("--height", type=int, default=320)
    ap.add_argument("--width", type=int, default=576)
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--guidance", type=float, default=9.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompt", default="A lion walking in the jungle")
    args = ap.parse_args()
    if not (args.replica / "unet" / "config.json").exists():
        subprocess.run([sys.executable, str(HERE / "make_replica.py"), str(args.replica)], check=True)
    out = args.replica / "fidelity"
    out.mkdir(exist_ok=True)

    torch.set_grad_enabled(False)
    from diffusers import TextToVideoSDPipeline

    t0 = time.time()
    pipe = TextToVideoSDPipeline.from_pretrained(args.replica, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    want = pipe(args.prompt, num_frames=args.frames, height=args.height, width=args.width, num_inference_steps=args.steps,
                guidance_scale=args.guidance, generator=torch.Generator().manual_seed(args.seed), output_type="np").frames[0]
    t_diffusers = time.time() - t0
    del pipe

    t0 = time.time()
    npy = out / "t2v.npy"
    subprocess.run(args.runner.split() + [str(args.t2v.resolve()), "generate", "--model", str(args.replica), "--prompt", args.prompt,
                    "--num-frames", str(args.frames), "--height", str(args.height), "--width", str(args.width),
                    "--num-inference-steps", str(args.steps), "--guidance-scale", str(args.guidance),
                    "--seed", str(args.seed), "--randomize-seed", "false", "--scheduler", "ddim", "-o", str(npy)], check=True)
    t_t2v = time.time() - t0
    got = np.load(npy)
    assert got.shape == want.shape, (got.shape, want.shape)
    d = np.abs(got.astype(np.float64) - want)
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    print(f"full-size replica {args.width}×{args.height}, {args.frames} frames, {args.steps} step(s), guidance {args.guidance}, seed {args.seed}")
    print(f"  frames: max |Δ| {d.max() * 255:.3f}/255, mean {d.mean() * 255:.4f}/255, relative L2 {rel:.2e}")
    print(f"  frames in [{want.min():.3f}, {want.max():.3f}], std {want.std():.3f}")
    print(f"  wall time: diffusers (CPU, torch {torch.__version__}) {t_diffusers:.0f} s, t2v {t_t2v:.0f} s")


if __name__ == "__main__":
    main()
