//! RAFT's convex 8× flow upsampling (shaders/flow_upsample.wgsl): flow [1, 2, H, W] and the
//! mask [1, 576, H, W] (already ×0.25) → [1, 2, 8H, 8W].

use super::groups;
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/flow_upsample.wgsl");

pub fn convex_upsample(flow: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let op = "convex_upsample";
    let (fs, ms) = (flow.shape(), mask.shape());
    if fs.len() != 4 || fs[0] != 1 || fs[1] != 2 || ms != [1, 576, fs[2], fs[3]] || flow.dtype() != DType::F32 || mask.dtype() != DType::F32 {
        return shape_err(op, format!("flow f32 [1, 2, H, W] and mask f32 [1, 576, H, W] expected, got {fs:?} and {ms:?}"));
    }
    let (h, w) = (fs[2], fs[3]);
    let out = Tensor::empty(flow.gpu(), &[1, 2, 8 * h, 8 * w], DType::F32)?;
    let n = 64 * h * w;
    let gpu = flow.gpu();
    let k = gpu.kernel("flow_upsample", SRC, "convex_upsample", &[])?;
    let (fw, mw, yw) = (flow.whole(op)?, mask.whole(op)?, out.whole(op)?);
    let params = [n as u32, h as u32, w as u32, fw.shift, mw.shift, yw.shift, 0, 0];
    gpu.dispatch(&k, &params, vec![(1, fw.binding), (2, mw.binding), (3, yw.binding)], groups(gpu, n.div_ceil(256)));
    Ok(out)
}
