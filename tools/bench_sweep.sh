#!/usr/bin/env bash
# The kernel-choice sweep (issue 22) in one sitting: one guided UNet step of the full-size
# UNet3D replica at 2/8/24 latent frames × 64² and 128², and 576×320 at 2 frames — t2v on Mesa
# 26.1 lavapipe (the trixie root tools/test builds), then diffusers on torch CPU f32 on the same
# cores and replica — joined into one table with the ratio, for BENCHMARKS.md.
#
#   tools/bench_sweep.sh [OUT_DIR] [REPLICA]   (defaults /tmp/t2v-sweep, /tmp/t2v-replica)
#
# Needs: target/release/t2v (or T2V=path), tools/reference/.venv, the trixie root, the replica
# (tools/reference/.venv/bin/python tools/reference/make_replica.py REPLICA). Run it on a quiet
# machine: the figures are wall-clock on shared CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/t2v-sweep}
replica=${2:-/tmp/t2v-replica}
t2v=${T2V:-$PWD/target/release/t2v}
steps=${UNET_STEPS:-1}
mkdir -p "$out"
export T2V_TRIXIE_BINDS="$PWD:$out:$replica:$(dirname "$t2v")"
{ date -u +"sitting %Y-%m-%d %H:%M UTC"; nproc; lscpu | grep -m1 "Model name" || true; } | tee "$out/when.txt"
.ci/in-trixie "$t2v" bench pipeline --model "$replica" --sweep --unet-steps "$steps" --path fma | tee "$out/t2v.md"
tools/reference/.venv/bin/python tools/reference/bench_diffusers.py "$replica" --sweep --unet-steps "$steps" | tee "$out/diffusers.md"
date -u +"ended %H:%M UTC" | tee -a "$out/when.txt"
# Join on the shape column, in the sweep's order: | shape | t2v s | diffusers s | ratio |.
echo
echo "| latent frames × size | t2v s | diffusers s | ratio |"
echo "|---|---:|---:|---:|"
awk -F'|' 'FNR == NR { if ($2 ~ /^ [0-9]/) d[$2] = $3; next }
  $2 ~ /^ [0-9]/ && ($2 in d) { printf "|%s| %.2f | %.2f | %.1f× |\n", $2, $3, d[$2], $3 / d[$2] }' \
  "$out/diffusers.md" "$out/t2v.md" | tee "$out/table.md"
