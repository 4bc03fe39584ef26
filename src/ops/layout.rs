//! Data movement (shaders/layout.wgsl, shaders/upsample.wgsl, shaders/patch.wgsl): permutes
//! between the frame layouts, concat, nearest upsampling, and Wan's patchify/unpatchify. All permutes and concats are one strided-copy
//! kernel; the wrappers only compute strides.

use super::{chunk_ranges, f, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/layout.wgsl");
const UPSAMPLE: &str = include_str!("../../shaders/upsample.wgsl");
const PATCH: &str = include_str!("../../shaders/patch.wgsl");

/// Copies a 4-D box: element (i0..i3) goes from `x[x_at + Σ i·is]` to `y[y_at + Σ i·os]`.
/// Splits along box dim 0 when a window would exceed one binding.
fn copy_box(x: &Tensor, x_at: usize, is: [usize; 4], y: &Tensor, y_at: usize, os: [usize; 4], dims: [usize; 4]) -> Result<()> {
    let op = "copy4d";
    if x.dtype() != DType::F32 || y.dtype() != DType::F32 {
        return shape_err(op, "layout ops move f32 activations only");
    }
    let n: usize = dims.iter().product();
    if n == 0 {
        return Ok(());
    }
    let gpu = x.gpu();
    let k = gpu.kernel("layout", SRC, "copy4d", &[])?;
    let ext = |s: &[usize; 4]| -> usize { (1..4).map(|d| (dims[d] - 1) * s[d]).sum::<usize>() + 1 };
    let (ext_x, ext_y) = (ext(&is), ext(&os));
    let per = units_per_binding(gpu, 4 * is[0].max(os[0]).max(1) as u64);
    for (lo, hi) in chunk_ranges(dims[0], per) {
        let xw = x.window(x_at + lo * is[0], x_at + (hi - 1) * is[0] + ext_x, op)?;
        let yw = y.window(y_at + lo * os[0], y_at + (hi - 1) * os[0] + ext_y, op)?;
        let cnt = (hi - lo) * dims[1] * dims[2] * dims[3];
        let params = [
            cnt as u32,
            dims[1] as u32,
            dims[2] as u32,
            dims[3] as u32,
            is[0] as u32,
            is[1] as u32,
            is[2] as u32,
            is[3] as u32,
            os[0] as u32,
            os[1] as u32,
            os[2] as u32,
            os[3] as u32,
            xw.shift,
            yw.shift,
        ];
        gpu.dispatch(&k, &params, vec![(1, xw.binding), (2, yw.binding)], groups(gpu, cnt.div_ceil(256)));
    }
    Ok(())
}

fn contiguous_strides(shape: &[usize; 4]) -> [usize; 4] {
    [shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3], 1]
}

/// Generic permute of up to 4 dims: output dim i is input dim `perm[i]`.
pub fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let r = x.shape().len();
    let mut sorted = perm.to_vec();
    sorted.sort_unstable();
    if r > 4 || perm.len() != r || sorted != (0..r).collect::<Vec<_>>() {
        return shape_err("permute", format!("{perm:?} is not a permutation of the {r} dims of {:?}", x.shape()));
    }
    // Input strides, then the box in output order, padded with trailing unit dims so box dim 0
    // is the output's outermost dim (the one big tensors are split along).
    let mut xs = vec![1usize; r];
    for d in (0..r.saturating_sub(1)).rev() {
        xs[d] = xs[d + 1] * x.shape()[d + 1];
    }
    let mut dims = [1usize; 4];
    let mut is = [0usize; 4];
    for (i, &pd) in perm.iter().enumerate() {
        dims[i] = x.shape()[pd];
        is[i] = xs[pd];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&pd| x.shape()[pd]).collect();
    let y = Tensor::empty(x.gpu(), &out_shape, DType::F32)?;
    copy_box(x, 0, is, &y, 0, contiguous_strides(&dims), dims)?;
    Ok(y)
}

