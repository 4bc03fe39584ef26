//! GEMM tile choice by shape, per adapter class. The GEMM-shaped FMA kernels (matmul, conv2d,
//! conv_temporal) each have two tilings, and the tile sizes are template constants; which one
//! runs is looked up here by (M, N, K) in a small table per adapter class, filled from
//! `t2v bench kernels --tiles` (every candidate timed at the models' shapes; BENCHMARKS.md
//! "GEMM tiles by shape"). The cooperative-matrix path has its own tiles (gemm_coop).

use crate::gpu::Gpu;
use crate::tensor::DType;

/// How the invocations of one workgroup split a block of C = A·Wᵀ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tile {
    /// Each invocation owns TM rows × TN columns and the workgroup shares the columns, so W's
    /// loads are workgroup-uniform and rows of A are read per lane: right for wide GPUs, whose
    /// threads are cheap and whose uniform loads come from a scalar cache.
    Rows { wg: usize, tm: usize, tn: usize },
    /// Each invocation owns TN columns and the workgroup shares TM rows, so A's loads are
    /// uniform and each lane walks its own rows of W along K: right for CPU-SIMD drivers, where
    /// a workgroup is one SIMD loop and a uniform load is one scalar load broadcast to the vector.
    Cols { wg: usize, tm: usize, tn: usize },
}

impl Tile {
    pub fn is_cols(&self) -> bool {
        matches!(self, Tile::Cols { .. })
    }

    /// The kernel entry point's suffix and template constants.
    pub fn entry(&self, base: &str) -> String {
        match self {
            Tile::Rows { .. } => base.to_string(),
            Tile::Cols { .. } => format!("{base}_cols"),
        }
    }

    pub fn defines(&self) -> [(&'static str, String); 3] {
        let (Tile::Rows { wg, tm, tn } | Tile::Cols { wg, tm, tn }) = *self;
        [("WG", wg.to_string()), ("TM", tm.to_string()), ("TN", tn.to_string())]
    }

    /// Workgroups covering an M × N output.
    pub fn workgroups(&self, m: usize, n: usize) -> usize {
        match *self {
            Tile::Rows { wg, tm, tn } => m.div_ceil(wg * tm) * n.div_ceil(tn),
            Tile::Cols { wg, tm, tn } => m.div_ceil(tm) * n.div_ceil(wg * tn),
        }
    }
}

impl std::fmt::Display for Tile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tile::Rows { wg, tm, tn } => write!(f, "rows WG={wg} TM={tm} TN={tn}"),
            Tile::Cols { wg, tm, tn } => write!(f, "cols WG={wg} TM={tm} TN={tn}"),
        }
    }
}

/// The weight defines of a GEMM-shaped FMA kernel: `W_F16` for f16 weights, and `W_U32` where
/// those are read as u32 pairs through `unpack2x16float` — on adapters without shader-f16, and in
/// the column tiling, whose per-lane 16-bit loads a CPU driver splits into one scalar load per
/// lane where a 32-bit one is a single native gather.
pub fn weight_defines(gpu: &Gpu, cols: bool, w: DType) -> [(&'static str, String); 2] {
    let f16 = w == DType::F16;
    let u32_pairs = f16 && (!gpu.caps.shader_f16 || cols);
    [("W_F16", (f16 as u32).to_string()), ("W_U32", (u32_pairs as u32).to_string())]
}

/// Adapters whose tile choices differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterClass {
    /// A CPU running SIMD lanes (lavapipe/llvmpipe, SwiftShader, WARP): a workgroup of `lanes`
    /// invocations is one SIMD loop (lavapipe: 8 at 256-bit vectors, 16 at 512).
    CpuSimd { lanes: usize },
    /// lavapipe before Mesa 26 (bookworm-backports' 25.0): it keeps loop counters per lane, so
    /// a uniform-address load inside a loop is a load per lane, and its LLVM 15 compiles the
    /// column tiling's loops to half the speed of Mesa 26's — its own table.
    CpuSimdMesa25 { lanes: usize },
    Gpu,
}

pub fn class(gpu: &Gpu) -> AdapterClass {
    if gpu.info.device_type == wgpu::DeviceType::Cpu {
        // The subgroup is the SIMD vector on CPU drivers; 8 where the adapter does not say.
        let lanes = gpu.info.subgroup_max_size as usize;
        let lanes = if (4..=64).contains(&lanes) { lanes } else { 8 };
        if mesa_major(&gpu.info.driver_info).is_some_and(|v| v < 26) {
            AdapterClass::CpuSimdMesa25 { lanes }
        } else {
            AdapterClass::CpuSimd { lanes }
        }
    } else {
        AdapterClass::Gpu
    }
}

/// Mesa's major version from a driver-info string such as "Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)".
fn mesa_major(driver_info: &str) -> Option<u32> {
    let rest = &driver_info[driver_info.find("Mesa ")? + 5..];
    rest.split('.').next()?.parse().ok()
}

/// The GEMM-shaped FMA kernels: each has its own table, because their inner loops differ (a
/// convolution's uniform input taps carry padding tests; the temporal conv's rows carry frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Linear,
    Conv2d,
    ConvTemporal,
}

/// The tile a GEMM of M rows, N columns and depth K runs with on this adapter.
pub fn gemm_tile(gpu: &Gpu, op: Op, m: usize, n: usize, k: usize) -> Tile {
    tile_for(class(gpu), op, m, n, k)
}

