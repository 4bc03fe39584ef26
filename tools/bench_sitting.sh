#!/usr/bin/env bash
# One benchmark sitting for BENCHMARKS.md: the kernel table on Mesa 25 lavapipe (the host,
# bookworm-backports) and Mesa 26.1 lavapipe (the trixie root tools/test builds), the GEMM rows
# on 26.1's cooperative matrices, PyTorch/numpy on the same cores, and a full-size UNet step on
# both lavapipes next to diffusers on the same replica and shape.
#
#   tools/bench_sitting.sh [OUT_DIR] [REPLICA]   (defaults /tmp/t2v-sitting, /tmp/t2v-replica)
#
# Needs: target/release/t2v (cargo build --release), tools/reference/.venv, the trixie root
# (tools/test builds it), and the replica (tools/reference/make_replica.py REPLICA). Run it on a
# quiet machine: every figure is wall-clock or GPU-timer time on shared CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/t2v-sitting}
replica=${2:-/tmp/t2v-replica}
mkdir -p "$out"
t2v=$PWD/target/release/t2v
py=tools/reference/.venv/bin/python
export T2V_TRIXIE_BINDS="$PWD:$out:$replica"
in26=(.ci/in-trixie)
shape=(--frames 2 --height 64 --width 64 --steps 1 --unet-steps 1)
date -u +"sitting %Y-%m-%d %H:%M UTC" | tee "$out/when.txt"
nproc >> "$out/when.txt"; lscpu | grep -m1 "Model name" >> "$out/when.txt" || true

echo "== kernels, Mesa 25 (host)"
"$t2v" bench kernels --budget 0.5 --path fma | tee "$out/kernels-mesa25.md"
echo "== kernels, Mesa 26.1 (trixie root)"
"${in26[@]}" "$t2v" bench kernels --budget 0.5 --path fma | tee "$out/kernels-mesa26.md"
echo "== GEMM kernels on cooperative matrices, Mesa 26.1"
for k in linear conv2d conv_temporal attention; do
  "${in26[@]}" "$t2v" bench kernels --budget 0.5 --path coop --filter "$k" | tee "$out/kernels-mesa26-coop-$k.md"
done
echo "== PyTorch / numpy, same cores"
"$py" tools/bench_blas.py | tee "$out/blas.md"
echo "== full-size UNet step + generation, Mesa 25"
"$t2v" bench pipeline --model "$replica" "${shape[@]}" | tee "$out/pipeline-mesa25.md"
echo "== full-size UNet step + generation, Mesa 26.1"
"${in26[@]}" "$t2v" bench pipeline --model "$replica" "${shape[@]}" | tee "$out/pipeline-mesa26.md"
echo "== diffusers, same replica and shape"
"$py" tools/reference/bench_diffusers.py "$replica" "${shape[@]}" | tee "$out/pipeline-diffusers.md"
