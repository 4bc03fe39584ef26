//! transformers' `CLIPImageProcessor` (the PIL path, `CLIPImageProcessorPil` in transformers 5)
//! on 8-bit RGB frames: shortest edge → `size` with PIL's bicubic resampling, centre crop,
//! rescale, normalise. The resize is Pillow's own algorithm (`libImaging/Resample.c`), integer
//! for integer: separable (horizontal pass, then vertical), the filter's support widened by the
//! scale when shrinking (antialiasing), coefficients in 22-bit fixed point, each pass rounded
//! and clipped to 8 bits. So the resized pixels equal PIL's exactly, and the floats after
//! rescale/normalise equal transformers' (the same f64 → f32 → f32 arithmetic).

use super::config::PreprocessConfig;
use crate::error::{Error, Result};

/// Pillow's `PRECISION_BITS` for 8-bit images: 32 − 8 − 2.
const PRECISION_BITS: u32 = 22;

/// Pillow's bicubic kernel with a = −0.5 (support 2).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for resizing `in_size` → `out_size`
/// over the whole input (box 0..in_size): per output pixel the first input pixel and the
/// fixed-point weights.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    k: Vec<i32>,
}

fn coeffs(in_size: usize, out_size: usize) -> Coeffs {
    let support_unit = 2.0;
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = support_unit * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut k = vec![0i32; out_size * ksize];
    let mut w = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) truncates toward zero; center − support + 0.5 can be negative.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize - xmin;
        let mut ww = 0.0;
        for (x, wx) in w.iter_mut().enumerate().take(xmax) {
            let v = bicubic((x as f64 + xmin as f64 - center + 0.5) * ss);
            *wx = v;
            ww += v;
        }
        for x in 0..xmax {
            let v = if ww != 0.0 { w[x] / ww } else { w[x] };
            let f = v * (1u32 << PRECISION_BITS) as f64;
            k[xx * ksize + x] = if v < 0.0 { (-0.5 + f) as i32 } else { (0.5 + f) as i32 };
        }
        bounds.push((xmin, xmax));
    }
    Coeffs { bounds, ksize, k }
}

