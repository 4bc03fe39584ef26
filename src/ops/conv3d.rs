//! Causal 3-D convolution (shaders/conv3d.wgsl), stride 1: Wan's `WanCausalConv3d` computed
//! directly, frame by frame, with no im2col and no [cache ‖ new] concatenation.
//!
//! `x` holds the new frames of one video, (F, Cin, H, W); `prev` are the frames that precede
//! them in time (the conv's cache, oldest first, each (1, Cin, H, W) — views into any tensor).
//! Weight [Cout, Cin, KT, KS, KS] with KT ∈ {1, 3}, KS ∈ {1, 3}: (3,3,3), (3,1,1) and (1,1,1).
//! Output frame j sees stream frames j..j+KT−1 of [zeros ‖ prev ‖ x], the zeros being the
//! causal front padding (KT−1 − prev.len() frames); space is zero-padded by KS/2. A frame whose
//! channels exceed one storage binding is done in channel chunks (output channels c0..c1,
//! accumulated over input-channel chunks k0..k1).

use super::{chunk_ranges, groups, row_tile, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor, Window};

const SRC: &str = concat!(include_str!("../../shaders/conv3d.wgsl"), "\n", include_str!("../../shaders/conv_weights.wgsl"));
/// Output channels per invocation (pixels per invocation come from `row_tile`).
pub const TILE_N: usize = 8;

