//! RAFT's kernels against plain CPU loops (f64): rectangular conv2d (the GRU's 1×5 / 5×1, the
//! encoders' 7×7 stride 2), ReLU / tanh / sigmoid, the SepConvGRU gates, the correlation
//! pyramid's average pool and bilinear window lookup, and the convex 8× upsampling — at
//! awkward sizes (odd planes, coordinates outside the plane, non-integer centres).

mod common;
use common::*;
use t2v::ops::conv2d::{conv2d, conv2d_rect};
use t2v::ops::corr::{corr_lookup, corr_pool};
use t2v::ops::elementwise::{relu, sigmoid, tanh};
use t2v::ops::flow_upsample::convex_upsample;
use t2v::ops::gru::{gru_reset, gru_update};

#[allow(clippy::too_many_arguments)]
fn cpu_conv(x: &[f32], w: &[f32], b: &[f32], n: usize, cin: usize, h: usize, wd: usize, cout: usize, kh: usize, kw: usize, s: usize, ph: usize, pw: usize) -> (Vec<f64>, usize, usize) {
    let oh = (h + 2 * ph - kh) / s + 1;
    let ow = (wd + 2 * pw - kw) / s + 1;
    let mut y = vec![0f64; n * cout * oh * ow];
    for i in 0..n {
        for co in 0..cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = b[co] as f64;
                    for ci in 0..cin {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let (iy, ix) = ((oy * s + ky) as isize - ph as isize, (ox * s + kx) as isize - pw as isize);
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    acc += x[((i * cin + ci) * h + iy as usize) * wd + ix as usize] as f64 * w[((co * cin + ci) * kh + ky) * kw + kx] as f64;
                                }
                            }
                        }
                    }
                    y[((i * cout + co) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    (y, oh, ow)
}

#[test]
fn conv2d_rectangular_and_7x7() {
    // (n, cin, h, w, cout, kh, kw, stride, pad_h, pad_w): the GRU's (1,5)/(5,1), RAFT's 7×7 s2 p3
    // encoder stem and convf1 (2 → C, 7×7 p3), on odd planes.
    for (i, &(n, cin, h, w, cout, kh, kw, s, ph, pw)) in [
        (1, 24, 9, 13, 8, 1, 5, 1, 0, 2),
        (2, 19, 11, 7, 10, 5, 1, 1, 2, 0),
        (2, 3, 23, 17, 9, 7, 7, 2, 3, 3),
        (1, 2, 5, 6, 12, 7, 7, 1, 3, 3),
    ]
    .iter()
    .enumerate()
    {
        let mut r = Rng::new(40 + i as u64);
        let x = r.normals(n * cin * h * w, 1.0);
        let wt = r.normals(cout * cin * kh * kw, 1.0 / ((cin * kh * kw) as f32).sqrt());
        let b = r.normals(cout, 0.3);
        let (xt, wtt, bt) = (upload(&[n, cin, h, w], &x), upload(&[cout, cin, kh, kw], &wt), upload(&[cout], &b));
        let y = if kh == kw { conv2d(&xt, &wtt, Some(&bt), s, ph).unwrap() } else { conv2d_rect(&xt, &wtt, Some(&bt), s, [ph, pw]).unwrap() };
        let (want, oh, ow) = cpu_conv(&x, &wt, &b, n, cin, h, w, cout, kh, kw, s, ph, pw);
        assert_eq!(y.shape(), &[n, cout, oh, ow]);
        assert_close(&format!("conv2d {kh}x{kw} s{s} {cin}->{cout} {h}x{w}"), &y.to_f32().unwrap(), &want, 1e-5);
    }
}

#[test]
fn activations_and_gru_gates() {
    let mut r = Rng::new(50);
    // Values from −40 to 40: tanh/sigmoid saturate without overflow; small ones use the series.
    let mut x = r.normals(3 * 7 * 5 * 11, 3.0);
    x.extend([-40.0, 40.0, 0.0, 1e-4, -0.1, 0.124, 0.126, -20.0]);
    let t = upload(&[x.len()], &x);
    let want = |f: fn(f64) -> f64| x.iter().map(|&v| f(v as f64)).collect::<Vec<f64>>();
    assert_close("relu", &relu(&t).unwrap().to_f32().unwrap(), &want(|v| v.max(0.0)), 1e-7);
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let (got_t, got_s) = (tanh(&t).unwrap().to_f32().unwrap(), sigmoid(&t).unwrap().to_f32().unwrap());
    assert_close("tanh", &got_t, &want(f64::tanh), 1e-6);
    assert_close("sigmoid", &got_s, &want(sig), 1e-6);
    for (g, v) in got_t.iter().zip(&x) {
        assert!((*g as f64 - (*v as f64).tanh()).abs() <= 3e-7 * (*v as f64).tanh().abs().max(1e-3), "tanh({v}) = {g}");
    }
    // Gates on 2 images of C = 7 channels, 5×11 pixels.
    let (n, c, hw) = (2, 7, 55);
    let zr = r.normals(n * 2 * c * hw, 2.0);
    let h = r.normals(n * c * hw, 1.0);
    let q = r.normals(n * c * hw, 2.0);
    let (zrt, ht, qt) = (upload(&[n, 2 * c, 5, 11], &zr), upload(&[n, c, 5, 11], &h), upload(&[n, c, 5, 11], &q));
    let idx = |i: usize| (i / (c * hw)) * 2 * c * hw + i % (c * hw);
    let want_r: Vec<f64> = (0..h.len()).map(|i| sig(zr[idx(i) + c * hw] as f64) * h[i] as f64).collect();
    let want_h: Vec<f64> = (0..h.len())
        .map(|i| {
            let z = sig(zr[idx(i)] as f64);
            (1.0 - z) * h[i] as f64 + z * (q[i] as f64).tanh()
        })
        .collect();
    assert_close("gru_reset", &gru_reset(&zrt, &ht).unwrap().to_f32().unwrap(), &want_r, 1e-6);
    assert_close("gru_update", &gru_update(&zrt, &ht, &qt).unwrap().to_f32().unwrap(), &want_h, 1e-6);
}

/// torch's `F.grid_sample(align_corners=True)` bilinear with zeros outside, at pixel coords.
fn bilinear(plane: &[f32], h: usize, w: usize, x: f64, y: f64) -> f64 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |yy: f64, xx: f64| if yy >= 0.0 && xx >= 0.0 && yy < h as f64 && xx < w as f64 { plane[yy as usize * w + xx as usize] as f64 } else { 0.0 };
    at(y0, x0) * (1.0 - fy) * (1.0 - fx) + at(y0, x0 + 1.0) * (1.0 - fy) * fx + at(y0 + 1.0, x0) * fy * (1.0 - fx) + at(y0 + 1.0, x0 + 1.0) * fy * fx
}

