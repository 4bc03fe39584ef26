//! GEMM-shaped work on matrix units (shaders/gemm_coop.wgsl): linear, conv2d (implicit GEMM) and
//! temporal conv, used by those ops' wrappers instead of their FMA kernels when the device has
//! cooperative matrices ([`Caps::coop`](crate::gpu::Caps)). Inputs are rounded to f16 on their
//! way into the tiles; accumulation is f32.

use super::groups;
use crate::gpu::{Binding, Gpu};
use crate::tensor::DType;

const SRC: &str = include_str!("../../shaders/gemm_coop.wgsl");

/// How A is read and C written (the kernel's LINEAR / CONV2D / TEMPORAL variants).
#[derive(Clone, Copy)]
pub(crate) enum Mode {
    Linear,
    /// KS×KS convolution; `geometry` = [cin, h, w, oh, ow, stride, pad].
    Conv2d { ks: usize, geometry: [u32; 7] },
    /// Conv3d (3,1,1); `geometry` = input (batch, frame, channel) strides, output strides,
    /// frames, pixels per frame.
    Temporal { geometry: [u32; 8] },
}

/// One GEMM dispatch: C[m, n] (+)= A[m, k] · W[n, k]ᵀ + bias. Offsets are element shifts within
/// the bindings; `w_stride` is the distance between W's rows.
pub(crate) struct Gemm {
    pub mode: Mode,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: (Binding, u32),
    pub w: (Binding, u32, usize, DType),
    pub bias: Option<(Binding, u32)>,
    pub c: (Binding, u32),
    pub accumulate: bool,
}

/// Rows (and columns) of C one workgroup owns: 2×2 subgroups × 2×2 tiles of S.
pub(crate) fn block(s: u32) -> usize {
    4 * s as usize
}

pub(crate) fn dispatch(gpu: &Gpu, s: u32, g: Gemm) -> crate::Result<()> {
    let (mode, ks, geo) = match g.mode {
        Mode::Linear => ("LINEAR", 1, [0u32; 9]),
        Mode::Conv2d { ks, geometry } => {
            let mut v = [0u32; 9];
            v[..7].copy_from_slice(&geometry);
            ("CONV2D", ks, v)
        }
        Mode::Temporal { geometry } => {
            let mut v = [0u32; 9];
            v[..8].copy_from_slice(&geometry);
            ("TEMPORAL", 1, v)
        }
    };
    let sg = gpu.caps.subgroup_max.max(1);
    let defines = [
        (mode, "1".to_string()),
        ("S", s.to_string()),
        ("SG", sg.to_string()),
        ("WG", (4 * sg).to_string()),
        ("KS", ks.to_string()),
        ("W_F16", ((g.w.3 == DType::F16) as u32).to_string()),
    ];
    let kern = gpu.kernel("gemm_coop", SRC, "gemm_coop", &defines)?;
    let has_bias = g.bias.is_some();
    let (bias_binding, b_off) = match g.bias {
        Some((b, off)) => (b, off),
        None => (gpu.unused_binding(), 0),
    };
    let mut params = vec![
        g.m as u32,
        g.n as u32,
        g.k as u32,
        g.a.1,
        g.w.1,
        g.w.2 as u32,
        b_off,
        g.c.1,
        has_bias as u32,
        g.accumulate as u32,
    ];
    params.extend_from_slice(&geo);
    let b = block(s);
    let tiles = g.m.div_ceil(b) * g.n.div_ceil(b);
    gpu.flops_hint(2.0 * g.m as f64 * g.n as f64 * g.k as f64);
    gpu.dispatch(&kern, &params, vec![(1, g.a.0), (2, g.w.0), (3, bias_binding), (4, g.c.0)], groups(gpu, tiles));
    Ok(())
}
