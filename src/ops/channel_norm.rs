//! Wan's `WanRMS_norm` (shaders/channel_norm.wgsl): `F.normalize(x, dim=1) · √C · γ`, i.e.
//! per pixel of x [N, C, *spatial], y = x / max(‖x[:, pixel]‖₂, 1e-12) · √C · γ[c], with an
//! optional fused SiLU (every norm in the Wan VAE but the attention's is followed by one).
//! Whole images go through one dispatch while they fit a storage binding; a larger image
//! (96 channels at 832×480 is 153 MB) accumulates Σx² per pixel over channel chunks first.

use super::{chunk_ranges, f, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/channel_norm.wgsl");

/// `gamma` holds C f32 values in any shape (diffusers stores (C, 1, 1, 1) or (C, 1, 1)).
pub fn channel_norm(x: &Tensor, gamma: &Tensor, silu: bool) -> Result<Tensor> {
    let op = "channel_norm";
    let xs = x.shape();
    if xs.len() < 2 || x.dtype() != DType::F32 {
        return shape_err(op, format!("x must be f32 [N, C, ...], got {xs:?} {}", x.dtype().name()));
    }
    let (n, c) = (xs[0], xs[1]);
    let s: usize = xs[2..].iter().product();
    if gamma.numel() != c || gamma.dtype() != DType::F32 {
        return shape_err(op, format!("gamma must hold {c} f32 values, got {:?} {}", gamma.shape(), gamma.dtype().name()));
    }
    let out = Tensor::empty(x.gpu(), xs, DType::F32)?;
    if n * c * s == 0 {
        return Ok(out);
    }
    let gpu = x.gpu();
    let scale = f((c as f64).sqrt() as f32);
    let gw = gamma.whole(op)?;
    let img = c * s;
    if 4 * img as u64 + 512 <= gpu.max_binding() {
        let k = gpu.kernel("channel_norm", SRC, "channel_norm", &[])?;
        for (lo, hi) in chunk_ranges(n, units_per_binding(gpu, 4 * img as u64)) {
            let xw = x.window(lo * img, hi * img, op)?;
            let yw = out.window(lo * img, hi * img, op)?;
            let cnt = (hi - lo) * s;
            let params = [cnt as u32, c as u32, s as u32, xw.shift, yw.shift, gw.shift, 0, 0, silu as u32, scale, 0, 0];
            gpu.dispatch(&k, &params, vec![(1, xw.binding), (2, gw.binding.clone()), (3, yw.binding)], groups(gpu, cnt.div_ceil(256)));
        }
        return Ok(out);
    }
    // One image exceeds a binding: Σx² over channel chunks into `ss`, then scale each chunk.
    let ss = Tensor::empty(gpu, &[s], DType::F32)?;
    let ssw = ss.whole(op)?;
    let sumsq = gpu.kernel("channel_norm", SRC, "channel_sumsq", &[])?;
    let apply = gpu.kernel("channel_norm", SRC, "channel_scale", &[])?;
    let per = units_per_binding(gpu, 4 * s as u64);
    for i in 0..n {
        for (k0, k1) in chunk_ranges(c, per) {
            let xw = x.window(i * img + k0 * s, i * img + k1 * s, op)?;
            let params = [s as u32, (k1 - k0) as u32, s as u32, xw.shift, 0, 0, ssw.shift, (k0 > 0) as u32, 0, scale, 0, 0];
            gpu.dispatch(&sumsq, &params, vec![(1, xw.binding), (4, ssw.binding.clone())], groups(gpu, s.div_ceil(256)));
        }
        for (k0, k1) in chunk_ranges(c, per) {
            let xw = x.window(i * img + k0 * s, i * img + k1 * s, op)?;
            let yw = out.window(i * img + k0 * s, i * img + k1 * s, op)?;
            let cnt = (k1 - k0) * s;
            let params = [cnt as u32, (k1 - k0) as u32, s as u32, xw.shift, yw.shift, gw.shift + k0 as u32, ssw.shift, 0, silu as u32, scale, 0, 0];
            gpu.dispatch(
                &apply,
                &params,
                vec![(1, xw.binding), (2, gw.binding.clone()), (3, yw.binding), (4, ssw.binding.clone())],
                groups(gpu, cnt.div_ceil(256)),
            );
        }
    }
    Ok(out)
}
