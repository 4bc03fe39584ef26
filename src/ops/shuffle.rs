//! Channel-to-space rearrangements of the Wan 2.2 VAE decoder (shaders/shuffle.wgsl), on
//! frames-first tensors (F, C, H, W): [`dup_up`] (diffusers' `DupUp3D`) and
//! [`unpatchify_frames`] (`unpatchify` after the decoder's conv_out).

use super::{chunk_ranges, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SHUFFLE: &str = include_str!("../../shaders/shuffle.wgsl");

/// diffusers' `DupUp3D(in, out, factor_t, factor_s)` on frames (F, in, h, w): every channel
/// repeated `out·f/in` times (f = f_t·f_s²), the result viewed as (out, f_t, f_s, f_s) per pixel
/// and spread over f_t frames and f_s×f_s pixels → (F·f_t − drop, out, h·f_s, w·f_s), the first
/// `drop` frames left out (`first_chunk`: f_t − 1).
pub fn dup_up(x: &Tensor, out: usize, ft: usize, fs: usize, drop: usize) -> Result<Tensor> {
    let op = "dup_up";
    let s = x.shape();
    if s.len() != 4 || x.dtype() != DType::F32 || ft == 0 || fs == 0 || out == 0 {
        return shape_err(op, format!("expected f32 frames (F, C, h, w) and positive factors, got {s:?}, out {out}, f_t {ft}, f_s {fs}"));
    }
    let (frames, cin) = (s[0], s[1]);
    let f = ft * fs * fs;
    if (out * f) % cin != 0 {
        return shape_err(op, format!("out·f_t·f_s² = {} is not a multiple of the {cin} input channels (diffusers asserts the same)", out * f));
    }
    if drop >= frames * ft {
        return shape_err(op, format!("dropping {drop} of {} frames leaves none", frames * ft));
    }
    let rep = out * f / cin;
    shuffle(x, "dup_up", frames * ft - drop, out, fs, f, rep, |t_out| {
        let t = t_out + drop;
        (t / ft, (t % ft) as u32)
    })
}

/// diffusers' `unpatchify(x, p)` on frames (F, C·p², h, w) → (F, C, h·p, w·p): channel
/// c·p² + pw·p + ph becomes pixel (y·p + ph, x·p + pw).
pub fn unpatchify_frames(x: &Tensor, p: usize) -> Result<Tensor> {
    let op = "unpatchify_frames";
    let s = x.shape();
    if s.len() != 4 || x.dtype() != DType::F32 || p == 0 || s[1] % (p * p) != 0 {
        return shape_err(op, format!("expected f32 frames (F, C·{p}², h, w), got {s:?}"));
    }
    shuffle(x, "unpatchify_frames", s[0], s[1] / (p * p), p, p * p, 1, |t| (t, 0))
}

/// One dispatch per output frame and range of output channels; `frame_of(t_out)` gives the
/// input frame and the sub-position `it` within the temporal group.
#[allow(clippy::too_many_arguments)]
fn shuffle(x: &Tensor, entry: &'static str, frames_out: usize, cout: usize, fs: usize, f: usize, rep: usize, frame_of: impl Fn(usize) -> (usize, u32)) -> Result<Tensor> {
    let s = x.shape();
    let (cin, h, w) = (s[1], s[2], s[3]);
    let (oh, ow) = (h * fs, w * fs);
    let y = Tensor::empty(x.gpu(), &[frames_out, cout, oh, ow], DType::F32)?;
    let gpu = x.gpu();
    let k = gpu.kernel("shuffle", SHUFFLE, entry, &[])?;
    let per = units_per_binding(gpu, 4 * (oh * ow) as u64);
    let plane_in = h * w;
    for t_out in 0..frames_out {
        let (t_in, it) = frame_of(t_out);
        for (lo, hi) in chunk_ranges(cout, per) {
            // Input channels this range reads (its sub-positions j run over 0..f).
            let src_lo = lo * f / rep;
            let src_hi = ((hi - 1) * f + f - 1) / rep + 1;
            let xw = x.window((t_in * cin + src_lo) * plane_in, (t_in * cin + src_hi.min(cin)) * plane_in, entry)?;
            let yw = y.window((t_out * cout + lo) * oh * ow, (t_out * cout + hi) * oh * ow, entry)?;
            let n = (hi - lo) * oh * ow;
            let params = [n as u32, lo as u32, oh as u32, ow as u32, fs as u32, f as u32, rep as u32, it, src_lo as u32, xw.shift, yw.shift];
            gpu.dispatch(&k, &params, vec![(1, xw.binding), (2, yw.binding)], groups(gpu, n.div_ceil(256)));
        }
    }
    Ok(y)
}
