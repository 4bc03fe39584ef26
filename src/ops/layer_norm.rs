//! LayerNorm over the last dimension (shaders/layer_norm.wgsl), torch.nn.LayerNorm semantics:
//! biased variance, eps inside the square root, affine weight and bias, f32 statistics from
//! per-thread Welford/Chan summaries (never E[x²]−E[x]²). Rows are split into chunks when x
//! exceeds one storage binding. The modulated variant is Wan's `LN(x)·(1 + scale) + shift`.

use super::{chunk_ranges, f, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/layer_norm.wgsl");
/// Threads per workgroup (the shader's WG).
const WG: usize = 64;

/// torch.nn.LayerNorm(C) on x [.., C]; weight and bias are f32 [C].
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    let op = "layer_norm";
    let c = check_x(op, x)?;
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if t.shape() != [c] || t.dtype() != DType::F32 {
            return shape_err(op, format!("{name} must be f32 [{c}], got {:?} {}", t.shape(), t.dtype().name()));
        }
    }
    run(op, x, weight, bias, eps, None)
}

/// Wan's modulated norm: affine-free LayerNorm of x [B, L, C], then `· (1 + scale) + shift`
/// with `scale` and `shift` f32 [B, C] (one vector per batch item) or [C] (one for every row),
/// as diffusers' `norm1(x) * (1 + scale_msa) + shift_msa`.
pub fn layer_norm_modulated(x: &Tensor, shift: &Tensor, scale: &Tensor, eps: f32) -> Result<Tensor> {
    let op = "layer_norm_modulated";
    check_x(op, x)?;
    let per_batch = rows_per_vector(op, "shift", x, shift)?;
    if rows_per_vector(op, "scale", x, scale)? != per_batch {
        return shape_err(op, format!("shift {:?} and scale {:?} must have the same shape", shift.shape(), scale.shape()));
    }
    run(op, x, scale, shift, eps, Some(per_batch))
}

/// Rows of x [.., C] that share one vector of `v`: all of them for v [C] (or [1, C]), one batch
/// item's L for v [B, C] with x [B, L, C].
pub(crate) fn rows_per_vector(op: &'static str, name: &str, x: &Tensor, v: &Tensor) -> Result<usize> {
    let c = *x.shape().last().unwrap_or(&0);
    let rows = x.numel() / c.max(1);
    let batches = if x.shape().len() >= 3 { x.dim(0) } else { 1 };
    if v.dtype() == DType::F32 && *v.shape().last().unwrap_or(&0) == c {
        if v.numel() == c {
            return Ok(rows.max(1));
        }
        if v.numel() == batches * c {
            return Ok((rows / batches.max(1)).max(1));
        }
    }
    shape_err(op, format!("{name} must be f32 [{c}] or [{batches}, {c}] for x {:?}, got {:?} {}", x.shape(), v.shape(), v.dtype().name()))
}

fn check_x(op: &'static str, x: &Tensor) -> Result<usize> {
    if x.dtype() != DType::F32 {
        return shape_err(op, format!("expects f32 activations, got {}", x.dtype().name()));
    }
    let c = *x.shape().last().unwrap_or(&0);
    if x.shape().is_empty() || c == 0 {
        return shape_err(op, format!("expects [.., C] with C > 0, got {:?}", x.shape()));
    }
    Ok(c)
}

/// Records the kernel over x's rows; `modulate` = Some(rows per batch item) selects the
/// modulated variant (weight = scales, bias = shifts).
fn run(op: &'static str, x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32, modulate: Option<usize>) -> Result<Tensor> {
    let c = *x.shape().last().unwrap_or(&0);
    let gpu = x.gpu();
    let out = Tensor::empty(gpu, x.shape(), DType::F32)?;
    let rows = x.numel() / c;
    if rows == 0 {
        return Ok(out);
    }
    let ww = weight.whole(op)?;
    let bw = bias.whole(op)?;
    // One subgroup per row (grid-stride, so sizing by the largest subgroup covers every row) or
    // one 64-thread workgroup per row.
    let (sg_min, sg_max) = (gpu.info.subgroup_min_size as usize, gpu.info.subgroup_max_size as usize);
    let subgroup = gpu.caps.subgroup && sg_min >= 1 && sg_max <= WG;
    let aligned = c.is_multiple_of(4) && ww.shift % 4 == 0 && bw.shift % 4 == 0;
    for (lo, hi) in chunk_ranges(rows, units_per_binding(gpu, 4 * c as u64)) {
        let xw = x.window(lo * c, hi * c, op)?;
        let ow = out.window(lo * c, hi * c, op)?;
        let vec4 = aligned && xw.shift % 4 == 0 && ow.shift % 4 == 0;
        let lanes = if vec4 { 4 } else { 1 };
        let cv = c / lanes;
        let defines = [
            ("VEC4", (vec4 as u32).to_string()),
            ("SUBGROUP", (subgroup as u32).to_string()),
            ("MODULATE", (modulate.is_some() as u32).to_string()),
        ];
        let kern = gpu.kernel("layer_norm", SRC, "layer_norm", &defines)?;
        let l = lanes as u32;
        let params = [
            (hi - lo) as u32,
            cv as u32,
            xw.shift / l,
            ow.shift / l,
            ww.shift / l,
            bw.shift / l,
            f(c as f32),
            f(eps),
            lo as u32,
            modulate.unwrap_or(1).max(1) as u32,
        ];
        gpu.dispatch(
            &kern,
            &params,
            vec![(1, xw.binding), (2, ww.binding.clone()), (3, bw.binding.clone()), (4, ow.binding)],
            groups(gpu, if subgroup { (hi - lo).div_ceil(WG / sg_max.max(sg_min)) } else { hi - lo }),
        );
    }
    Ok(out)
}

/// The transformer LayerNorms at Zeroscope 576×320 level 0: 2,880 tokens per frame × 320.
pub(crate) fn bench_cases(gpu: &std::sync::Arc<crate::gpu::Gpu>, frames: usize) -> Result<Vec<crate::bench::Case>> {
    use crate::bench::{rand_tensor, Case};
    let (rows, c) = (2880 * frames.max(1), 320);
    let x = rand_tensor(gpu, &[rows, c], DType::F32, 20)?;
    let w = rand_tensor(gpu, &[c], DType::F32, 21)?;
    let b = rand_tensor(gpu, &[c], DType::F32, 22)?;
    let n = (rows * c) as f64;
    Ok(vec![Case::new("layer_norm", format!("[{rows}, {c}]"), 8.0 * n, 8.0 * n, move || {
        layer_norm(&x, &w, &b, 1e-5).map(drop)
    })])
}
