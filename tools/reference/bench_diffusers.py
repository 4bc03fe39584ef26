#!/usr/bin/env python3
"""diffusers on CPU, same replica, shape and steps as `t2v bench pipeline`, for the side-by-side
table in BENCHMARKS.md.

    tools/reference/.venv/bin/python tools/reference/make_replica.py /tmp/replica
    tools/reference/.venv/bin/python tools/reference/bench_diffusers.py /tmp/replica --frames 2 --height 64 --width 64 --steps 2
    target/release/t2v bench pipeline --model /tmp/replica --frames 2 --height 64 --width 64 --steps 2

torch runs in float32 (CPU half precision is not what users run on CPUs), on all cores torch
sees unless --threads is given. With --sweep: one guided UNet step at each shape of
`t2v bench pipeline --sweep` (t2v::bench::SWEEP), one load for all (tools/bench_sweep.sh).
"""
import argparse
import time

import torch


# t2v::bench::SWEEP: (frames, height, width).
SWEEP = [(2, 64, 64), (8, 64, 64), (24, 64, 64), (2, 128, 128), (8, 128, 128), (24, 128, 128), (2, 320, 576)]


def unet_step(unet, frames: int, h: int, w: int, n: int) -> float:
    """Mean seconds of the guided step (batch 2) after a warm-up one."""
    sample = torch.full((2, 4, frames, h, w), 0.1)
    ctx = torch.full((2, 77, unet.config.cross_attention_dim), 0.01)
    t = torch.tensor(981)
    with torch.no_grad():
        unet(sample, t, ctx)
        t1 = time.perf_counter()
        for _ in range(n):
            unet(sample, t, ctx)
        return (time.perf_counter() - t1) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--unet-steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--sweep", action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from diffusers import TextToVideoSDPipeline

    t0 = time.perf_counter()
    pipe = TextToVideoSDPipeline.from_pretrained(a.model, torch_dtype=torch.float32)
    load = time.perf_counter() - t0
    unet = pipe.unet
    if a.sweep:
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
        print("| latent frames × size | diffusers UNet step s (guidance: batch 2) |\n|---|---:|")
        for frames, height, width in SWEEP:
            s = unet_step(unet, frames, height // 8, width // 8, a.unet_steps)
            print(f"| {frames} × {height}×{width} (latent {height // 8}×{width // 8}) | {s:.3f} |", flush=True)
        return
    h, w = a.height // 8, a.width // 8
    sample = torch.full((2, 4, a.frames, h, w), 0.1)
    ctx = torch.full((2, 77, unet.config.cross_attention_dim), 0.01)
    t = torch.tensor(981)
    with torch.no_grad():
        unet(sample, t, ctx)
        t1 = time.perf_counter()
        for _ in range(a.unet_steps):
            unet(sample, t, ctx)
        step = (time.perf_counter() - t1) / a.unet_steps
        t2 = time.perf_counter()
        pipe("a lion walking in the jungle", num_frames=a.frames, height=a.height, width=a.width,
             num_inference_steps=a.steps, generator=torch.Generator().manual_seed(0), output_type="np")
        gen = time.perf_counter() - t2
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| what | seconds |\n|---|---:|")
    print(f"| load weights | {load:.2f} |")
    print(f"| UNet step (guidance, batch 2), {a.frames} frames × {a.width}×{a.height} | {step:.3f} |")
    print(f"| generation, {a.steps} steps + decode | {gen:.2f} |")


if __name__ == "__main__":
    main()
