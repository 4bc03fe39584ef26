//! VBench's frame preprocessing (`vbench/utils.py` `clip_transform` / `dino_transform`, VBENCH.md
//! §1–3), which is not CLIPImageProcessor's: torchvision `Resize` on the float32 (T, 3, H, W)
//! frames (0..255, unrounded) = `F.interpolate(mode=bilinear|bicubic, align_corners=False,
//! antialias=False)`, no clamping or rounding; the shorter side to `n_px` with the longer side
//! truncated (`int(n·long/short)`); `CenterCrop` offsets rounded half-to-even; `/255`; mean/std.
//!
//! The resize reproduces torch's CPU kernel float for float (`upsample_generic_Nd_kernel_impl`
//! in ATen's UpSampleKernel.cpp as compiled for AVX2, where the compiler contracts some products
//! into FMAs — the `mul_add`s below are those, found against torch 2.15 and checked bit for bit
//! by tests/eval_vbench.rs): per output pixel the inner (width) taps are combined first, then
//! the row results, each combination `fma(t0, w0, t1·w1)` then `fma(tj, wj, acc)`. Bilinear
//! below a 128-pixel output (or with one CPU thread) takes another torch kernel; VBench's sizes
//! (≥ 224) never do. DINO's position-embedding resize ([`interpolate_scale`]) is the same bicubic
//! with torch's `scale_factor` mapping (source = (dst + ½)/scale − ½).

use crate::error::{Error, Result};

/// torch's interpolation modes VBench uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Bilinear,
    /// Keys' cubic with A = −0.75 (torch's non-antialiased bicubic).
    Bicubic,
}

/// CLIP's normalisation (openai/CLIP, VBench `clip_transform`).
#[allow(clippy::excessive_precision)]
pub const CLIP_MEAN: [f32; 3] = [0.48145466, 0.4578275, 0.40821073];
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.26862954, 0.26130258, 0.27577711];
/// ImageNet's (VBench `dino_transform`).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// One output position's source taps (indices into the input axis) and weights.
struct Taps {
    index: Vec<[usize; 4]>,
    weight: Vec<[f32; 4]>,
    /// 2 (bilinear) or 4 (bicubic).
    n: usize,
}

fn cubic1(x: f32) -> f32 {
    const A: f32 = -0.75;
    ((A + 2.0).mul_add(x, -(A + 3.0)) * x) * x + 1.0
}

fn cubic2(x: f32) -> f32 {
    const A: f32 = -0.75;
    let s1 = A.mul_add(x, -(5.0 * A));
    let s2 = s1.mul_add(x, 8.0 * A);
    s2 * x - 4.0 * A
}

/// torch's `area_pixel_compute_scale` (align_corners=False): 1/scale_factor when one was passed,
/// else in/out, in f32.
fn axis_scale(input: usize, output: usize, scale_factor: Option<f64>) -> f32 {
    match scale_factor {
        Some(s) if s > 0.0 => (1.0 / s) as f32,
        _ => input as f32 / output as f32,
    }
}

fn taps(input: usize, output: usize, filter: Filter, scale_factor: Option<f64>) -> Taps {
    let scale = axis_scale(input, output, scale_factor);
    let last = input as i64 - 1;
    let mut t = Taps { index: Vec::with_capacity(output), weight: Vec::with_capacity(output), n: 2 };
    for i in 0..output {
        match filter {
            Filter::Bilinear => {
                if input == output {
                    t.index.push([i, i, 0, 0]);
                    t.weight.push([1.0, 0.0, 0.0, 0.0]);
                    continue;
                }
                let src = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
                let i0 = (src.floor() as i64).min(last);
                let i1 = if i0 < last { i0 + 1 } else { i0 };
                let l1 = (src - i0 as f32).clamp(0.0, 1.0);
                t.index.push([i0 as usize, i1 as usize, 0, 0]);
                t.weight.push([1.0 - l1, l1, 0.0, 0.0]);
            }
            Filter::Bicubic => {
                t.n = 4;
                let src = scale.mul_add(i as f32 + 0.5, -0.5);
                let i0 = (src.floor() as i64).min(last);
                let x = (src - i0 as f32).clamp(0.0, 1.0);
                let x2 = 1.0 - x;
                t.weight.push([cubic2(x + 1.0), cubic1(x), cubic1(x2), cubic2(x2 + 1.0)]);
                let at = |j: i64| (i0 - 1 + j).clamp(0, last) as usize;
                t.index.push([at(0), at(1), at(2), at(3)]);
            }
        }
    }
    t
}

