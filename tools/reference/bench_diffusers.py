#!/usr/bin/env python3
"""diffusers on CPU, same replica, shape and steps as `t2v bench pipeline`, for the side-by-side
table in BENCHMARKS.md.

    tools/reference/.venv/bin/python tools/reference/make_replica.py /tmp/replica
    tools/reference/.venv/bin/python tools/reference/bench_diffusers.py /tmp/replica --frames 2 --height 64 --width 64 --steps 2
    target/release/t2v bench pipeline --model /tmp/replica --frames 2 --height 64 --width 64 --steps 2

torch runs in float32 (CPU half precision is not what users run on CPUs), on all cores torch
sees unless --threads is given.
"""
import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--unet-steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from diffusers import TextToVideoSDPipeline

    t0 = time.perf_counter()
    pipe = TextToVideoSDPipeline.from_pretrained(a.model, torch_dtype=torch.float32)
    load = time.perf_counter() - t0
    unet = pipe.unet
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
