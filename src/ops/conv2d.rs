//! Conv2d (shaders/conv2d.wgsl): x [N, Cin, H, W] f32, weight [Cout, Cin, KH, KW] f32/f16,
//! bias [Cout] f32; any kernel size (square, or rectangular with [`conv2d_rect`]), stride and
//! padding. Images are split into chunks when the
//! input or output exceeds one storage binding.

use super::tiles::{gemm_tile, Op, Tile};
use super::{chunk_ranges, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor, Window};

const SRC: &str = concat!(include_str!("../../shaders/conv2d.wgsl"), "\n", include_str!("../../shaders/conv_weights.wgsl"));

pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize) -> Result<Tensor> {
    conv2d_padded(x, w, bias, stride, pad, pad)
}

/// [`conv2d`] with `pad` zeros before (top, left) and `pad_end` after (bottom, right) — the VAE
/// encoder's downsampler pads (0, 1, 0, 1).
pub fn conv2d_padded(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize, pad_end: usize) -> Result<Tensor> {
    let ws = w.shape();
    if ws.len() != 4 || ws[2] != ws[3] {
        return shape_err("conv2d", format!("weight [Cout, Cin, k, k] expected, got {ws:?}"));
    }
    conv2d_general(x, w, bias, stride, [pad, pad], [pad_end, pad_end], None)
}

/// A conv with a rectangular kernel [Cout, Cin, KH, KW] and `pad` = (rows, columns) of zeros on
/// both sides of each axis — torch's `nn.Conv2d(…, (1, 5), padding=(0, 2))`.
pub fn conv2d_rect(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, stride: usize, pad: [usize; 2]) -> Result<Tensor> {
    conv2d_general(x, w, bias, stride, pad, pad, None)
}

/// [`conv2d`] with the FMA path's tiling forced (`None`: the adapter's table picks it by
/// shape): for tests of every tiling and for `bench kernels --tiles`.
pub fn conv2d_tiled(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize, tile: Option<Tile>) -> Result<Tensor> {
    conv2d_general(x, w, bias, stride, [pad, pad], [pad, pad], tile)
}