/// torch's combination of n weighted taps: fma(v0, w0, v1·w1), then fma(vj, wj, acc).
#[inline]
fn combine(n: usize, v: impl Fn(usize) -> f32, w: &[f32; 4]) -> f32 {
    let mut acc = v(0).mul_add(w[0], v(1) * w[1]);
    for (j, &wj) in w.iter().enumerate().take(n).skip(2) {
        acc = v(j).mul_add(wj, acc);
    }
    acc
}

fn resample(planes: &[f32], count: usize, (h, w): (usize, usize), (oh, ow): (usize, usize), ty: &Taps, tx: &Taps) -> Vec<f32> {
    let mut out = vec![0f32; count * oh * ow];
    for p in 0..count {
        let src = &planes[p * h * w..(p + 1) * h * w];
        let dst = &mut out[p * oh * ow..(p + 1) * oh * ow];
        for oy in 0..oh {
            let (iy, wy) = (&ty.index[oy], &ty.weight[oy]);
            for ox in 0..ow {
                let (ix, wx) = (&tx.index[ox], &tx.weight[ox]);
                let row = |j: usize| {
                    let r = &src[iy[j] * w..];
                    combine(tx.n, |k| r[ix[k]], wx)
                };
                dst[oy * ow + ox] = combine(ty.n, row, wy);
            }
        }
    }
    out
}

fn check(planes: &[f32], count: usize, h: usize, w: usize, oh: usize, ow: usize) -> Result<()> {
    if planes.len() != count * h * w || h == 0 || w == 0 || oh == 0 || ow == 0 {
        return Err(Error::Other(format!("vbench resize: {} values are not {count} planes of {h}×{w} (to {oh}×{ow})", planes.len())));
    }
    Ok(())
}

/// `F.interpolate(x, size=(oh, ow), mode, align_corners=False, antialias=False)` of `count`
/// planes (h, w), channels first.
pub fn interpolate(planes: &[f32], count: usize, h: usize, w: usize, oh: usize, ow: usize, filter: Filter) -> Result<Vec<f32>> {
    check(planes, count, h, w, oh, ow)?;
    Ok(resample(planes, count, (h, w), (oh, ow), &taps(h, oh, filter, None), &taps(w, ow, filter, None)))
}

/// `F.interpolate(x, scale_factor=(sh, sw), mode, align_corners=False)` with
/// `recompute_scale_factor` unset: output floor(h·sh) × floor(w·sw), and the source coordinates
/// mapped with 1/scale_factor rather than in/out (DINO's position-embedding resize).
pub fn interpolate_scale(planes: &[f32], count: usize, h: usize, w: usize, (sh, sw): (f64, f64), filter: Filter) -> Result<Vec<f32>> {
    let (oh, ow) = ((h as f64 * sh).floor() as usize, (w as f64 * sw).floor() as usize);
    check(planes, count, h, w, oh, ow)?;
    Ok(resample(planes, count, (h, w), (oh, ow), &taps(h, oh, filter, Some(sh)), &taps(w, ow, filter, Some(sw))))
}

/// torchvision `Resize(n)`'s output size (`_compute_resized_output_size`, one size given): the
/// shorter side becomes `n`, the longer `int(n·long/short)` (truncated). (height, width).
pub fn shorter_side_size(h: usize, w: usize, n: usize) -> (usize, usize) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((n * long) as f64 / short as f64) as usize;
    if w <= h {
        (new_long, n)
    } else {
        (n, new_long)
    }
}

/// Python's `round` (half to even) of `x / 2` for a non-negative integer difference.
fn round_half_even_half(x: usize) -> usize {
    let (q, r) = (x / 2, x % 2);
    // x/2 has fraction .5 exactly when x is odd: round to the even of q and q+1.
    if r == 1 && q % 2 == 1 {
        q + 1
    } else {
        q
    }
}

