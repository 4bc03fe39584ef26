//! Linear layer `x · Wᵀ + b` (shaders/matmul.wgsl): x [.., K] f32, W [N, K] f32 or f16,
//! bias [N] f32. Rows of x are split into chunks when x or the output exceeds one binding.

use super::tiles::{gemm_tile, weight_defines, Op, Tile};
use super::{chunk_ranges, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/matmul.wgsl");

pub fn linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let op = "linear";
    let k = *x.shape().last().unwrap_or(&0);
    if w.shape().len() != 2 || w.dim(1) != k {
        return shape_err(op, format!("input {:?} needs weight [N, {k}], got {:?}", x.shape(), w.shape()));
    }
    if x.dtype() != DType::F32 {
        return shape_err(op, "input must be f32");
    }
    let n = w.dim(0);
    if let Some(b) = bias {
        if b.shape() != [n] || b.dtype() != DType::F32 {
            return shape_err(op, format!("bias must be f32 [{n}], got {:?} {}", b.shape(), b.dtype().name()));
        }
    }
    let mut shape = x.shape().to_vec();
    *shape.last_mut().unwrap_or(&mut 0) = n;
    let out = Tensor::empty(x.gpu(), &shape, DType::F32)?;
    linear_into(x, w, bias, &out)?;
    Ok(out)
}

/// [`linear`] writing into `out` (any tensor with M·N elements, e.g. a row range of a bigger
/// one): lets callers assemble a result from chunks without a copy.
pub fn linear_into(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, out: &Tensor) -> Result<()> {
    linear_tiled(x, w, bias, out, None)
}

/// [`linear_into`] with the FMA path's tiling forced (`None`: the adapter's table picks it by
/// shape): for tests of every tiling and for `bench kernels --tiles`.
pub fn linear_tiled(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, out: &Tensor, tile: Option<Tile>) -> Result<()> {
    let op = "linear";
    let k = *x.shape().last().unwrap_or(&0);
    let n = w.dim(0);
    let m = x.numel() / k.max(1);
    if out.numel() != m * n || out.dtype() != DType::F32 {
        return shape_err(op, format!("output {:?} cannot hold {m}×{n} f32 results", out.shape()));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let gpu = x.gpu();
    let ww = w.whole(op)?;
    let vec4 = k.is_multiple_of(4) && ww.shift % 4 == 0;
    let bw = match bias {
        Some(b) => b.whole(op)?,
        None => crate::tensor::Window { binding: gpu.unused_binding(), shift: 0 },
    };
    let rows_per_chunk = units_per_binding(gpu, 4 * k.max(n) as u64);
    for (lo, hi) in chunk_ranges(m, rows_per_chunk) {
        let aw = x.window(lo * k, hi * k, op)?;
        let cw = out.window(lo * n, hi * n, op)?;
        if vec4 && aw.shift % 4 != 0 {
            return shape_err(op, "vec4 path needs a 16-byte aligned input view");
        }
        let rows = hi - lo;
        if let Some(s) = gpu.caps.coop {
            use super::gemm_coop::{dispatch, Gemm, Mode};
            let g = Gemm {
                mode: Mode::Linear,
                m: rows,
                n,
                k,
                a: (aw.binding, aw.shift),
                w: (ww.binding.clone(), ww.shift, k, w.dtype()),
                bias: bias.map(|_| (bw.binding.clone(), bw.shift)),
                c: (cw.binding, cw.shift),
                accumulate: false,
            };
            dispatch(gpu, s, g)?;
            continue;
        }
        let t = tile.unwrap_or_else(|| gemm_tile(gpu, Op::Linear, rows, n, k));
        let [d0, d1, d2] = t.defines();
        let [w0, w1] = weight_defines(gpu, t.is_cols(), w.dtype());
        let defines = [d0, d1, d2, w0, w1, ("VEC4", (vec4 as u32).to_string())];
        let kern = gpu.kernel("matmul", SRC, &t.entry("matmul"), &defines)?;
        let params = [
            rows as u32,
            n as u32,
            k as u32,
            aw.shift,
            ww.shift,
            bw.shift,
            cw.shift,
            bias.is_some() as u32,
        ];
        let tiles = t.workgroups(rows, n);
        gpu.flops_hint(2.0 * rows as f64 * n as f64 * k as f64);
        gpu.dispatch(
            &kern,
            &params,
            vec![(1, aw.binding), (2, ww.binding.clone()), (3, bw.binding.clone()), (4, cw.binding)],
            groups(gpu, tiles),
        );
    }
    Ok(())
}

