//! The direct causal 3-D convolution (src/ops/conv3d.rs) against a plain CPU Conv3d over the
//! zero-padded frame stream [zeros ‖ cached ‖ new], as diffusers' WanCausalConv3d computes it.

mod common;

use common::{assert_close, gpu, round_f16, upload, Rng};
use t2v::ops::conv3d::{conv3d_causal, store_f16};
use t2v::Tensor;

/// Conv3d, stride 1, over `stream` (T frames of [cin, h, w]) with `pad_t` zero frames in front
/// and KS/2 zero pixels around; output the last T + pad_t − kt + 1 frames.
#[allow(clippy::too_many_arguments)]
fn cpu_causal_conv3d(stream: &[f32], t: usize, pad_t: usize, cin: usize, h: usize, wd: usize, w: &[f32], b: Option<&[f32]>, cout: usize, kt: usize, ks: usize) -> Vec<f64> {
    let plane = h * wd;
    let frames_out = t + pad_t + 1 - kt;
    let p = (ks / 2) as isize;
    let mut y = vec![0.0f64; frames_out * cout * plane];
    for j in 0..frames_out {
        for co in 0..cout {
            let out = &mut y[(j * cout + co) * plane..(j * cout + co + 1) * plane];
            out.iter_mut().for_each(|v| *v = b.map_or(0.0, |b| b[co] as f64));
            for dt in 0..kt {
                let q = j + dt;
                if q < pad_t {
                    continue;
                }
                let fr = q - pad_t;
                for ci in 0..cin {
                    let xin = &stream[(fr * cin + ci) * plane..(fr * cin + ci + 1) * plane];
                    for ky in 0..ks {
                        for kx in 0..ks {
                            let wv = w[(((co * cin + ci) * kt + dt) * ks + ky) * ks + kx] as f64;
                            for oy in 0..h {
                                let iy = oy as isize + ky as isize - p;
                                if iy < 0 || iy >= h as isize {
                                    continue;
                                }
                                for ox in 0..wd {
                                    let ix = ox as isize + kx as isize - p;
                                    if ix < 0 || ix >= wd as isize {
                                        continue;
                                    }
                                    out[oy * wd + ox] += wv * xin[iy as usize * wd + ix as usize] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

#[allow(clippy::too_many_arguments)]
fn check(f: usize, cached: usize, cin: usize, cout: usize, h: usize, wd: usize, kt: usize, ks: usize, f16w: bool, with_bias: bool, clamp: bool, seed: u64) {
    let mut r = Rng::new(seed);
    let plane = h * wd;
    let cache = r.normals(cached * cin * plane, 1.0);
    let x = r.normals(f * cin * plane, 1.0);
    let mut w = r.normals(cout * cin * kt * ks * ks, 1.0 / ((cin * kt * ks * ks) as f32).sqrt());
    if f16w {
        w = round_f16(&w);
    }
    let b = r.normals(cout, 0.5);
    let g = gpu();
    let wt = if f16w {
        Tensor::from_f32_as_f16(&g, &[cout, cin, kt, ks, ks], &w).unwrap()
    } else {
        upload(&[cout, cin, kt, ks, ks], &w)
    };
    // Cached frames live in their own tensor, out of order, to show they are read as views.
    let ct = upload(&[cached + 1, cin, h, wd], &[vec![0.0; cin * plane], cache.clone()].concat());
    let views: Vec<Tensor> = (0..cached).map(|i| ct.narrow0(1 + i, 1).unwrap()).collect();
    let prev: Vec<&Tensor> = views.iter().collect();
    let bt = upload(&[cout], &b);
    let y = conv3d_causal(&upload(&[f, cin, h, wd], &x), &prev, &wt, with_bias.then_some(&bt), clamp).unwrap();
    assert_eq!(y.shape(), &[f, cout, h, wd]);
    let (stream, pad_t) = if kt == 1 { (x.clone(), 0) } else { ([cache, x].concat(), kt - 1 - cached) };
    let t = stream.len() / (cin * plane);
    let mut want = cpu_causal_conv3d(&stream, t, pad_t, cin, h, wd, &w, with_bias.then_some(&b[..]), cout, kt, ks);
    if kt == 1 {
        want = want[want.len() - f * cout * plane..].to_vec();
    }
    if clamp {
        want.iter_mut().for_each(|v| *v = v.clamp(-1.0, 1.0));
    }
    let tol = 1e-5;
    assert_close(&format!("conv3d k=({kt},{ks},{ks}) F={f} cached={cached} {cin}→{cout} {h}×{wd} f16={f16w}"), &y.to_f32().unwrap(), &want, tol);
}

#[test]
fn conv3d_333_every_cache_depth() {
    for (cached, seed) in [(0, 1), (1, 2), (2, 3)] {
        check(3, cached, 5, 11, 7, 9, 3, 3, false, true, false, seed);
    }
    // One new frame after two cached ones: the decoder's steady state.
    check(1, 2, 13, 9, 5, 6, 3, 3, true, true, false, 4);
}

#[test]
fn conv3d_311_time_conv_and_111() {
    check(2, 1, 6, 14, 5, 7, 3, 1, true, true, false, 5);
    check(1, 0, 6, 14, 5, 7, 3, 1, false, false, false, 6);
    // A 1-frame kernel ignores the cache (diffusers pads nothing there).
    check(3, 0, 7, 5, 3, 11, 1, 1, false, false, false, 7);
}

#[test]
fn conv3d_bigger_tiles_and_clamp() {
    // 600 pixels per frame: the 512-row register tile with a ragged tail; output clamped.
    check(2, 2, 4, 3, 20, 30, 3, 3, true, true, true, 8);
}

#[test]
fn conv3d_rejects_bad_shapes() {
    let x = upload(&[1, 4, 3, 3], &[0.0; 36]);
    let w = upload(&[2, 4, 3, 3, 3], &[0.0; 216]);
    let e = conv3d_causal(&x, &[], &upload(&[2, 4, 2, 3, 3], &[0.0; 144]), None, false).unwrap_err().to_string();
    assert!(e.contains("(2, 3, 3)"), "{e}");
    let c = upload(&[1, 4, 3, 3], &[0.0; 36]);
    let e = conv3d_causal(&x, &[&c, &c, &c], &w, None, false).unwrap_err().to_string();
    assert!(e.contains("3 cached frames"), "{e}");
    let e = conv3d_causal(&x, &[&upload(&[1, 4, 3, 2], &[0.0; 24])], &w, None, false).unwrap_err().to_string();
    assert!(e.contains("cached frame"), "{e}");
}

#[test]
fn conv3d_frame_larger_than_a_binding() {
    // One 9-channel 2000×1900 frame is 137 MB, over lavapipe's 128 MiB binding: input and
    // output channels are split (bias once, sums over the chunks), the cached frame is its own
    // tap window. The decoder's 96-channel 832×480 frames (153 MB) are the real case.
    let (c, h, w) = (9usize, 2000usize, 1900usize);
    let plane = h * w;
    let mut r = Rng::new(99);
    let cache = r.normals(c * plane, 1.0);
    let x = r.normals(c * plane, 1.0);
    let wt = r.normals(c * c * 3, 0.3);
    let b = r.normals(c, 0.5);
    let ct = upload(&[1, c, h, w], &cache);
    let y = conv3d_causal(&upload(&[1, c, h, w], &x), &[&ct], &upload(&[c, c, 3, 1, 1], &wt), Some(&upload(&[c], &b)), false)
        .unwrap()
        .to_f32()
        .unwrap();
    let want = cpu_causal_conv3d(&[cache, x].concat(), 2, 1, c, h, w, &wt, Some(&b), c, 3, 1);
    assert_close("conv3d (3,1,1), one frame > binding", &y, &want, 1e-5);
}

/// Cached frames stored in f16 (the decoder's 16-bit cache option), read natively and through
/// unpack2x16float; the reference sees the same f16-rounded values.
fn check_f16_cache(g: &std::sync::Arc<t2v::Gpu>, label: &str) {
    let (f, cin, cout, h, wd) = (2usize, 5usize, 7usize, 3usize, 5usize); // odd frame size: 75
    let plane = h * wd;
    for (kt, ks, cached) in [(3, 3, 2), (3, 3, 1), (3, 1, 2)] {
        let mut r = Rng::new(40 + cached as u64 + ks as u64);
        let cache = r.normals(cached * cin * plane, 1.0);
        let x = r.normals(f * cin * plane, 1.0);
        let w = r.normals(cout * cin * kt * ks * ks, 0.3);
        let b = r.normals(cout, 0.5);
        // One f16 buffer with a leading frame, so cached frames start at odd element offsets.
        let ct = Tensor::empty(g, &[cached + 1, cin, h, wd], t2v::DType::F16).unwrap();
        store_f16(&Tensor::from_f32(g, &[cached, cin, h, wd], &cache).unwrap(), &ct.narrow0(1, cached).unwrap()).unwrap();
        let views: Vec<Tensor> = (0..cached).map(|i| ct.narrow0(1 + i, 1).unwrap()).collect();
        let prev: Vec<&Tensor> = views.iter().collect();
        let xt = Tensor::from_f32(g, &[f, cin, h, wd], &x).unwrap();
        let wt = Tensor::from_f32(g, &[cout, cin, kt, ks, ks], &w).unwrap();
        let bt = Tensor::from_f32(g, &[cout], &b).unwrap();
        let y = conv3d_causal(&xt, &prev, &wt, Some(&bt), false).unwrap().to_f32().unwrap();
        let stream = [round_f16(&cache), x].concat();
        let want = cpu_causal_conv3d(&stream, cached + f, 2 - cached, cin, h, wd, &w, Some(&b), cout, kt, ks);
        assert_close(&format!("conv3d f16 cache ({label}) k=({kt},{ks},{ks}) cached={cached}"), &y, &want, 1e-5);
    }
}

#[test]
fn conv3d_reads_f16_cached_frames() {
    check_f16_cache(&gpu(), "native f16");
    let sel = t2v::gpu::AdapterSelector { disable_f16: true, ..t2v::gpu::AdapterSelector::from_env() };
    check_f16_cache(&t2v::Gpu::new(&sel).unwrap(), "unpack2x16float");
}

#[test]
fn store_f16_keeps_neighbouring_halves() {
    // Frames of 3·5·7 = 105 elements (odd): writing frame 1 shares a word with frames 0 and 2.
    let g = gpu();
    let n = 105;
    let mut r = Rng::new(50);
    let all = r.normals(3 * n, 1.0);
    let t = Tensor::from_f32_as_f16(&g, &[3, 3, 5, 7], &all).unwrap();
    let new = r.normals(n, 1.0);
    store_f16(&upload(&[1, 3, 5, 7], &new), &t.narrow0(1, 1).unwrap()).unwrap();
    let got = t.to_f32().unwrap();
    let want = [round_f16(&all[..n]), round_f16(&new), round_f16(&all[2 * n..])].concat();
    assert_eq!(got, want);
}