/// torchvision `CenterCrop`'s (top, left): int(round((H − h)/2)), int(round((W − w)/2)).
pub fn center_crop_offsets(h: usize, w: usize, ch: usize, cw: usize) -> (usize, usize) {
    (round_half_even_half(h.saturating_sub(ch)), round_half_even_half(w.saturating_sub(cw)))
}

/// 8-bit RGB frames (T, H, W, 3) as VBench's `load_video` returns them: float32 (T, 3, H, W).
pub fn frames_from_rgb(rgb: &[u8], t: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; t * 3 * h * w];
    for f in 0..t {
        for (i, px) in rgb[f * h * w * 3..(f + 1) * h * w * 3].chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[(f * 3 + c) * h * w + i] = px[c] as f32;
            }
        }
    }
    out
}

/// `x / 255` then `(x − mean) / std` per channel, in place (torch's f32 arithmetic).
fn normalise(x: &mut [f32], planes: usize, mean: &[f32; 3], std: &[f32; 3]) {
    let n = x.len() / planes.max(1);
    for (p, plane) in x.chunks_exact_mut(n).enumerate() {
        let (m, s) = (mean[p % 3], std[p % 3]);
        plane.iter_mut().for_each(|v| *v = (*v / 255.0 - m) / s);
    }
}

/// Preprocessed frames: (T, 3, height, width) f32.
#[derive(Debug, Clone)]
pub struct Pixels {
    pub data: Vec<f32>,
    pub frames: usize,
    pub height: usize,
    pub width: usize,
}

/// VBench `clip_transform(n_px)` of float frames (T, 3, H, W) 0..255: bicubic shorter side to
/// `n_px`, centre crop n_px², /255, CLIP mean/std.
pub fn clip_transform(frames: &[f32], t: usize, h: usize, w: usize, n_px: usize) -> Result<Pixels> {
    let (rh, rw) = shorter_side_size(h, w, n_px);
    let resized = if (rh, rw) == (h, w) { frames.to_vec() } else { interpolate(frames, t * 3, h, w, rh, rw, Filter::Bicubic)? };
    let (top, left) = center_crop_offsets(rh, rw, n_px, n_px);
    let mut data = Vec::with_capacity(t * 3 * n_px * n_px);
    for p in 0..t * 3 {
        for y in 0..n_px {
            data.extend_from_slice(&resized[(p * rh + top + y) * rw + left..][..n_px]);
        }
    }
    normalise(&mut data, t * 3, &CLIP_MEAN, &CLIP_STD);
    Ok(Pixels { data, frames: t, height: n_px, width: n_px })
}

/// VBench `dino_transform(n_px)` of float frames (T, 3, H, W) 0..255: bilinear shorter side to
/// `n_px` (no crop: the frame keeps its aspect ratio), /255, ImageNet mean/std.
pub fn dino_transform(frames: &[f32], t: usize, h: usize, w: usize, n_px: usize) -> Result<Pixels> {
    let (rh, rw) = shorter_side_size(h, w, n_px);
    let mut data = if (rh, rw) == (h, w) { frames.to_vec() } else { interpolate(frames, t * 3, h, w, rh, rw, Filter::Bilinear)? };
    normalise(&mut data, t * 3, &IMAGENET_MEAN, &IMAGENET_STD);
    Ok(Pixels { data, frames: t, height: rh, width: rw })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_rule_and_crop_offsets_follow_torchvision() {
        // VBENCH.md §2's examples: 1280×720 → 398×224, 832×480 → 388×224, 256² → 224².
        assert_eq!(shorter_side_size(720, 1280, 224), (224, 398));
        assert_eq!(shorter_side_size(480, 832, 224), (224, 388));
        assert_eq!(shorter_side_size(256, 256, 224), (224, 224));
        assert_eq!(shorter_side_size(1280, 720, 224), (398, 224));
        // round((398 − 224)/2) = 87; round(0.5) = 0, round(1.5) = 2, round(2.5) = 2 (half-even).
        assert_eq!(center_crop_offsets(224, 398, 224, 224), (0, 87));
        assert_eq!(center_crop_offsets(225, 227, 224, 224), (0, 2));
        assert_eq!(center_crop_offsets(229, 224, 224, 224), (2, 0));
    }
}
