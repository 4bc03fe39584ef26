//! RMS norm over the last dimension (shaders/rms_norm.wgsl): torch.nn.RMSNorm and T5's /
//! UMT5's LayerNorm, `x · rsqrt(mean(x²) + eps) · w` with f32 statistics, no mean subtraction
//! and no bias. The weight is optional (elementwise_affine=False) and may be f32 or f16 (read
//! natively as packed pairs). Rows are split into chunks when x exceeds one storage binding.

use super::{chunk_ranges, f, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/rms_norm.wgsl");
/// Threads per workgroup (the shader's WG).
const WG: usize = 64;

/// RMS norm of x [.., C] (f32) with an optional [C] weight (f32 or f16).
pub fn rms_norm(x: &Tensor, weight: Option<&Tensor>, eps: f32) -> Result<Tensor> {
    let op = "rms_norm";
    if x.dtype() != DType::F32 {
        return shape_err(op, format!("expects f32 activations, got {}", x.dtype().name()));
    }
    let c = *x.shape().last().unwrap_or(&0);
    if x.shape().is_empty() || c == 0 {
        return shape_err(op, format!("expects [.., C] with C > 0, got {:?}", x.shape()));
    }
    if let Some(w) = weight {
        if w.shape() != [c] {
            return shape_err(op, format!("weight must be [{c}], got {:?} {}", w.shape(), w.dtype().name()));
        }
    }
    let gpu = x.gpu();
    let out = Tensor::empty(gpu, x.shape(), DType::F32)?;
    let rows = x.numel() / c;
    if rows == 0 {
        return Ok(out);
    }
    let ww = match weight {
        Some(w) => w.whole(op)?,
        None => crate::tensor::Window { binding: gpu.unused_binding(), shift: 0 },
    };
    let w_f16 = weight.is_some_and(|w| w.dtype() == DType::F16);
    let (sg_min, sg_max) = (gpu.info.subgroup_min_size as usize, gpu.info.subgroup_max_size as usize);
    let subgroup = gpu.caps.subgroup && sg_min >= 1 && sg_max <= WG;
    for (lo, hi) in chunk_ranges(rows, units_per_binding(gpu, 4 * c as u64)) {
        let xw = x.window(lo * c, hi * c, op)?;
        let ow = out.window(lo * c, hi * c, op)?;
        let vec4 = c.is_multiple_of(4) && xw.shift % 4 == 0 && ow.shift % 4 == 0;
        let lanes = if vec4 { 4 } else { 1 };
        let defines = [
            ("VEC4", (vec4 as u32).to_string()),
            ("SUBGROUP", (subgroup as u32).to_string()),
            ("HAS_W", (weight.is_some() as u32).to_string()),
            ("W_F16", (w_f16 as u32).to_string()),
        ];
        let kern = gpu.kernel("rms_norm", SRC, "rms_norm", &defines)?;
        let l = lanes as u32;
        let params = [(hi - lo) as u32, (c / lanes) as u32, xw.shift / l, ow.shift / l, ww.shift, 0, f(c as f32), f(eps)];
        // Without a weight the shader never reads binding 2, so its layout has no slot for it.
        let mut binds = vec![(1, xw.binding), (3, ow.binding)];
        if weight.is_some() {
            binds.push((2, ww.binding.clone()));
        }
        gpu.dispatch(
            &kern,
            &params,
            binds,
            groups(gpu, if subgroup { (hi - lo).div_ceil(WG / sg_max.max(sg_min)) } else { hi - lo }),
        );
    }
    Ok(out)
}