fn clip8(v: i64) -> u8 {
    if v >= (1i64 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// `PIL.Image.resize((out_w, out_h), Image.BICUBIC)` of an RGB image (H, W, 3) u8.
pub fn resize_bicubic(rgb: &[u8], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<u8> {
    if (h, w) == (out_h, out_w) {
        return rgb.to_vec();
    }
    let half = 1i64 << (PRECISION_BITS - 1);
    let cv = coeffs(h, out_h);
    // Rows the vertical pass reads: the horizontal pass resizes only those (Pillow's ybox).
    let (y_first, y_last) = (cv.bounds[0].0, cv.bounds[out_h - 1].0 + cv.bounds[out_h - 1].1);
    let (src, rows, width) = if out_w != w {
        let ch = coeffs(w, out_w);
        let rows = y_last - y_first;
        let mut tmp = vec![0u8; rows * out_w * 3];
        for y in 0..rows {
            let line = &rgb[(y + y_first) * w * 3..(y + y_first + 1) * w * 3];
            for xx in 0..out_w {
                let (xmin, xmax) = ch.bounds[xx];
                let k = &ch.k[xx * ch.ksize..xx * ch.ksize + xmax];
                for c in 0..3 {
                    let mut ss = half;
                    for (x, &kx) in k.iter().enumerate() {
                        ss += line[(x + xmin) * 3 + c] as i64 * kx as i64;
                    }
                    tmp[(y * out_w + xx) * 3 + c] = clip8(ss);
                }
            }
        }
        (tmp, rows, out_w)
    } else {
        (rgb[y_first * w * 3..y_last * w * 3].to_vec(), y_last - y_first, w)
    };
    if out_h == h && y_first == 0 && rows == h {
        return src;
    }
    let mut out = vec![0u8; out_h * width * 3];
    for yy in 0..out_h {
        let (ymin, ymax) = cv.bounds[yy];
        let ymin = ymin - y_first;
        let k = &cv.k[yy * cv.ksize..yy * cv.ksize + ymax];
        for xx in 0..width {
            for c in 0..3 {
                let mut ss = half;
                for (y, &ky) in k.iter().enumerate() {
                    ss += src[((y + ymin) * width + xx) * 3 + c] as i64 * ky as i64;
                }
                out[(yy * width + xx) * 3 + c] = clip8(ss);
            }
        }
    }
    out
}

/// transformers' `get_resize_output_image_size(default_to_square=False)`: the short side
/// becomes `size`, the long side `int(size * long / short)`. Returns (height, width).
pub fn shortest_edge_size(h: usize, w: usize, size: usize) -> (usize, usize) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (size * long) as f64 / short as f64;
    let new_long = new_long as usize;
    if w <= h {
        (new_long, size)
    } else {
        (size, new_long)
    }
}

/// transformers' `center_crop` of (H, W, 3) u8 to (ch, cw): offsets `(H − ch) // 2` (Python
/// floor division); an image smaller than the crop is first zero-padded, centred with
/// `ceil` of half the padding, as transformers does.
pub fn center_crop(rgb: &[u8], h: usize, w: usize, ch: usize, cw: usize) -> Vec<u8> {
    let (nh, nw) = (h.max(ch), w.max(cw));
    let (pt, pl) = ((nh - h).div_ceil(2), (nw - w).div_ceil(2));
    let top = (h as i64 - ch as i64).div_euclid(2) + pt as i64;
    let left = (w as i64 - cw as i64).div_euclid(2) + pl as i64;
    let mut out = vec![0u8; ch * cw * 3];
    for y in 0..ch {
        for x in 0..cw {
            // Position in the padded image, then in the original.
            let (py, px) = (y as i64 + top, x as i64 + left);
            let (oy, ox) = (py - pt as i64, px - pl as i64);
            if oy >= 0 && ox >= 0 && (oy as usize) < h && (ox as usize) < w {
                let s = (oy as usize * w + ox as usize) * 3;
                out[(y * cw + x) * 3..(y * cw + x) * 3 + 3].copy_from_slice(&rgb[s..s + 3]);
            }
        }
    }
    out
}

/// The 8-bit image after resize and crop, (H', W', 3) — what PIL and transformers hold before
/// rescaling.
pub fn resize_and_crop(c: &PreprocessConfig, rgb: &[u8], h: usize, w: usize) -> Result<(Vec<u8>, usize, usize)> {
    if h == 0 || w == 0 || rgb.len() != h * w * 3 {
        return Err(Error::Other(format!("clip preprocessing: {} bytes is not a {w}×{h} RGB image", rgb.len())));
    }
    let (mut img, mut h, mut w) = (rgb.to_vec(), h, w);
    if c.do_resize {
        let (nh, nw) = shortest_edge_size(h, w, c.shortest_edge);
        img = resize_bicubic(&img, h, w, nh, nw);
        (h, w) = (nh, nw);
    }
    if c.do_center_crop {
        img = center_crop(&img, h, w, c.crop.0, c.crop.1);
        (h, w) = c.crop;
    }
    Ok((img, h, w))
}

/// `pixel_values` of one frame: (3, H', W') f32, channels first, as transformers returns them.
pub fn preprocess(c: &PreprocessConfig, rgb: &[u8], h: usize, w: usize) -> Result<(Vec<f32>, usize, usize)> {
    let (img, h, w) = resize_and_crop(c, rgb, h, w)?;
    let plane = h * w;
    let mut out = vec![0f32; 3 * plane];
    for p in 0..plane {
        for ch in 0..3 {
            // rescale: f64(u8) · factor → f32; normalize: (x − mean) / std in f32.
            let mut x = if c.do_rescale { (img[p * 3 + ch] as f64 * c.rescale_factor) as f32 } else { img[p * 3 + ch] as f32 };
            if c.do_normalize {
                x = (x - c.mean[ch]) / c.std[ch];
            }
            out[ch * plane + p] = x;
        }
    }
    Ok((out, h, w))
}
