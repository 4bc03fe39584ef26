//! PIL's `Image.resize(size)` for 8-bit RGB images, bit for bit: the default resample for RGB
//! is BICUBIC (a = −0.5), done as Pillow's `Resample.c` does it — a horizontal pass, then a
//! vertical one, each with the filter's support widened by the scale when shrinking
//! (antialiasing), coefficients normalised per output pixel and rounded to 22-bit fixed point,
//! and the intermediate image rounded and clipped to u8. This is the resize the Zeroscope card's
//! upscale recipe does (`Image.fromarray(frame).resize((1024, 576))`), so frames given to t2v
//! at another size reach the VAE exactly as they reach diffusers.
//! tests/video_input.rs compares with PIL on up-, down- and mixed resizes.

const PRECISION_BITS: u32 = 32 - 8 - 2;

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

/// Per output pixel: the first input index and the fixed-point weights (`precompute_coeffs`
/// then `normalize_coeffs_8bpc`).
fn coeffs(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize; // C's (int) truncates
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax.max(xmin)).map(|x| bicubic((x as f64 - center + 0.5) * ss)).collect();
            let sum: f64 = w.iter().sum();
            let fixed = w
                .iter()
                .map(|&k| {
                    let k = if sum != 0.0 { k / sum } else { k };
                    let v = k * (1u32 << PRECISION_BITS) as f64;
                    (if v < 0.0 { v - 0.5 } else { v + 0.5 }) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an (H, W, 3) u8 image to (oh, ow, 3). Sizes must be non-zero (checked by callers).
pub fn resize_bicubic(rgb: &[u8], h: usize, w: usize, oh: usize, ow: usize) -> Vec<u8> {
    if (h, w) == (oh, ow) {
        return rgb.to_vec();
    }
    // Horizontal pass (skipped when the width is unchanged, as Pillow does).
    let (tmp, tw) = if ow != w {
        let k = coeffs(w, ow);
        let mut out = vec![0u8; h * ow * 3];
        for y in 0..h {
            for (x, (x0, ws)) in k.iter().enumerate() {
                for c in 0..3 {
                    let mut acc = 1i32 << (PRECISION_BITS - 1);
                    for (i, &wt) in ws.iter().enumerate() {
                        acc = acc.wrapping_add(rgb[(y * w + x0 + i) * 3 + c] as i32 * wt);
                    }
                    out[(y * ow + x) * 3 + c] = clip8(acc);
                }
            }
        }
        (out, ow)
    } else {
        (rgb.to_vec(), w)
    };
    if oh == h {
        return tmp;
    }
    let k = coeffs(h, oh);
    let mut out = vec![0u8; oh * tw * 3];
    for (y, (y0, ws)) in k.iter().enumerate() {
        for x in 0..tw {
            for c in 0..3 {
                let mut acc = 1i32 << (PRECISION_BITS - 1);
                for (i, &wt) in ws.iter().enumerate() {
                    acc = acc.wrapping_add(tmp[((y0 + i) * tw + x) * 3 + c] as i32 * wt);
                }
                out[(y * tw + x) * 3 + c] = clip8(acc);
            }
        }
    }
    out
}
