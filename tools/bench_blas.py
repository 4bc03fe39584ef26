#!/usr/bin/env python3
"""Times the machine's BLAS (numpy, and PyTorch when installed) on the matmul shapes that
`t2v bench kernels` reports, so BENCHMARKS.md can state t2v's figures as a ratio to the CPU
library on the same cores in the same sitting.

    python3 -m venv /tmp/blas && /tmp/blas/bin/pip install numpy && /tmp/blas/bin/python tools/bench_blas.py
"""
import time

SHAPES = [("square", 1024, 1024, 1024), ("issue shape", 4096, 320, 320), ("attn proj L0", 2880, 320, 320),
          ("ff geglu L0", 2880, 320, 2560), ("ff out L2", 180, 5120, 1280)]


def best_of(fn, budget=1.0):
    fn()
    t0 = time.perf_counter()
    n, best = 0, float("inf")
    while time.perf_counter() - t0 < budget or n < 3:
        s = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - s)
        n += 1
    return best


def main():
    import numpy as np
    rows = []
    for label, m, k, n in SHAPES:
        a = np.random.rand(m, k).astype(np.float32)
        w = np.random.rand(n, k).astype(np.float32)
        t = best_of(lambda: a @ w.T)
        rows.append(("numpy " + np.__version__, label, m, k, n, t))
    try:
        import torch
        for label, m, k, n in SHAPES:
            a = torch.rand(m, k)
            w = torch.rand(n, k)
            t = best_of(lambda: torch.nn.functional.linear(a, w))
            rows.append(("torch " + torch.__version__, label, m, k, n, t))
    except ImportError:
        pass
    print("| library | shape | time (ms) | GFLOP/s |")
    print("|---|---|---:|---:|")
    for lib, label, m, k, n, t in rows:
        print(f"| {lib} | {label} M={m} K={k} N={n} | {t * 1e3:.3f} | {2 * m * k * n / t * 1e-9:.1f} |")


if __name__ == "__main__":
    main()
