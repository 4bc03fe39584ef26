//! WanRMS_norm over channels (src/ops/channel_norm.rs) against a plain CPU
//! `F.normalize(x, dim=1) · √C · γ` (+ SiLU).

mod common;

use common::{assert_close, upload, Rng};
use t2v::ops::channel_norm::channel_norm;

fn cpu_channel_norm(x: &[f32], gamma: &[f32], n: usize, c: usize, s: usize, silu: bool) -> Vec<f64> {
    let mut y = vec![0.0f64; x.len()];
    let scale = (c as f64).sqrt();
    for i in 0..n {
        for p in 0..s {
            let ss: f64 = (0..c).map(|ch| (x[(i * c + ch) * s + p] as f64).powi(2)).sum();
            let d = ss.sqrt().max(1e-12);
            for ch in 0..c {
                let mut v = x[(i * c + ch) * s + p] as f64 / d * scale * gamma[ch] as f64;
                if silu {
                    v /= 1.0 + (-v).exp();
                }
                y[(i * c + ch) * s + p] = v;
            }
        }
    }
    y
}

fn check(shape: &[usize], silu: bool, seed: u64, x_scale: f32) {
    let mut r = Rng::new(seed);
    let (n, c) = (shape[0], shape[1]);
    let s: usize = shape[2..].iter().product();
    let x = r.normals(n * c * s, x_scale);
    let gamma: Vec<f32> = (0..c).map(|_| 1.0 + 0.3 * r.normal()).collect();
    let y = channel_norm(&upload(shape, &x), &upload(&[c, 1, 1, 1], &gamma), silu).unwrap();
    assert_eq!(y.shape(), shape);
    let want = cpu_channel_norm(&x, &gamma, n, c, s, silu);
    assert_close(&format!("channel_norm {shape:?} silu={silu}"), &y.to_f32().unwrap(), &want, 1e-6);
}

#[test]
fn channel_norm_awkward_shapes() {
    check(&[3, 7, 5, 9], false, 1, 1.0);
    check(&[2, 13, 17, 3], true, 2, 1.0);
    check(&[1, 1, 11, 1], true, 3, 1.0);
    // 5-D (N, C, F, H, W) and large / tiny magnitudes: the norm is scale-free.
    check(&[1, 6, 2, 4, 5], true, 4, 1e3);
    check(&[2, 5, 3, 7], false, 5, 1e-4);
}

#[test]
fn channel_norm_zero_pixel_stays_zero() {
    // ‖x‖ = 0 hits the 1e-12 clamp: 0/1e-12 = 0, never NaN.
    let y = channel_norm(&upload(&[1, 3, 1, 2], &[0.0, 1.0, 0.0, 2.0, 0.0, 2.0]), &upload(&[3], &[1.0, 1.0, 1.0]), false).unwrap();
    let v = y.to_f32().unwrap();
    let s3 = 3f32.sqrt();
    let want = [0.0, s3 / 3.0, 0.0, 2.0 * s3 / 3.0, 0.0, 2.0 * s3 / 3.0];
    for (a, b) in v.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{v:?} vs {want:?}");
    }
}

#[test]
fn channel_norm_rejects_wrong_gamma() {
    let e = channel_norm(&upload(&[1, 3, 2, 2], &[0.0; 12]), &upload(&[4], &[1.0; 4]), false).unwrap_err().to_string();
    assert!(e.contains("3 f32 values"), "{e}");
}

#[test]
fn channel_norm_image_larger_than_a_binding() {
    // One 37-channel 1000×950 image is 141 MB: over lavapipe's 128 MiB binding, so Σx² is
    // accumulated over channel chunks before scaling (the decoder's 96-channel 832×480 frames).
    check(&[1, 37, 1000, 950], true, 6, 1.0);
}
