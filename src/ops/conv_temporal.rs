//! Temporal convolution (shaders/conv_temporal.wgsl): ModelScope's Conv3d (3,1,1) over frames
//! with zero padding in time, in either frame layout.

use super::tiles::{gemm_tile, Op, Tile};
use super::{chunk_ranges, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor, Window};

const SRC: &str = concat!(include_str!("../../shaders/conv_temporal.wgsl"), "\n", include_str!("../../shaders/conv_weights.wgsl"));

/// Frames with fewer pixels than this run as one GEMM over (batch, frame, pixel) rows: a
/// per-frame tile of ≤ 256 rows takes the small-row variants of `row_tile` (at 5×9 pixels,
/// 48-wide workgroups of one row each), the rows of all frames the 64×8 one. At 256 and more the
/// per-frame kernel's tiles are full and its frame test is uniform. Measured: BENCHMARKS.md
/// "Temporal convolution by shape".
const ROWS_ACROSS_FRAMES_BELOW: usize = 256;

/// How frames sit in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLayout {
    /// (B·F, C, H, W): frames folded into the batch as b·F+f — the engine's layout.
    Folded,
    /// (B, C, F, H, W): PyTorch's Conv3d layout.
    ChannelsFirst,
}

/// `x`: (B·F, Cin, H, W) for `Folded` or (B, Cin, F, H, W) for `ChannelsFirst`; weight
/// [Cout, Cin, 3, 1, 1]; returns the same layout with Cout channels.
pub fn conv_temporal(x: &Tensor, frames: usize, layout: FrameLayout, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    conv_temporal_tiled(x, frames, layout, w, bias, None)
}