fn conv2d_general(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, stride: usize, pad2: [usize; 2], end2: [usize; 2], tile: Option<Tile>) -> Result<Tensor> {
    let op = "conv2d";
    let (xs, ws) = (x.shape(), w.shape());
    if xs.len() != 4 || ws.len() != 4 || ws[1] != xs[1] {
        return shape_err(op, format!("input [N, Cin, H, W] and weight [Cout, Cin, kh, kw] expected, got {xs:?} and {ws:?}"));
    }
    if x.dtype() != DType::F32 {
        return shape_err(op, "input must be f32");
    }
    let (n, cin, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (cout, kh, kw) = (ws[0], ws[2], ws[3]);
    let (pad, pad_end) = (pad2[0], end2[0]);
    let (pad_x, pad_end_x) = (pad2[1], end2[1]);
    if stride == 0 || h + pad + pad_end < kh || wd + pad_x + pad_end_x < kw {
        return shape_err(op, format!("kernel {kh}×{kw} with stride {stride}, padding {pad2:?} does not fit a {h}×{wd} input"));
    }
    if let Some(b) = bias {
        if b.shape() != [cout] || b.dtype() != DType::F32 {
            return shape_err(op, format!("bias must be f32 [{cout}], got {:?}", b.shape()));
        }
    }
    let oh = (h + pad + pad_end - kh) / stride + 1;
    let ow = (wd + pad_x + pad_end_x - kw) / stride + 1;
    let out = Tensor::empty(x.gpu(), &[n, cout, oh, ow], DType::F32)?;
    let gpu = x.gpu();
    let ww = w.whole(op)?;
    let bw = match bias {
        Some(b) => b.whole(op)?,
        None => Window { binding: gpu.unused_binding(), shift: 0 },
    };
    let (in_img, out_img) = (cin * h * wd, cout * oh * ow);
    let per = units_per_binding(gpu, 4 * in_img.max(out_img) as u64);
    // Whole images per dispatch when they fit a binding; otherwise one image at a time in
    // channel chunks: output channels c0..c1 summed over input-channel chunks k0..k1.
    let mut parts = Vec::new();
    if (4 * in_img.max(out_img) as u64) + 512 <= gpu.max_binding() {
        for (lo, hi) in chunk_ranges(n, per) {
            parts.push((lo, hi, 0, cout, 0, cin));
        }
    } else {
        // Input chunks of whole channel pairs where possible: the column tiling's f16 loop reads
        // two channels' taps at a time.
        let cin_per = match units_per_binding(gpu, 4 * (h * wd) as u64) {
            c if c > 1 => c & !1,
            c => c,
        };
        let cout_per = units_per_binding(gpu, 4 * (oh * ow) as u64);
        for i in 0..n {
            for (c0, c1) in chunk_ranges(cout, cout_per) {
                for (k0, k1) in chunk_ranges(cin, cin_per) {
                    parts.push((i, i + 1, c0, c1, k0, k1));
                }
            }
        }
    }
    for (lo, hi, c0, c1, k0, k1) in parts {
        let (pin, pout) = ((k1 - k0) * h * wd, (c1 - c0) * oh * ow);
        let xw = x.window(lo * in_img + k0 * h * wd, lo * in_img + k0 * h * wd + (hi - lo - 1) * in_img + pin, op)?;
        let yw = out.window(lo * out_img + c0 * oh * ow, lo * out_img + c0 * oh * ow + (hi - lo - 1) * out_img + pout, op)?;
        let imgs = hi - lo;
        // The matrix-unit kernel reads square kernels with one padding; rectangular ones (RAFT's
        // GRU) take the FMA kernel.
        let coop = gpu.caps.coop.filter(|_| kh == kw && pad == pad_x);
        if let Some(s) = coop {
            use super::gemm_coop::{dispatch, Gemm, Mode};
            let ks = kh;
            let kk = ks * ks;
            let g = Gemm {
                mode: Mode::Conv2d { ks, geometry: [(k1 - k0) as u32, h as u32, wd as u32, oh as u32, ow as u32, stride as u32, pad as u32] },
                m: imgs * oh * ow,
                n: c1 - c0,
                k: (k1 - k0) * kk,
                a: (xw.binding, xw.shift),
                w: (ww.binding.clone(), ww.shift + (c0 * cin * kk + k0 * kk) as u32, cin * kk, w.dtype()),
                bias: bias.filter(|_| k0 == 0).map(|_| (bw.binding.clone(), bw.shift + c0 as u32)),
                c: (yw.binding, yw.shift),
                accumulate: k0 > 0,
            };
            dispatch(gpu, s, g)?;
            continue;
        }
        let t = tile.unwrap_or_else(|| gemm_tile(gpu, Op::Conv2d, imgs * oh * ow, c1 - c0, (k1 - k0) * kh * kw));
        let [d0, d1, d2] = t.defines();
        let [w0, w1] = super::tiles::weight_defines(gpu, t.is_cols(), w.dtype());
        // The column tiling's channel-pair loop reads two channels' taps as whole u32s.
        let pairs = t.is_cols() && w.dtype() == DType::F16 && (k1 - k0) % 2 == 0 && k0 % 2 == 0 && cin % 2 == 0 && ww.shift % 2 == 0
            && kh == kw && (kh == 3 || kh == 1);
        // Stride-1 3×3 column tiles over 2-D blocks of one image where that saves input loads.
        let blocks = match t {
            Tile::Cols { wg, tm, tn } if pairs && kh == 3 && stride == 1 => block_shape(oh, ow, tm, tn).map(|b| (wg, tn, b)),
            _ => None,
        };
        let mut defines = vec![d0, d1, d2, w0, w1, ("KH", kh.to_string()), ("KW", kw.to_string()), ("CH_PAIRS", (pairs as u32).to_string()), ("K3", ((kh == 3) as u32).to_string())];
        let (entry, tiles) = match blocks {
            Some((wg, tn, (by, bx))) => {
                defines[1] = ("TM", (by * bx).to_string());
                defines.extend([("BLOCKS", "1".into()), ("BY", by.to_string()), ("BX", bx.to_string())]);
                ("conv2d_blocks".to_string(), imgs * oh.div_ceil(by) * ow.div_ceil(bx) * (c1 - c0).div_ceil(wg * tn))
            }
            None => (t.entry("conv2d"), t.workgroups(imgs * oh * ow, c1 - c0)),
        };
        let kern = gpu.kernel("conv2d", SRC, &entry, &defines)?;
        let params = [
            imgs as u32,
            (k1 - k0) as u32,
            h as u32,
            wd as u32,
            (c1 - c0) as u32,
            oh as u32,
            ow as u32,
            stride as u32,
            pad as u32,
            xw.shift,
            ww.shift + (c0 * cin * kh * kw) as u32,
            bw.shift + c0 as u32,
            yw.shift,
            (bias.is_some() && k0 == 0) as u32,
            cin as u32,
            k0 as u32,
            (k0 > 0) as u32,
            pad_x as u32,
        ];
        gpu.flops_hint(2.0 * (imgs * oh * ow) as f64 * (c1 - c0) as f64 * ((k1 - k0) * kh * kw) as f64);
        gpu.dispatch(
            &kern,
            &params,
            vec![(1, xw.binding), (2, ww.binding.clone()), (3, bw.binding.clone()), (4, yw.binding)],
            groups(gpu, tiles),
        );
    }
    Ok(out)
}

pub(crate) fn bench_cases(gpu: &std::sync::Arc<crate::gpu::Gpu>, frames: usize) -> Result<Vec<crate::bench::Case>> {
    use crate::bench::{rand_tensor, Case};
    // (label, cin, cout, h, w, k, stride): Zeroscope 576×320 latent sizes per level.
    let shapes = [
        ("conv_in", 4, 320, 40, 72, 3, 1),
        ("resnet L0", 320, 320, 40, 72, 3, 1),
        ("resnet L1", 640, 640, 20, 36, 3, 1),
        ("resnet L2", 1280, 1280, 10, 18, 3, 1),
        ("downsample L0", 320, 320, 40, 72, 3, 2),
        ("shortcut 1x1 L1", 960, 640, 20, 36, 1, 1),
    ];
    let mut v = Vec::new();
    for (label, cin, cout, h, w, k, s) in shapes {
        let x = rand_tensor(gpu, &[frames, cin, h, w], DType::F32, 1)?;
        let wt = rand_tensor(gpu, &[cout, cin, k, k], DType::F16, 2)?;
        let b = rand_tensor(gpu, &[cout], DType::F32, 3)?;
        let pad = k / 2;
        let (oh, ow) = ((h + 2 * pad - k) / s + 1, (w + 2 * pad - k) / s + 1);
        let flops = 2.0 * (frames * cout * oh * ow * cin * k * k) as f64;
        let bytes = 4.0 * (frames * (cin * h * w + cout * oh * ow)) as f64 + 2.0 * (cout * cin * k * k) as f64;
        v.push(Case::new(
            "conv2d",
            format!("{label} {frames}x{cin}x{h}x{w} -> {cout} k{k} s{s} W=f16"),
            flops,
            bytes,
            move || conv2d(&x, &wt, Some(&b), s, pad).map(drop),
        ));
    }
    Ok(v)
}

/// The output block (rows, columns) a stride-1 3×3 column tile of about `tm` pixels covers, or
/// None where one-pixel-row tiles (`conv_cols_tile`) cost less. A block loads its (by+2)×(bx+2)
/// input patch once per channel instead of 9 taps per pixel, but an image that is not a whole
/// number of blocks wastes the rest; the cost per output pixel and channel pair, in lavapipe
/// instructions: 36·tn for the FMAs (multiply and add apart, 9 taps, 2 channels) and ~28 per
/// input element loaded (two bounds-checked scalar loads).
pub fn block_shape(oh: usize, ow: usize, tm: usize, tn: usize) -> Option<(usize, usize)> {
    const LOAD: usize = 28;
    let fma = 36 * tn;
    let rows_cost = (oh * ow) * (fma + 9 * LOAD);
    let mut best: Option<(usize, (usize, usize))> = None;
    for by in 1..=tm {
        for bx in 1..=tm {
            if by * bx > tm + tm / 4 || by * bx < tm / 2 {
                continue;
            }
            let cost = oh.div_ceil(by) * ow.div_ceil(bx) * (by * bx * fma + (by + 2) * (bx + 2) * LOAD);
            if best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, (by, bx)));
            }
        }
    }
    best.filter(|&(c, _)| 10 * c < 9 * rows_cost).map(|(_, b)| b)
}
