//! LayerNorm against a CPU reference: the transformer widths (320, 1024 for CLIP), odd widths
//! (scalar path), wide rows, data with a large mean, an input larger than lavapipe's 128 MiB
//! binding, and bad shapes.

mod common;
use common::*;
use t2v::ops::layer_norm::layer_norm;
use t2v::Tensor;

/// torch.nn.LayerNorm(C, eps) in f64, two-pass.
fn cpu_layer_norm(x: &[f32], c: usize, w: &[f32], b: &[f32], eps: f32) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(c) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        out.extend(row.iter().enumerate().map(|(i, &v)| (v as f64 - mean) * rstd * w[i] as f64 + b[i] as f64));
    }
    out
}

// Statistics are f32 Welford/Chan summaries over ≤ 3000 values (a few 1e-7 relative); each
// output adds ~3 roundings. Relative L2 lands near 2e-7; 1e-5 still fails a one-pass
// E[x²]−E[x]² variance on the offset rows.
const TOL: f64 = 1e-5;

fn check(rows: usize, c: usize, offset: f32, eps: f32, seed: u64) {
    let mut r = Rng::new(seed);
    let x: Vec<f32> = r.normals(rows * c, 1.0).iter().map(|v| v + offset).collect();
    let w: Vec<f32> = r.normals(c, 0.5).iter().map(|v| v + 1.0).collect();
    let b = r.normals(c, 0.5);
    let y = layer_norm(&upload(&[rows, c], &x), &upload(&[c], &w), &upload(&[c], &b), eps).unwrap();
    assert_eq!(y.shape(), &[rows, c]);
    let want = cpu_layer_norm(&x, c, &w, &b, eps);
    assert_close(&format!("layer_norm [{rows}, {c}] offset={offset}"), &y.to_f32().unwrap(), &want, TOL);
}

#[test]
fn layer_norm_shapes() {
    check(77, 1024, 0.0, 1e-5, 1); // CLIP text encoder
    check(2880, 320, 3.0, 1e-5, 2); // level-0 tokens of one 576×320 frame
    check(90, 1280, -5.0, 1e-5, 3);
    check(45, 640, 0.0, 1e-6, 4);
    check(33, 33, 2.0, 1e-5, 5); // odd width: scalar loads
    check(3, 1, 0.0, 1e-5, 6); // one element: output is the bias
    check(7, 3000, 1.0, 1e-5, 7); // wide rows: long per-thread Welford runs
    check(5, 2103, 0.5, 1e-5, 8);
}

#[test]
fn layer_norm_variance_without_cancellation() {
    // |mean| = 2000 σ: a one-pass E[x²]−E[x]² in f32 loses every digit of the variance; centred
    // (Welford/Chan) sums only carry the mean's rounding, ~|mean|·2⁻²³ ≈ 1e-5 ≈ 2e-4 of σ.
    let (rows, c) = (64usize, 1280usize);
    let mut r = Rng::new(13);
    let x: Vec<f32> = r.normals(rows * c, 0.05).iter().map(|v| v + 100.0).collect();
    let w = r.normals(c, 1.0);
    let b = r.normals(c, 1.0);
    let y = layer_norm(&upload(&[rows, c], &x), &upload(&[c], &w), &upload(&[c], &b), 1e-5).unwrap();
    assert_close("layer_norm |mean| = 2000σ", &y.to_f32().unwrap(), &cpu_layer_norm(&x, c, &w, &b, 1e-5), 1e-3);
}

#[test]
fn layer_norm_keeps_leading_dims() {
    let mut r = Rng::new(11);
    let (c, shape) = (64usize, [2usize, 3, 5, 64]);
    let x = r.normals(2 * 3 * 5 * c, 2.0);
    let w = r.normals(c, 1.0);
    let b = r.normals(c, 1.0);
    let y = layer_norm(&upload(&shape, &x), &upload(&[c], &w), &upload(&[c], &b), 1e-5).unwrap();
    assert_eq!(y.shape(), &shape);
    assert_close("layer_norm 4-D", &y.to_f32().unwrap(), &cpu_layer_norm(&x, c, &w, &b, 1e-5), TOL);
}

#[test]
fn layer_norm_input_larger_than_a_binding() {
    // 105,000 × 320 f32 = 134 MB: over lavapipe's 128 MiB binding, so rows are split. Checked on
    // a sample of rows around the chunk boundary and across the tensor.
    let (rows, c) = (105_000usize, 320usize);
    assert!((rows * c * 4) as u64 > 128 << 20);
    let mut r = Rng::new(12);
    let x: Vec<f32> = (0..rows * c).map(|i| r.uniform() + (i % 5) as f32).collect();
    let w = r.normals(c, 1.0);
    let b = r.normals(c, 1.0);
    let y = layer_norm(&upload(&[rows, c], &x), &upload(&[c], &w), &upload(&[c], &b), 1e-5)
        .unwrap()
        .to_f32()
        .unwrap();
    let per_chunk = ((128usize << 20) - 512) / (4 * c);
    let picks: Vec<usize> = (0..rows).step_by(1009).chain([per_chunk - 1, per_chunk, per_chunk + 1, rows - 1]).collect();
    let mut got = Vec::new();
    let mut want = Vec::new();
    for &i in &picks {
        got.extend_from_slice(&y[i * c..(i + 1) * c]);
        want.extend(cpu_layer_norm(&x[i * c..(i + 1) * c], c, &w, &b, 1e-5));
    }
    assert_close("layer_norm > binding", &got, &want, TOL);
    assert!(y.iter().all(|v| v.is_finite()), "some rows were never written");
}

#[test]
fn layer_norm_rejects_bad_inputs() {
    let x = upload(&[4, 8], &[0.0; 32]);
    let e = layer_norm(&x, &upload(&[7], &[1.0; 7]), &upload(&[8], &[0.0; 8]), 1e-5).unwrap_err().to_string();
    assert!(e.contains("weight must be f32 [8]") && e.contains("[7]"), "{e}");
    let e = layer_norm(&x, &upload(&[8], &[1.0; 8]), &upload(&[2, 4], &[0.0; 8]), 1e-5).unwrap_err().to_string();
    assert!(e.contains("bias must be f32 [8]"), "{e}");
    let xh = Tensor::from_f32_as_f16(&gpu(), &[4, 8], &[0.0; 32]).unwrap();
    let e = layer_norm(&xh, &upload(&[8], &[1.0; 8]), &upload(&[8], &[0.0; 8]), 1e-5).unwrap_err().to_string();
    assert!(e.contains("f32"), "{e}");
    let e = layer_norm(&upload(&[], &[1.0]), &upload(&[1], &[1.0]), &upload(&[1], &[0.0]), 1e-5).unwrap_err().to_string();
    assert!(e.contains("[.., C]"), "{e}");
}