#[test]
fn correlation_pool_and_lookup() {
    let mut r = Rng::new(60);
    // A 5×7 query frame (35 rows) over a 9×11 second frame (odd: pooling floors to 4×5).
    let (h1, w1, h2, w2) = (5, 7, 9, 11);
    let vol = r.normals(h1 * w1 * h2 * w2, 1.0);
    let vt = upload(&[h1 * w1, h2, w2], &vol);
    let pooled = corr_pool(&vt).unwrap();
    assert_eq!(pooled.shape(), &[h1 * w1, 4, 5]);
    let mut want = vec![0f64; h1 * w1 * 20];
    for q in 0..h1 * w1 {
        for y in 0..4 {
            for x in 0..5 {
                let v = |yy: usize, xx: usize| vol[(q * h2 + yy) * w2 + xx] as f64;
                want[(q * 4 + y) * 5 + x] = (v(2 * y, 2 * x) + v(2 * y, 2 * x + 1) + v(2 * y + 1, 2 * x) + v(2 * y + 1, 2 * x + 1)) / 4.0;
            }
        }
    }
    let pooled_v = pooled.to_f32().unwrap();
    assert_close("corr_pool", &pooled_v, &want, 1e-6);
    // Coordinates: the pixel grid moved by non-integer amounts, some far outside the plane.
    let mut coords = vec![0f32; 2 * h1 * w1];
    for p in 0..h1 * w1 {
        coords[p] = (p % w1) as f32 + 3.0 * r.normal();
        coords[h1 * w1 + p] = (p / w1) as f32 + 3.0 * r.normal();
    }
    coords[3] = 40.0;
    coords[h1 * w1 + 4] = -12.5;
    let ct = upload(&[2, h1, w1], &coords);
    let radius = 4;
    let taps = 81;
    let out = t2v::Tensor::zeros(ct.gpu(), &[2 * taps, h1, w1], t2v::DType::F32).unwrap();
    // Level 0 in two row chunks (as a volume beyond one binding is read), level 1 whole.
    corr_lookup(&vt.narrow0(0, 17).unwrap(), &ct, 0, 0, radius, &out).unwrap();
    corr_lookup(&vt.narrow0(17, h1 * w1 - 17).unwrap(), &ct, 17, 0, radius, &out).unwrap();
    corr_lookup(&pooled, &ct, 0, 1, radius, &out).unwrap();
    let mut want = vec![0f64; 2 * taps * h1 * w1];
    for (lvl, (plane, ph, pw)) in [(&vol, h2, w2), (&pooled_v, 4, 5)].into_iter().enumerate() {
        for p in 0..h1 * w1 {
            let (cx, cy) = (coords[p] as f64 / (1 << lvl) as f64, coords[h1 * w1 + p] as f64 / (1 << lvl) as f64);
            for a in 0..9 {
                for b in 0..9 {
                    // Outer index a offsets x, inner b offsets y (RAFT's meshgrid(dy, dx) as (x, y)).
                    let v = bilinear(&plane[p * ph * pw..(p + 1) * ph * pw], ph, pw, cx + a as f64 - 4.0, cy + b as f64 - 4.0);
                    want[((lvl * taps) + a * 9 + b) * h1 * w1 + p] = v;
                }
            }
        }
    }
    assert_close("corr_lookup", &out.to_f32().unwrap(), &want, 1e-5);
}

