//! One wrapper per kernel family. Each checks its inputs, picks the kernel variant, splits the
//! work when a tensor exceeds the device's storage-binding limit, and records dispatches.

pub mod attention;
pub mod attention_bias;
pub mod channel_norm;
pub mod conv2d;
pub mod conv3d;
pub mod conv_temporal;
pub mod corr;
pub mod elementwise;
pub mod flow_upsample;
pub mod embedding;
pub(crate) mod gemm_coop;
pub mod group_norm;
pub mod gru;
pub mod layer_norm;
pub mod layout;
pub mod matmul;
pub mod modulate;
pub mod rms_norm;
pub mod rope;
pub mod shuffle;
pub mod tiles;
pub mod warp;

use crate::gpu::Gpu;

/// Workgroup grid for `n` workgroups on this device (2-D beyond 65,535).
pub(crate) fn groups(gpu: &Gpu, n: usize) -> [u32; 3] {
    crate::gpu::grid(n as u32, gpu.limits.max_compute_workgroups_per_dimension)
}

/// Splits `0..n` units into chunks of at most `per_chunk` (at least one unit each).
pub(crate) fn chunk_ranges(n: usize, per_chunk: usize) -> impl Iterator<Item = (usize, usize)> {
    let step = per_chunk.max(1);
    (0..n).step_by(step).map(move |lo| (lo, (lo + step).min(n)))
}

/// How many units of `unit_bytes` fit in one storage binding, leaving room for alignment slack.
pub(crate) fn units_per_binding(gpu: &Gpu, unit_bytes: u64) -> usize {
    let usable = gpu.max_binding().saturating_sub(512);
    (usable / unit_bytes.max(1)).max(1) as usize
}

/// Workgroup size and rows per invocation for a GEMM-like kernel over `rows` output rows:
/// 64 invocations × 8 rows is the measured best for big M (BENCHMARKS.md), but a late-UNet
/// level has few rows (2 frames of a 1×1 latent: 4), where most of a 512-row tile would run
/// on clamped, discarded rows.
pub(crate) fn row_tile(rows: usize) -> (usize, usize) {
    match rows {
        r if r >= 512 => (64, 8),
        r if r >= 256 => (64, 4),
        r if r >= 128 => (64, 2),
        r => (r.div_ceil(8).clamp(1, 8) * 8, 1),
    }
}

/// The f32 bits of a value, for params blocks that mix u32 and f32 fields.
pub(crate) fn f(x: f32) -> u32 {
    x.to_bits()
}

/// Tile-choice benchmark cases of the convolutions (see crate::bench::tile_cases): the UNet's
/// 3×3 and temporal convs at latent 8² / 16² and 40×72 levels, f16 weights.
pub(crate) fn tile_cases(gpu: &std::sync::Arc<Gpu>) -> crate::error::Result<Vec<crate::bench::TileCase>> {
    use crate::bench::{rand_tensor, TileCase};
    use crate::tensor::DType;
    let mut v = Vec::new();
    // (label, images, channels, h, w): rows = images·h·w from 2 to 5,760.
    for (label, n, c, h, w) in [
        ("L3", 2, 1280, 1, 1),
        ("L2", 8, 1280, 2, 2),
        ("L2", 24, 1280, 2, 2),
        ("L1", 24, 640, 4, 4),
        ("L1", 8, 640, 8, 8),
        ("L0", 24, 320, 8, 8),
        ("L0", 2, 320, 40, 72),
    ] {
        let x = rand_tensor(gpu, &[n, c, h, w], DType::F32, 1)?;
        let wt = rand_tensor(gpu, &[c, c, 3, 3], DType::F16, 2)?;
        let (m, k) = (n * h * w, c * 9);
        let run = move |t| conv2d::conv2d_tiled(&x, &wt, None, 1, 1, Some(t)).map(drop);
        v.push(TileCase::gemm("conv2d", tiles::Op::Conv2d, format!("{label} 3×3 {n}x{c}x{h}x{w} M={m} K={k} N={c}"), [m, c, k], 8 * m * c + 2 * c * k, run));
    }
    for (label, f, c, h, w) in [
        ("L3", 8, 1280, 1, 1),
        ("L2", 24, 1280, 2, 2),
        ("L2", 8, 1280, 4, 4),
        ("L1", 24, 640, 4, 4),
        ("L3", 24, 1280, 5, 9),
        ("L0", 24, 320, 8, 8),
        ("L0", 8, 320, 16, 16),
    ] {
        let x = rand_tensor(gpu, &[f, c, h, w], DType::F32, 3)?;
        let wt = rand_tensor(gpu, &[c, c, 3, 1, 1], DType::F16, 4)?;
        let (m, k) = (f * h * w, c * 3);
        let run = move |t| conv_temporal::conv_temporal_tiled(&x, f, conv_temporal::FrameLayout::Folded, &wt, None, Some(t)).map(drop);
        v.push(TileCase::gemm("conv_temporal", tiles::Op::ConvTemporal, format!("{label} {f} frames x{c}x{h}x{w} M={m} K={k} N={c}"), [m, c, k], 8 * m * c + 2 * c * k, run));
    }
    Ok(v)
}

/// Benchmark cases of the non-matmul kernels (see crate::bench).
pub(crate) fn bench_cases(gpu: &std::sync::Arc<Gpu>, frames: usize) -> crate::error::Result<Vec<crate::bench::Case>> {
    let mut v = conv2d::bench_cases(gpu, frames)?;
    v.extend(conv_temporal::bench_cases(gpu, frames)?);
    v.extend(elementwise::bench_cases(gpu, frames)?);
    v.extend(layout::bench_cases(gpu, frames)?);
    v.extend(group_norm::bench_cases(gpu, frames)?);
    v.extend(layer_norm::bench_cases(gpu, frames)?);
    v.extend(attention::bench_cases(gpu, frames)?);
    v.extend(embedding::bench_cases(gpu, frames)?);
    Ok(v)
}