/// Concatenates along `dim` (e.g. dim 1: the UNet's skip connections on channels).
pub fn cat(xs: &[&Tensor], dim: usize) -> Result<Tensor> {
    let first = xs.first().ok_or_else(|| crate::Error::Shape { op: "cat", msg: "nothing to concatenate".into() })?;
    let shape = first.shape();
    if dim >= shape.len() {
        return shape_err("cat", format!("dim {dim} out of range for {shape:?}"));
    }
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let mut total = 0;
    for t in xs {
        let s = t.shape();
        if s.len() != shape.len() || s[..dim] != shape[..dim] || s[dim + 1..] != shape[dim + 1..] {
            return shape_err("cat", format!("{s:?} does not match {shape:?} outside dim {dim}"));
        }
        total += s[dim];
    }
    let mut out_shape = shape.to_vec();
    out_shape[dim] = total;
    let y = Tensor::empty(first.gpu(), &out_shape, DType::F32)?;
    let mut at = 0;
    for t in xs {
        let c = t.shape()[dim];
        // Outer rows first so big tensors split into row chunks.
        let dims = [outer, c, inner, 1];
        copy_box(t, 0, [c * inner, inner, 1, 0], &y, at * inner, [total * inner, inner, 1, 0], dims)?;
        at += c;
    }
    Ok(y)
}

/// torch's `repeat_interleave(times, dim=0)`: every row of x [N, ...] repeated `times` times in
/// place → [N·times, ...] (the UNet's per-frame copies of temb and the text embedding).
pub fn repeat_interleave(x: &Tensor, times: usize) -> Result<Tensor> {
    let s = x.shape();
    if s.is_empty() || times == 0 {
        return shape_err("repeat_interleave", format!("cannot repeat {s:?} {times} times"));
    }
    let inner: usize = s[1..].iter().product();
    let mut out_shape = s.to_vec();
    out_shape[0] *= times;
    let y = Tensor::empty(x.gpu(), &out_shape, DType::F32)?;
    copy_box(x, 0, [inner, 0, 1, 0], &y, 0, [times * inner, inner, 1, 0], [s[0], times, inner, 1])?;
    Ok(y)
}

/// Copies `src` into `dst` element for element (same element count, f32; shapes may differ):
/// the Wan VAE writes new frames into its causal caches and chunk outputs into the video.
pub fn copy_into(src: &Tensor, dst: &Tensor) -> Result<()> {
    if src.numel() != dst.numel() {
        return shape_err("copy_into", format!("{:?} and {:?} hold different element counts", src.shape(), dst.shape()));
    }
    copy_box(src, 0, [1, 0, 0, 0], dst, 0, [1, 0, 0, 0], [src.numel(), 1, 1, 1])
}

/// The `h`×`w` window at (`top`, `left`) of every image of x (N, C, H, W) → (N, C, h, w): the Wan
/// VAE's tiled decode cuts its overlapping latent tiles out this way.
pub fn crop_hw(x: &Tensor, top: usize, left: usize, h: usize, w: usize) -> Result<Tensor> {
    let s = x.shape();
    if s.len() != 4 || h == 0 || w == 0 || top + h > s[2] || left + w > s[3] {
        return shape_err("crop_hw", format!("no {h}×{w} window at ({top}, {left}) in {s:?}"));
    }
    let (hh, ww) = (s[2], s[3]);
    let y = Tensor::empty(x.gpu(), &[s[0], s[1], h, w], DType::F32)?;
    copy_box(x, top * ww + left, [hh * ww, ww, 1, 0], &y, 0, [h * w, w, 1, 0], [s[0] * s[1], h, w, 1])?;
    Ok(y)
}

