//! Plain CPU references (f64 accumulation) shared by the kernel tests: the specification.
#![allow(dead_code)]

pub fn cpu_linear(x: &[f32], w: &[f32], b: Option<&[f32]>, m: usize, n: usize, k: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = b.map_or(0.0, |b| b[j] as f64);
            for t in 0..k {
                s += x[i * k + t] as f64 * w[j * k + t] as f64;
            }
            out[i * n + j] = s;
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
pub fn cpu_conv2d(x: &[f32], w: &[f32], b: Option<&[f32]>, n: usize, cin: usize, h: usize, wd: usize, cout: usize, k: usize, s: usize, pad: usize) -> (Vec<f64>, usize, usize) {
    let oh = (h + 2 * pad - k) / s + 1;
    let ow = (wd + 2 * pad - k) / s + 1;
    let mut y = vec![0.0f64; n * cout * oh * ow];
    for img in 0..n {
        for co in 0..cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b.map_or(0.0, |b| b[co] as f64);
                    for ci in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as isize - pad as isize;
                                let ix = (ox * s + kx) as isize - pad as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xv = x[((img * cin + ci) * h + iy as usize) * wd + ix as usize] as f64;
                                acc += xv * w[((co * cin + ci) * k + ky) * k + kx] as f64;
                            }
                        }
                    }
                    y[((img * cout + co) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    (y, oh, ow)
}

/// Reference over PyTorch's (B, C, F, S) layout; `x`/`y` are in that layout.
#[allow(clippy::too_many_arguments)]
pub fn cpu_conv_temporal(x: &[f32], w: &[f32], b: &[f32], bs: usize, cin: usize, f: usize, s: usize, cout: usize) -> Vec<f64> {
    let mut y = vec![0.0f64; bs * cout * f * s];
    for bi in 0..bs {
        for co in 0..cout {
            for fi in 0..f {
                for si in 0..s {
                    let mut acc = b[co] as f64;
                    for ci in 0..cin {
                        for dt in 0..3 {
                            let ff = fi as isize + dt as isize - 1;
                            if ff < 0 || ff >= f as isize {
                                continue;
                            }
                            acc += x[((bi * cin + ci) * f + ff as usize) * s + si] as f64 * w[(co * cin + ci) * 3 + dt] as f64;
                        }
                    }
                    y[((bi * cout + co) * f + fi) * s + si] = acc;
                }
            }
        }
    }
    y
}

/// (B, C, F, S) → (B, F, C, S) on the CPU, to feed the folded layout.
pub fn fold<T: Copy>(v: &[T], bs: usize, c: usize, f: usize, s: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(v.len());
    for bi in 0..bs {
        for fi in 0..f {
            for ci in 0..c {
                out.extend_from_slice(&v[((bi * c + ci) * f + fi) * s..][..s]);
            }
        }
    }
    out
}

/// torch's `F.scaled_dot_product_attention` on [B, L, H·D] tensors, for batches `bs` only;
/// f64 throughout, softmax by the textbook (max-subtracted) formula.
#[allow(clippy::too_many_arguments)]
pub fn cpu_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    bs: &[usize],
    lq: usize,
    lk: usize,
    h: usize,
    d: usize,
    causal: bool,
    scale: f64,
) -> Vec<f64> {
    let hd = h * d;
    let mut out = Vec::with_capacity(bs.len() * lq * hd);
    let mut s = vec![0.0f64; lk];
    for &b in bs {
        for i in 0..lq {
            let mut row = vec![0.0f64; hd];
            for hh in 0..h {
                let qi = &q[(b * lq + i) * hd + hh * d..][..d];
                let visible = if causal { (i + 1).min(lk) } else { lk };
                for (j, sj) in s.iter_mut().enumerate().take(visible) {
                    let kj = &k[(b * lk + j) * hd + hh * d..][..d];
                    *sj = qi.iter().zip(kj).map(|(&a, &c)| a as f64 * c as f64).sum::<f64>() * scale;
                }
                let mx = s[..visible].iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for sj in &mut s[..visible] {
                    *sj = (*sj - mx).exp();
                    sum += *sj;
                }
                for (j, &pj) in s[..visible].iter().enumerate() {
                    let vj = &v[(b * lk + j) * hd + hh * d..][..d];
                    for (o, &x) in row[hh * d..(hh + 1) * d].iter_mut().zip(vj) {
                        *o += pj / sum * x as f64;
                    }
                }
            }
            out.extend(row);
        }
    }
    out
}

/// torch's `grid_sample(x, grid, mode="nearest", padding_mode="reflection",
/// align_corners=False)`, as GridSampler.h computes it (float32 coordinates): x (N, C, H, W),
/// grid (N, Ho, Wo, 2) → (N, C, Ho, Wo).
#[allow(clippy::too_many_arguments)]
pub fn cpu_grid_sample_nearest_reflection(x: &[f32], grid: &[f32], n: usize, c: usize, h: usize, w: usize, oh: usize, ow: usize) -> Vec<f64> {
    // grid_sampler_compute_source_index: unnormalize, reflect_coordinates(-1, 2·size − 1),
    // clip_coordinates; then nearbyint (half to even).
    let index = |g: f32, size: usize| -> usize {
        let coord = ((g + 1.0) * size as f32 - 1.0) / 2.0;
        let (min, span) = (-0.5f32, size as f32);
        let a = (coord - min).abs();
        let extra = a % span;
        let flips = (a / span).floor() as i64;
        let r = if flips % 2 == 0 { extra + min } else { span - extra + min };
        r.clamp(0.0, (size - 1) as f32).round_ties_even() as usize
    };
    let mut y = vec![0.0f64; n * c * oh * ow];
    for img in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                let g = ((img * oh + oy) * ow + ox) * 2;
                let (ix, iy) = (index(grid[g], w), index(grid[g + 1], h));
                for ch in 0..c {
                    y[((img * c + ch) * oh + oy) * ow + ox] = x[((img * c + ch) * h + iy) * w + ix] as f64;
                }
            }
        }
    }
    y
}
