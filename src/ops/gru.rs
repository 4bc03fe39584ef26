//! RAFT's SepConvGRU gates (shaders/sep_conv_gru.wgsl), after the gate convolutions: `zr` [N, 2C,
//! H, W] holds z's then r's pre-activations (convz and convr as one conv), `h` [N, C, H, W].

use super::groups;
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/sep_conv_gru.wgsl");
const WG: usize = 256;

fn check(op: &'static str, zr: &Tensor, h: &Tensor) -> Result<usize> {
    let (zs, hs) = (zr.shape(), h.shape());
    if zs.len() != 4 || hs.len() != 4 || zs[0] != hs[0] || zs[1] != 2 * hs[1] || zs[2..] != hs[2..] || zr.dtype() != DType::F32 || h.dtype() != DType::F32 {
        return shape_err(op, format!("zr f32 [N, 2C, H, W] and h f32 [N, C, H, W] expected, got {zs:?} and {hs:?}"));
    }
    Ok(hs[1] * hs[2] * hs[3])
}

fn run(entry: &'static str, zr: &Tensor, h: &Tensor, q: Option<&Tensor>) -> Result<Tensor> {
    let cs = check(entry, zr, h)?;
    let out = Tensor::empty(h.gpu(), h.shape(), DType::F32)?;
    let n = out.numel();
    let gpu = h.gpu();
    let k = gpu.kernel("sep_conv_gru", SRC, entry, &[])?;
    let (zw, hw, yw) = (zr.whole(entry)?, h.whole(entry)?, out.whole(entry)?);
    let mut binds = vec![(1, zw.binding), (2, hw.binding), (4, yw.binding)];
    let mut qs = 0;
    if let Some(q) = q {
        let w = q.whole(entry)?;
        qs = w.shift;
        binds.push((3, w.binding));
    }
    let params = [n as u32, cs as u32, zw.shift, hw.shift, qs, yw.shift, 0, 0];
    gpu.dispatch(&k, &params, binds, groups(gpu, n.div_ceil(WG)));
    Ok(out)
}

/// `σ(r_pre) ⊙ h`.
pub fn gru_reset(zr: &Tensor, h: &Tensor) -> Result<Tensor> {
    run("gru_reset", zr, h, None)
}

/// `(1 − σ(z_pre)) ⊙ h + σ(z_pre) ⊙ tanh(q_pre)`.
pub fn gru_update(zr: &Tensor, h: &Tensor, q_pre: &Tensor) -> Result<Tensor> {
    if q_pre.shape() != h.shape() || q_pre.dtype() != DType::F32 {
        return shape_err("gru_update", format!("q_pre {:?} must be f32 shaped like h {:?}", q_pre.shape(), h.shape()));
    }
    run("gru_update", zr, h, Some(q_pre))
}