/// (B·F, C, H, W) → (B, C, F, H, W): the engine's folded frames to PyTorch's Conv3d layout.
pub fn frames_to_channels_first(x: &Tensor, frames: usize) -> Result<Tensor> {
    let (b, c, h, w) = folded_dims("frames_to_channels_first", x, frames)?;
    permute(&x.reshape(&[b, frames, c, h * w])?, &[0, 2, 1, 3])?.reshape(&[b, c, frames, h, w])
}

/// (B, C, F, H, W) → (B·F, C, H, W).
pub fn channels_first_to_frames(x: &Tensor) -> Result<Tensor> {
    let s = x.shape();
    if s.len() != 5 {
        return shape_err("channels_first_to_frames", format!("expected (B, C, F, H, W), got {s:?}"));
    }
    let (b, c, fr, h, w) = (s[0], s[1], s[2], s[3], s[4]);
    permute(&x.reshape(&[b, c, fr, h * w])?, &[0, 2, 1, 3])?.reshape(&[b * fr, c, h, w])
}

/// (B·F, C, H, W) → (B·H·W, F, C): each pixel's frames become a sequence (temporal attention).
pub fn frames_to_sequences(x: &Tensor, frames: usize) -> Result<Tensor> {
    let (b, c, h, w) = folded_dims("frames_to_sequences", x, frames)?;
    permute(&x.reshape(&[b, frames, c, h * w])?, &[0, 3, 1, 2])?.reshape(&[b * h * w, frames, c])
}

/// (B·H·W, F, C) → (B·F, C, H, W), the inverse of [`frames_to_sequences`].
pub fn sequences_to_frames(x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let s = x.shape();
    if s.len() != 3 || h * w == 0 || !s[0].is_multiple_of(h * w) {
        return shape_err("sequences_to_frames", format!("{s:?} is not (B·{h}·{w}, F, C)"));
    }
    let (b, fr, c) = (s[0] / (h * w), s[1], s[2]);
    permute(&x.reshape(&[b, h * w, fr, c])?, &[0, 2, 3, 1])?.reshape(&[b * fr, c, h, w])
}

fn folded_dims(op: &'static str, x: &Tensor, frames: usize) -> Result<(usize, usize, usize, usize)> {
    let s = x.shape();
    if s.len() != 4 || frames == 0 || !s[0].is_multiple_of(frames) {
        return shape_err(op, format!("{s:?} is not (B·F, C, H, W) with F = {frames}"));
    }
    Ok((s[0] / frames, s[1], s[2], s[3]))
}

/// Nearest upsampling of (N, C, H, W) to (oh, ow): 2× in Upsample2D, or an explicit size
/// when diffusers passes `upsample_size` (latents not divisible by 8).
pub fn upsample_nearest(x: &Tensor, oh: usize, ow: usize) -> Result<Tensor> {
    let op = "upsample_nearest";
    let s = x.shape();
    if s.len() != 4 || oh == 0 || ow == 0 || x.dtype() != DType::F32 {
        return shape_err(op, format!("expected f32 (N, C, H, W) and a non-zero size, got {s:?} → {oh}×{ow}"));
    }
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let y = Tensor::empty(x.gpu(), &[n, c, oh, ow], DType::F32)?;
    let gpu = x.gpu();
    let k = gpu.kernel("upsample", UPSAMPLE, "upsample_nearest", &[])?;
    let planes = n * c;
    let per = units_per_binding(gpu, 4 * (oh * ow) as u64);
    for (lo, hi) in chunk_ranges(planes, per) {
        let xw = x.window(lo * h * w, hi * h * w, op)?;
        let yw = y.window(lo * oh * ow, hi * oh * ow, op)?;
        let cnt = (hi - lo) * oh * ow;
        let params = [
            cnt as u32,
            h as u32,
            w as u32,
            oh as u32,
            ow as u32,
            f(h as f32 / oh as f32),
            f(w as f32 / ow as f32),
            xw.shift,
            yw.shift,
        ];
        gpu.dispatch(&k, &params, vec![(1, xw.binding), (2, yw.binding)], groups(gpu, cnt.div_ceil(256)));
    }
    Ok(y)
}

