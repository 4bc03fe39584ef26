//! RAFT's correlation pyramid kernels (shaders/corr.wgsl): the 2×2 average pool of each row's
//! plane and the bilinear window lookup. The volume itself is a GEMM (`matmul::linear`); the
//! model keeps it as chunks of query rows, each within one storage binding
//! (`models::raft::corr`).

use super::groups;
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/corr.wgsl");
const WG: usize = 256;

/// `F.avg_pool2d(x, 2, stride=2)` on x [rows, h, w] → [rows, h/2, w/2] (floor on odd sides).
pub fn corr_pool(x: &Tensor) -> Result<Tensor> {
    let op = "corr_pool";
    let s = x.shape();
    if s.len() != 3 || x.dtype() != DType::F32 || s[1] < 2 || s[2] < 2 {
        return shape_err(op, format!("expects f32 [rows, h, w] with h, w ≥ 2, got {s:?} {}", x.dtype().name()));
    }
    let (rows, h, w) = (s[0], s[1], s[2]);
    let out = Tensor::empty(x.gpu(), &[rows, h / 2, w / 2], DType::F32)?;
    let n = out.numel();
    let gpu = x.gpu();
    let k = gpu.kernel("corr", SRC, "corr_pool", &[])?;
    let (xw, yw) = (x.whole(op)?, out.whole(op)?);
    let params = [n as u32, h as u32, w as u32, xw.shift, 0, yw.shift, 0, 0, 0, 0, 0, 0];
    gpu.dispatch(&k, &params, vec![(1, xw.binding), (3, yw.binding)], groups(gpu, n.div_ceil(WG)));
    Ok(out)
}

/// The (2r+1)² bilinear samples of `level` [rows, h, w] (rows = query pixels `row0..row0+rows`
/// of the frame) around `coords` [2, H, W] / 2^`level_index` (x plane, then y), written into
/// channels `level_index·(2r+1)²..` of `out` [C, H, W] at those pixels. RAFT's
/// `bilinear_sampler` (align_corners=True, zeros outside) with its window order.
pub fn corr_lookup(level: &Tensor, coords: &Tensor, row0: usize, level_index: usize, radius: usize, out: &Tensor) -> Result<()> {
    let op = "corr_lookup";
    let (ls, cs, os) = (level.shape(), coords.shape(), out.shape());
    let taps = (2 * radius + 1) * (2 * radius + 1);
    if ls.len() != 3 || cs.len() != 3 || cs[0] != 2 || os.len() != 3 || os[1..] != cs[1..] {
        return shape_err(op, format!("level [rows, h, w], coords [2, H, W], out [C, H, W] expected, got {ls:?}, {cs:?}, {os:?}"));
    }
    let hw1 = cs[1] * cs[2];
    if row0 + ls[0] > hw1 || os[0] < (level_index + 1) * taps || level_index > 30 {
        return shape_err(op, format!("rows {row0}..{} of {hw1} pixels, level {level_index} of a {}-channel output", row0 + ls[0], os[0]));
    }
    let n = ls[0] * taps;
    let gpu = level.gpu();
    let k = gpu.kernel("corr", SRC, "corr_lookup", &[])?;
    let (xw, cw, yw) = (level.whole(op)?, coords.whole(op)?, out.whole(op)?);
    let params = [n as u32, ls[1] as u32, ls[2] as u32, xw.shift, cw.shift, yw.shift, row0 as u32, hw1 as u32, level_index as u32, radius as u32, 0, 0];
    gpu.dispatch(&k, &params, vec![(1, xw.binding), (2, cw.binding), (3, yw.binding)], groups(gpu, n.div_ceil(WG)));
    Ok(())
}
