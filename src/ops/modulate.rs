//! Wan's gated residual (shaders/modulate.wgsl): `x += a · gate` in place, with one gate vector
//! per batch item (diffusers' WanTransformerBlock, `hidden_states.float() + attn_output *
//! gate_msa`). The modulated LayerNorm is `layer_norm::layer_norm_modulated`.

use super::{chunk_ranges, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/modulate.wgsl");

/// `x += a · gate`: x and a f32 [B, L, C], gate f32 [B, C] (one vector per batch item) or [C]
/// (one for every row). Writes x's buffer: the caller must hold the only reference to the data it means.
pub fn gated_add_inplace(x: &Tensor, a: &Tensor, gate: &Tensor) -> Result<()> {
    let op = "gated_add";
    if x.shape() != a.shape() || x.dtype() != DType::F32 || a.dtype() != DType::F32 {
        return shape_err(op, format!("x {:?} {} and a {:?} {} must be f32 of one shape", x.shape(), x.dtype().name(), a.shape(), a.dtype().name()));
    }
    if x.shares_storage(a) {
        return shape_err(op, "x and a must be different buffers (x is written in place)");
    }
    let c = *x.shape().last().unwrap_or(&0);
    if x.shape().is_empty() || c == 0 {
        return shape_err(op, format!("expects [.., C] with C > 0, got {:?}", x.shape()));
    }
    let rows = x.numel() / c;
    let per_batch = super::layer_norm::rows_per_vector(op, "gate", x, gate)?;
    if rows == 0 {
        return Ok(());
    }
    let gpu = x.gpu();
    let gw = gate.whole(op)?;
    let kern = gpu.kernel("modulate", SRC, "gated_add", &[])?;
    for (lo, hi) in chunk_ranges(rows, units_per_binding(gpu, 4 * c as u64)) {
        let xw = x.window(lo * c, hi * c, op)?;
        let aw = a.window(lo * c, hi * c, op)?;
        let n = (hi - lo) * c;
        let params = [n as u32, c as u32, lo as u32, per_batch as u32, xw.shift, aw.shift, gw.shift];
        gpu.dispatch(&kern, &params, vec![(1, xw.binding), (2, aw.binding), (3, gw.binding.clone())], groups(gpu, n.div_ceil(256)));
    }
    Ok(())
}