/// [B, L, H·D] → [B·H, L, D]: each head's channels as its own contiguous sequence, so
/// attention over a sequence whose [L, H·D] rows exceed one storage binding (Wan at 832×480×81:
/// 201 MB of q) binds one head at a time. One copy per (batch item, head), split into row
/// ranges by `copy_box`, so no binding spans more than a row range of x or one head of y.
pub fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, l, d) = head_dims("split_heads", x, heads)?;
    let y = Tensor::empty(x.gpu(), &[b * heads, l, d], DType::F32)?;
    for bi in 0..b {
        for h in 0..heads {
            copy_box(x, bi * l * heads * d + h * d, [heads * d, 1, 0, 0], &y, (bi * heads + h) * l * d, [d, 1, 0, 0], [l, d, 1, 1])?;
        }
    }
    Ok(y)
}

/// [B·H, L, D] → [B, L, H·D], the inverse of [`split_heads`].
pub fn merge_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let s = x.shape();
    if s.len() != 3 || heads == 0 || !s[0].is_multiple_of(heads) || x.dtype() != DType::F32 {
        return shape_err("merge_heads", format!("expects f32 [B·{heads}, L, D], got {s:?}"));
    }
    let (b, l, d) = (s[0] / heads, s[1], s[2]);
    let y = Tensor::empty(x.gpu(), &[b, l, heads * d], DType::F32)?;
    for bi in 0..b {
        for h in 0..heads {
            copy_box(x, (bi * heads + h) * l * d, [d, 1, 0, 0], &y, bi * l * heads * d + h * d, [heads * d, 1, 0, 0], [l, d, 1, 1])?;
        }
    }
    Ok(y)
}

fn head_dims(op: &'static str, x: &Tensor, heads: usize) -> Result<(usize, usize, usize)> {
    let s = x.shape();
    if s.len() != 3 || heads == 0 || !s[2].is_multiple_of(heads) || x.dtype() != DType::F32 {
        return shape_err(op, format!("expects f32 [B, L, {heads}·D], got {s:?}"));
    }
    Ok((s[0], s[1], s[2] / heads))
}

/// Wan's patch embedding input: x (B, C, F, H, W) → (B, F'·H'·W', C·pt·ph·pw), rows in token
/// order f'·H'W' + h'·W' + w', each row a patch in Conv3d weight order (c, t, h, w). F, H, W must
/// be whole multiples of the patch.
pub fn patchify(x: &Tensor, patch: [usize; 3]) -> Result<Tensor> {
    let op = "patchify";
    let s = x.shape();
    if s.len() != 5 || x.dtype() != DType::F32 || patch.contains(&0) {
        return shape_err(op, format!("expects f32 (B, C, F, H, W) and a non-zero patch, got {s:?} {} patch {patch:?}", x.dtype().name()));
    }
    let (b, c) = (s[0], s[1]);
    let grid = post_patch_grid(op, [s[2], s[3], s[4]], patch)?;
    let width = c * patch.iter().product::<usize>();
    let y = Tensor::empty(x.gpu(), &[b, grid.iter().product(), width], DType::F32)?;
    run_patch("patchify", x, &y, c, grid, patch)?;
    Ok(y)
}

/// Wan's output layout: rows (B, F'·H'·W', pt·ph·pw·C) with channel fastest → (B, C, F, H, W)
/// for a post-patch grid (F', H', W').
pub fn unpatchify(x: &Tensor, grid: [usize; 3], patch: [usize; 3]) -> Result<Tensor> {
    let op = "unpatchify";
    let s = x.shape();
    let tokens = grid.iter().product::<usize>();
    let psz = patch.iter().product::<usize>();
    if s.len() != 3 || x.dtype() != DType::F32 || psz == 0 || s[1] != tokens || !s[2].is_multiple_of(psz) {
        return shape_err(
            op,
            format!("expects f32 (B, {tokens}, {psz}·C) for grid {grid:?} patch {patch:?}, got {s:?} {}", x.dtype().name()),
        );
    }
    let c = s[2] / psz;
    let y = Tensor::empty(x.gpu(), &[s[0], c, grid[0] * patch[0], grid[1] * patch[1], grid[2] * patch[2]], DType::F32)?;
    run_patch("unpatchify", x, &y, c, grid, patch)?;
    Ok(y)
}