/// See the module docs. `clamp_unit` clamps the result to [-1, 1] (the VAE's final clamp, fused).
pub fn conv3d_causal(x: &Tensor, prev: &[&Tensor], w: &Tensor, bias: Option<&Tensor>, clamp_unit: bool) -> Result<Tensor> {
    let op = "conv3d";
    let (xs, ws) = (x.shape(), w.shape());
    if xs.len() != 4 || ws.len() != 5 || ws[1] != xs[1] {
        return shape_err(op, format!("input (F, Cin, H, W) and weight [Cout, Cin, kt, kh, kw] expected, got {xs:?} and {ws:?}"));
    }
    let (kt, ks) = (ws[2], ws[3]);
    if !matches!(kt, 1 | 3) || !matches!(ks, 1 | 3) || ws[4] != ks {
        return shape_err(op, format!("kernel ({kt}, {}, {}) is not one of (3,3,3), (3,1,1), (1,1,1)", ws[3], ws[4]));
    }
    if x.dtype() != DType::F32 {
        return shape_err(op, "input must be f32");
    }
    let (f, cin, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let cout = ws[0];
    let plane = h * wd;
    if f == 0 || plane == 0 {
        return shape_err(op, format!("no frames or pixels in {xs:?}"));
    }
    // A 1-frame kernel has no front padding: diffusers ignores the cache there.
    let prev: &[&Tensor] = if kt == 1 { &[] } else { prev };
    if prev.len() > kt - 1 {
        return shape_err(op, format!("{} cached frames given, a kernel of {kt} frames uses at most {}", prev.len(), kt - 1));
    }
    for p in prev {
        if p.shape() != [1, cin, h, wd] {
            return shape_err(op, format!("cached frame must be [1, {cin}, {h}, {wd}], got {:?}", p.shape()));
        }
    }
    if let Some(b) = bias {
        if b.shape() != [cout] || b.dtype() != DType::F32 {
            return shape_err(op, format!("bias must be f32 [{cout}], got {:?}", b.shape()));
        }
    }
    let gpu = x.gpu();
    let out = Tensor::empty(gpu, &[f, cout, h, wd], DType::F32)?;
    let ww = w.whole(op)?;
    let bw = match bias {
        Some(b) => b.whole(op)?,
        None => Window { binding: gpu.unused_binding(), shift: 0 },
    };
    let fits = |c: usize| 4 * (c * plane) as u64 + 512 <= gpu.max_binding();
    let cin_per = if fits(cin) { cin } else { units_per_binding(gpu, 4 * plane as u64) };
    let cout_per = if fits(cout) { cout } else { units_per_binding(gpu, 4 * plane as u64) };
    let (wg, tm) = row_tile(plane);
    // Cached frames may be f16 (taps 0 and 1 only: tap 2 is always a new frame).
    let w_defines = super::tiles::weight_defines(gpu, false, w.dtype());
    let kernel = |f16_taps: [bool; 2]| {
        let defines = [
            ("WG", wg.to_string()),
            ("TM", tm.to_string()),
            ("TN", TILE_N.to_string()),
            ("KS", ks.to_string()),
            ("KT", kt.to_string()),
            w_defines[0].clone(),
            w_defines[1].clone(),
            ("T0_F16", (f16_taps[0] as u32).to_string()),
            ("T1_F16", (f16_taps[1] as u32).to_string()),
        ];
        gpu.kernel("conv3d", SRC, "conv3d", &defines)
    };
    let pad = kt - 1 - prev.len();
    for j in 0..f {
        for (c0, c1) in chunk_ranges(cout, cout_per) {
            let yw = out.window((j * cout + c0) * plane, (j * cout + c1) * plane, op)?;
            for (k0, k1) in chunk_ranges(cin, cin_per) {
                // Each tap's frame: padding, a cached frame or one of the new frames.
                let mut taps = 0u32;
                let mut f16_taps = 0u32;
                let mut wins: Vec<Window> = Vec::with_capacity(3);
                for dt in 0..3 {
                    let q = j + dt;
                    let win = if dt >= kt || q < pad {
                        None
                    } else if q - pad < prev.len() {
                        let fr = prev[q - pad];
                        match (fr.dtype(), dt) {
                            (DType::F32, _) => {}
                            (DType::F16, 0 | 1) => f16_taps |= 1 << dt,
                            _ => return shape_err(op, "an f16 cached frame in the newest tap (more cached frames than the kernel reads?)"),
                        }
                        Some(fr.window(k0 * plane, k1 * plane, op)?)
                    } else {
                        let fr = q - pad - prev.len();
                        Some(x.window((fr * cin + k0) * plane, (fr * cin + k1) * plane, op)?)
                    };
                    match win {
                        Some(wi) => {
                            taps |= 1 << dt;
                            wins.push(wi);
                        }
                        None => wins.push(Window { binding: gpu.unused_binding(), shift: 0 }),
                    }
                }
                let params = [
                    (k1 - k0) as u32,
                    h as u32,
                    wd as u32,
                    (c1 - c0) as u32,
                    wins[0].shift,
                    wins[1].shift,
                    wins[2].shift,
                    taps,
                    ww.shift + (c0 * cin * kt * ks * ks) as u32,
                    bw.shift + c0 as u32,
                    yw.shift,
                    (bias.is_some() && k0 == 0) as u32,
                    cin as u32,
                    k0 as u32,
                    (k0 > 0) as u32,
                    (clamp_unit && k1 == cin) as u32,
                ];
                let tiles = plane.div_ceil(wg * tm) * (c1 - c0).div_ceil(TILE_N);
                gpu.flops_hint(2.0 * plane as f64 * (c1 - c0) as f64 * ((k1 - k0) * ks * ks) as f64 * taps.count_ones() as f64);
                let mut it = wins.into_iter();
                let (w0, w1, w2) = match (it.next(), it.next(), it.next()) {
                    (Some(a), Some(b), Some(c)) => (a, b, c),
                    _ => return shape_err(op, "internal: three tap windows expected"),
                };
                gpu.dispatch(
                    &kernel([f16_taps & 1 != 0, f16_taps & 2 != 0])?,
                    &params,
                    vec![
                        (1, w0.binding),
                        (5, w1.binding),
                        (6, w2.binding),
                        (2, ww.binding.clone()),
                        (3, bw.binding.clone()),
                        (4, yw.binding.clone()),
                    ],
                    groups(gpu, tiles),
                );
            }
        }
    }
    Ok(out)
}

/// Writes the f32 frames `src` into `dst`, an f16 tensor of the same element count (a causal
/// cache slot kept in 16 bits), rounding as `pack2x16float`.
pub fn store_f16(src: &Tensor, dst: &Tensor) -> Result<()> {
    let op = "conv3d cache_store";
    if src.dtype() != DType::F32 || dst.dtype() != DType::F16 || src.numel() != dst.numel() {
        return shape_err(op, format!("f32 source and f16 destination of one size expected, got {:?} and {:?}", src.shape(), dst.shape()));
    }
    let n = src.numel();
    if n == 0 {
        return Ok(());
    }
    let gpu = src.gpu();
    let kern = gpu.kernel("conv3d", SRC, "cache_store", &[("WG", "64".into()), ("TM", "1".into()), ("TN", "1".into()), ("KS", "1".into()), ("KT", "1".into()), ("W_F16", "0".into()), ("T0_F16", "0".into()), ("T1_F16", "0".into())])?;
    for (lo, hi) in chunk_ranges(n, units_per_binding(gpu, 4)) {
        let xw = src.window(lo, hi, op)?;
        let yw = dst.window(lo, hi, op)?;
        let d0 = yw.shift as usize;
        let (w0, w1) = (d0 / 2, (d0 + hi - lo).div_ceil(2));
        let mut params = [0u32; 16];
        params[0] = (w1 - w0) as u32;
        params[1] = w0 as u32;
        params[2] = d0 as u32;
        params[3] = (hi - lo) as u32;
        params[6] = xw.shift;
        gpu.dispatch(&kern, &params, vec![(6, xw.binding), (7, yw.binding)], groups(gpu, (w1 - w0).div_ceil(256)));
    }
    Ok(())
}