#[test]
fn convex_upsampling() {
    let mut r = Rng::new(70);
    let (h, w) = (3, 5);
    let flow = r.normals(2 * h * w, 2.0);
    let mask = r.normals(576 * h * w, 3.0);
    let y = convex_upsample(&upload(&[1, 2, h, w], &flow), &upload(&[1, 576, h, w], &mask)).unwrap();
    assert_eq!(y.shape(), &[1, 2, 8 * h, 8 * w]);
    let mut want = vec![0f64; 2 * 64 * h * w];
    for py in 0..h {
        for px in 0..w {
            for dy in 0..8 {
                for dx in 0..8 {
                    let m: Vec<f64> = (0..9).map(|k| mask[(k * 64 + dy * 8 + dx) * h * w + py * w + px] as f64).collect();
                    let mx = m.iter().cloned().fold(f64::MIN, f64::max);
                    let sum: f64 = m.iter().map(|v| (v - mx).exp()).sum();
                    for c in 0..2 {
                        let mut acc = 0.0;
                        for k in 0..9 {
                            let (yy, xx) = (py as isize + (k / 3) as isize - 1, px as isize + (k % 3) as isize - 1);
                            if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                                acc += (m[k] - mx).exp() / sum * 8.0 * flow[c * h * w + yy as usize * w + xx as usize] as f64;
                            }
                        }
                        want[(c * 8 * h + py * 8 + dy) * 8 * w + px * 8 + dx] = acc;
                    }
                }
            }
        }
    }
    assert_close("convex_upsample", &y.to_f32().unwrap(), &want, 1e-6);
}