/// (F', H', W') for a video of (F, H, W) frames and pixels, refusing a remainder (diffusers'
/// strided conv would drop it and the output would not match the input's size).
pub fn post_patch_grid(op: &'static str, size: [usize; 3], patch: [usize; 3]) -> Result<[usize; 3]> {
    if (0..3).any(|i| patch[i] == 0 || !size[i].is_multiple_of(patch[i])) {
        return shape_err(op, format!("frames × height × width {size:?} must be whole multiples of the patch {patch:?}"));
    }
    Ok([size[0] / patch[0], size[1] / patch[1], size[2] / patch[2]])
}

fn run_patch(entry: &'static str, x: &Tensor, y: &Tensor, c: usize, grid: [usize; 3], patch: [usize; 3]) -> Result<()> {
    let n = y.numel();
    if n == 0 {
        return Ok(());
    }
    let gpu = x.gpu();
    // Latents are small (16 × 21 × 60 × 104 f32 = 8.4 MB at 832×480×81): bound whole.
    let (xw, yw) = (x.whole(entry)?, y.whole(entry)?);
    let k = gpu.kernel("patch", PATCH, entry, &[])?;
    let params = [
        n as u32,
        c as u32,
        grid[0] as u32,
        grid[1] as u32,
        grid[2] as u32,
        patch[0] as u32,
        patch[1] as u32,
        patch[2] as u32,
        xw.shift,
        yw.shift,
    ];
    gpu.dispatch(&k, &params, vec![(1, xw.binding), (2, yw.binding)], groups(gpu, n.div_ceil(256)));
    Ok(())
}

pub(crate) fn bench_cases(gpu: &std::sync::Arc<crate::gpu::Gpu>, frames: usize) -> Result<Vec<crate::bench::Case>> {
    use crate::bench::{rand_tensor, Case};
    let clips = frames.div_ceil(24);
    let (f, c, h, w) = (24usize, 320usize, 40usize, 72usize);
    let x = rand_tensor(gpu, &[clips * f, c, h, w], DType::F32, 1)?;
    let skip = rand_tensor(gpu, &[frames, 640, 20, 36], DType::F32, 2)?;
    let up = rand_tensor(gpu, &[frames, 1280, 10, 18], DType::F32, 3)?;
    let n = clips * f * c * h * w;
    let x2 = x.clone();
    let nc = frames * 1280 * 20 * 36;
    let nu = frames * 1280 * 20 * 36;
    Ok(vec![
        Case::new("layout", format!("frames->sequences L0 {clips}x24x320x40x72"), 0.0, 8.0 * n as f64, move || {
            frames_to_sequences(&x, f).map(drop)
        }),
        Case::new("layout", format!("frames->(B,C,F,H,W) L0 {clips}x24x320x40x72"), 0.0, 8.0 * n as f64, move || {
            frames_to_channels_first(&x2, f).map(drop)
        }),
        Case::new("layout", format!("cat skip L1 {frames}x(640+640)x20x36"), 0.0, 8.0 * nc as f64, move || {
            cat(&[&skip, &skip], 1).map(drop)
        }),
        Case::new("upsample", format!("nearest 2x L2->L1 {frames}x1280x10x18"), 0.0, 4.0 * (nu + nu / 4) as f64, move || {
            upsample_nearest(&up, 20, 36).map(drop)
        }),
    ])
}