/// [`conv_temporal`] with the FMA path's tiling forced (`None`: the adapter's table picks it
/// by shape): for tests of every tiling and for `bench kernels --tiles`.
pub fn conv_temporal_tiled(x: &Tensor, frames: usize, layout: FrameLayout, w: &Tensor, bias: Option<&Tensor>, tile: Option<Tile>) -> Result<Tensor> {
    let op = "conv_temporal";
    let xs = x.shape();
    let (b, cin, s) = match layout {
        FrameLayout::Folded if xs.len() == 4 && frames > 0 && xs[0].is_multiple_of(frames) => (xs[0] / frames, xs[1], xs[2] * xs[3]),
        FrameLayout::ChannelsFirst if xs.len() == 5 && xs[2] == frames => (xs[0], xs[1], xs[3] * xs[4]),
        _ => {
            return shape_err(op, format!("input {xs:?} does not match {frames} frames in the {layout:?} layout"));
        }
    };
    let ws = w.shape();
    if ws.len() != 5 || ws[1] != cin || ws[2..] != [3, 1, 1] {
        return shape_err(op, format!("weight must be [Cout, {cin}, 3, 1, 1], got {ws:?}"));
    }
    if x.dtype() != DType::F32 {
        return shape_err(op, "input must be f32");
    }
    let cout = ws[0];
    if let Some(bt) = bias {
        if bt.shape() != [cout] || bt.dtype() != DType::F32 {
            return shape_err(op, format!("bias must be f32 [{cout}], got {:?}", bt.shape()));
        }
    }
    let f = frames;
    let mut oshape = xs.to_vec();
    oshape[1] = cout;
    let out = Tensor::empty(x.gpu(), &oshape, DType::F32)?;
    // (batch, frame, channel) strides of input and output.
    let strides = |c: usize| match layout {
        FrameLayout::Folded => [f * c * s, c * s, s],
        FrameLayout::ChannelsFirst => [c * f * s, s, f * s],
    };
    let (xst, yst) = (strides(cin), strides(cout));
    let gpu = x.gpu();
    let ww = w.whole(op)?;
    let kernel = |t: Tile, entry: &str| {
        let [d0, d1, d2] = t.defines();
        let [w0, w1] = super::tiles::weight_defines(gpu, t.is_cols(), w.dtype());
        // The column tiling's channel-pair loop reads two channels' taps as whole u32s.
        let pairs = t.is_cols() && w.dtype() == DType::F16 && cin % 2 == 0 && ww.shift % 2 == 0;
        let defines = [d0, d1, d2, w0, w1, ("CH_PAIRS", (pairs as u32).to_string())];
        gpu.kernel("conv_temporal", SRC, &t.entry(entry), &defines)
    };
    let bw = match bias {
        Some(bt) => bt.whole(op)?,
        None => Window { binding: gpu.unused_binding(), shift: 0 },
    };
    let per = units_per_binding(gpu, 4 * (xst[0].max(yst[0])) as u64);
    for (lo, hi) in chunk_ranges(b, per) {
        let xw = x.window(lo * xst[0], hi * xst[0], op)?;
        let yw = out.window(lo * yst[0], hi * yst[0], op)?;
        let nb = hi - lo;
        if let Some(sz) = gpu.caps.coop {
            use super::gemm_coop::{dispatch, Gemm, Mode};
            let st = |v: [usize; 3]| v.map(|x| x as u32);
            let (xs3, ys3) = (st(xst), st(yst));
            let g = Gemm {
                mode: Mode::Temporal { geometry: [xs3[0], xs3[1], xs3[2], ys3[0], ys3[1], ys3[2], f as u32, s as u32] },
                m: nb * f * s,
                n: cout,
                k: cin * 3,
                a: (xw.binding, xw.shift),
                w: (ww.binding.clone(), ww.shift, cin * 3, w.dtype()),
                bias: bias.map(|_| (bw.binding.clone(), bw.shift)),
                c: (yw.binding, yw.shift),
                accumulate: false,
            };
            dispatch(gpu, sz, g)?;
            continue;
        }
        let params = [
            nb as u32,
            f as u32,
            cin as u32,
            cout as u32,
            s as u32,
            xst[0] as u32,
            xst[1] as u32,
            xst[2] as u32,
            yst[0] as u32,
            yst[1] as u32,
            yst[2] as u32,
            xw.shift,
            ww.shift,
            bw.shift,
            yw.shift,
            bias.is_some() as u32,
        ];
        // Frames of few pixels: one GEMM over (batch, frame, pixel) rows instead of a tile per
        // frame (see `ROWS_ACROSS_FRAMES_BELOW`).
        let rows = nb * f * s;
        let across = tile.unwrap_or_else(|| gemm_tile(gpu, Op::ConvTemporal, rows, cout, cin * 3));
        let per_frame = tile.unwrap_or_else(|| gemm_tile(gpu, Op::ConvTemporal, s, cout, cin * 3));
        // The column tiling always runs across frames (its rows are workgroup-uniform, frame
        // edges included); the row tiling across frames only for frames of few pixels.
        let (t, entry, tiles) = if s < ROWS_ACROSS_FRAMES_BELOW || matches!(across, Tile::Cols { .. }) {
            (across, "conv_temporal_rows", across.workgroups(rows, cout))
        } else if matches!(per_frame, Tile::Cols { .. }) {
            (per_frame, "conv_temporal_rows", per_frame.workgroups(rows, cout))
        } else {
            (per_frame, "conv_temporal", nb * f * per_frame.workgroups(s, cout))
        };
        let kern = kernel(t, entry)?;
        gpu.flops_hint(2.0 * rows as f64 * cout as f64 * (cin * 3) as f64);
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
    // Clips of 24 frames (`frames`/24 of them when benchmarking more).
    let (clips, f) = (frames.div_ceil(24), 24usize);
    let case = |level: &str, c: usize, h: usize, w: usize, seed: u64| -> Result<Case> {
        let x = rand_tensor(gpu, &[clips * f, c, h, w], DType::F32, seed)?;
        let wt = rand_tensor(gpu, &[c, c, 3, 1, 1], DType::F16, seed + 1)?;
        let b = rand_tensor(gpu, &[c], DType::F32, seed + 2)?;
        let n = clips * f * c * h * w;
        Ok(Case::new(
            "conv_temporal",
            format!("{level} {clips}x{f} frames x{c}x{h}x{w} W=f16"),
            2.0 * (n * c * 3) as f64,
            8.0 * n as f64 + 2.0 * (c * c * 3) as f64,
            move || conv_temporal(&x, f, FrameLayout::Folded, &wt, Some(&b)).map(drop),
        ))
    };
    // Level 0 at 576×320, and level 3 (5×9 pixels, 1280 channels): the across-frames variant's.
    Ok(vec![case("L0", 320, 40, 72, 1)?, case("L3", 1280, 5, 9, 4)?])
}