pub fn tile_for(class: AdapterClass, op: Op, m: usize, _n: usize, _k: usize) -> Tile {
    // The row tiling, rows per invocation growing with M: GPUs' choice (unchanged from before
    // the tables), and the CPU's beyond the sizes where the column tiling wins.
    let rows = || {
        let (wg, tm) = super::row_tile(m);
        Tile::Rows { wg, tm, tn: 8 }
    };
    let wg = match class {
        AdapterClass::Gpu => return rows(),
        AdapterClass::CpuSimdMesa25 { .. } => return mesa25_tile(op, m),
        AdapterClass::CpuSimd { lanes } => lanes,
    };
    // CPU-SIMD drivers (lavapipe 26.1), from `bench kernels --tiles` on a quiet 2-core EPYC
    // (BENCHMARKS.md "A GEMM for CPU drivers"): the column tiling everywhere, one workgroup per
    // SIMD vector, with its own inner loops (per-lane f16 weights gathered as u32 pairs, each
    // reused by all TM rows of uniform activations) — 1.3–2× the row tiling from M = 32 to 5760.
    // A GEMV-shaped product (M ≤ 8) keeps all its rows in one tile, so W is read once; 64
    // columns per workgroup. At 16 lanes a linear of more than 64 rows does best with more rows
    // and fewer columns per lane; at 8 lanes so does the 3×3 conv beyond the deepest levels,
    // where it runs on 2-D blocks (ops::conv2d::block_shape) whose taps come from registers.
    let _ = rows;
    match op {
        _ if m <= 8 => Tile::Cols { wg, tm: m.max(1), tn: (64 / wg).max(2) },
        Op::Linear if m > 64 && wg >= 16 => Tile::Cols { wg, tm: 32, tn: 2 },
        Op::Conv2d if m > 128 && wg <= 8 => Tile::Cols { wg, tm: 24, tn: 2 },
        _ => Tile::Cols { wg, tm: 16, tn: 4 },
    }
}

/// Mesa 25's lavapipe (`bench kernels --tiles` at 256 and 512 bits on the same EPYC,
/// BENCHMARKS.md "A GEMM for CPU drivers"): column tiles of 8 rows × 8 columns for the linear,
/// of 16×4 (4×8 at the deepest levels) for the 3×3 conv, and the row tiling for the temporal conv
/// beyond its deepest levels. Workgroups of 8 (16 for the conv) whatever the vector width: at 512
/// bits this driver runs them as fast as at 256, and wider ones slower.
fn mesa25_tile(op: Op, m: usize) -> Tile {
    let wg = 8;
    match op {
        _ if m <= 8 => Tile::Cols { wg, tm: m.max(1), tn: 8 },
        Op::Linear => Tile::Cols { wg, tm: 8, tn: 8 },
        Op::Conv2d if m <= 128 => Tile::Cols { wg: 16, tm: 4, tn: 8 },
        Op::Conv2d => Tile::Cols { wg: 16, tm: 16, tn: 4 },
        Op::ConvTemporal if m <= 128 => Tile::Cols { wg, tm: 4, tn: 8 },
        Op::ConvTemporal => {
            let (wg, tm) = super::row_tile(m);
            Tile::Rows { wg, tm, tn: 8 }
        }
    }
}

/// Every tiling `t2v bench kernels --tiles` times for a GEMM of `m` rows.
pub fn candidates(m: usize) -> Vec<Tile> {
    let mut v = Vec::new();
    for (wg, tm) in [(8, 1), (32, 1), (64, 1), (64, 2), (64, 4), (64, 8)] {
        if tm == 1 || m >= wg * tm / 2 {
            v.push(Tile::Rows { wg, tm, tn: 8 });
        }
    }
    // Column tiles at 8 and 16 lanes (lavapipe's 256- and 512-bit vectors).
    for wg in [8, 16] {
        for (tm, tn) in [(1, 8), (4, 8), (8, 4), (8, 8), (16, 4), (24, 2), (32, 2)] {
            let tm = tm.min(m.max(1));
            let t = Tile::Cols { wg, tm, tn };
            if !v.contains(&t) {
                v.push(t);
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_keep_the_row_tiling() {
        for op in [Op::Linear, Op::Conv2d, Op::ConvTemporal] {
            for m in [1, 2, 7, 8, 9, 64, 127, 128, 255, 256, 511, 512, 100_000] {
                let (wg, tm) = super::super::row_tile(m);
                assert_eq!(tile_for(AdapterClass::Gpu, op, m, 320, 2880), Tile::Rows { wg, tm, tn: 8 });
            }
        }
    }

    #[test]
    fn mesa_versions() {
        assert_eq!(mesa_major("Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)"), Some(25));
        assert_eq!(mesa_major("Mesa 26.1.6-1~bpo13+1 (LLVM 19.1.7)"), Some(26));
        assert_eq!(mesa_major("590.48.01"), None);
    }

    #[test]
    fn a_gemv_is_one_column_tile_on_cpus() {
        for op in [Op::Linear, Op::Conv2d, Op::ConvTemporal] {
            for m in 1..=8 {
                let t = tile_for(AdapterClass::CpuSimd { lanes: 8 }, op, m, 1280, 11520);
                assert!(matches!(t, Tile::Cols { tm, .. } if tm == m), "{op:?} M={m}: {t}");
                assert_eq!(t.workgroups(m, 1280), 1280usize.div_ceil(match t { Tile::Cols { wg, tn, .. } => wg * tn, _ => 1 }));
            }
        }
    }
}
