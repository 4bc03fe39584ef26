//! RMS norm (torch.nn.RMSNorm / T5LayerNorm) against an f64 CPU reference: awkward widths
//! (1, 7, 12: scalar path; 1536, 4096: Wan / UMT5), f32 and f16 weights, no weight, misaligned
//! views, more rows than one 65,535-workgroup grid dimension, an input larger than lavapipe's
//! 128 MiB binding, the no-subgroup path, and bad shapes.

mod common;
use common::*;
use t2v::gpu::AdapterSelector;
use t2v::ops::rms_norm::rms_norm;
use t2v::{Gpu, Tensor};

/// x · (mean(x²) + eps)^-½ · w in f64.
fn cpu_rms(x: &[f32], c: usize, w: Option<&[f32]>, eps: f32) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(c) {
        let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / c as f64;
        let r = 1.0 / (ms + eps as f64).sqrt();
        out.extend(row.iter().enumerate().map(|(i, &v)| v as f64 * r * w.map_or(1.0, |w| w[i] as f64)));
    }
    out
}

// f32 sums of ≤ 4096 squares plus 2–3 roundings per output: relative L2 a few 1e-7.
const TOL: f64 = 1e-5;

fn check(rows: usize, c: usize, scale: f32, eps: f32, f16_weight: bool, seed: u64) {
    let mut r = Rng::new(seed);
    let x = r.normals(rows * c, scale);
    let mut w: Vec<f32> = r.normals(c, 0.5).iter().map(|v| v + 1.0).collect();
    let wt = if f16_weight {
        w = round_f16(&w);
        Tensor::from_f32_as_f16(&gpu(), &[c], &w).unwrap()
    } else {
        upload(&[c], &w)
    };
    let y = rms_norm(&upload(&[rows, c], &x), Some(&wt), eps).unwrap();
    assert_eq!(y.shape(), &[rows, c]);
    let name = format!("rms_norm [{rows}, {c}] f16 weight={f16_weight}");
    assert_close(&name, &y.to_f32().unwrap(), &cpu_rms(&x, c, Some(&w), eps), TOL);
}

#[test]
fn rms_norm_shapes() {
    check(5, 1, 1.0, 1e-6, false, 1); // one element: x / sqrt(x² + eps) · w
    check(33, 7, 2.0, 1e-6, false, 2);
    check(17, 12, 0.5, 1e-5, true, 3);
    check(77, 1536, 1.0, 1e-6, false, 4); // Wan 1.3B hidden
    check(40, 4096, 3.0, 1e-6, true, 5); // UMT5-XXL d_model, f16 weight
    check(512, 64, 1.0, 1e-6, false, 6); // per-head q/k norm widths
    check(9, 3001, 10.0, 1e-6, true, 7); // odd and wide
}

#[test]
fn rms_norm_tiny_values_see_eps() {
    // mean(x²) ≈ 1e-8 ≪ eps: the result is dominated by eps, as in torch.
    let (rows, c) = (3, 16);
    let x: Vec<f32> = Rng::new(9).normals(rows * c, 1e-4);
    let y = rms_norm(&upload(&[rows, c], &x), None, 1e-6).unwrap();
    assert_close("rms_norm tiny", &y.to_f32().unwrap(), &cpu_rms(&x, c, None, 1e-6), TOL);
}

#[test]
fn rms_norm_without_weight_and_leading_dims() {
    let mut r = Rng::new(10);
    let shape = [2usize, 3, 5, 12];
    let x = r.normals(2 * 3 * 5 * 12, 2.0);
    let y = rms_norm(&upload(&shape, &x), None, 1e-6).unwrap();
    assert_eq!(y.shape(), &shape);
    assert_close("rms_norm no weight 4-D", &y.to_f32().unwrap(), &cpu_rms(&x, 12, None, 1e-6), TOL);
}

#[test]
fn rms_norm_misaligned_views() {
    // Rows 1.. of a width-12 tensor start 12 elements in (vec4-aligned) and of width 6 at 6
    // elements (not vec4-aligned: scalar path with a shift); an f16 weight view starting at an
    // odd element exercises the packed-pair index.
    let mut r = Rng::new(11);
    for c in [12usize, 6] {
        let x = r.normals(9 * c, 1.0);
        let xt = upload(&[9, c], &x).narrow0(1, 8).unwrap();
        let wall: Vec<f32> = round_f16(&r.normals(c + 1, 1.0));
        let wt = Tensor::from_f32_as_f16(&gpu(), &[c + 1, 1], &wall).unwrap().narrow0(1, c).unwrap().reshape(&[c]).unwrap();
        let y = rms_norm(&xt, Some(&wt), 1e-6).unwrap();
        assert_close(&format!("rms_norm view c={c}"), &y.to_f32().unwrap(), &cpu_rms(&x[c..], c, Some(&wall[1..]), 1e-6), TOL);
    }
}

#[test]
fn rms_norm_more_rows_than_one_grid_dimension() {
    // 140,000 rows: over 65,535 workgroups on the no-subgroup path and many per subgroup grid.
    let (rows, c) = (140_000usize, 3usize);
    let mut r = Rng::new(12);
    let x = r.normals(rows * c, 1.0);
    let w = r.normals(c, 1.0);
    let y = rms_norm(&upload(&[rows, c], &x), Some(&upload(&[c], &w)), 1e-6).unwrap();
    assert_close("rms_norm 140k rows", &y.to_f32().unwrap(), &cpu_rms(&x, c, Some(&w), 1e-6), TOL);
}

#[test]
fn rms_norm_input_larger_than_a_binding() {
    // 8,300 × 4,096 f32 = 136 MB: rows are split across bindings. Checked on sampled rows.
    let (rows, c) = (8_300usize, 4096usize);
    assert!((rows * c * 4) as u64 > 128 << 20);
    let mut r = Rng::new(13);
    let x: Vec<f32> = (0..rows * c).map(|i| r.uniform() - 0.5 + (i % 3) as f32).collect();
    let w = r.normals(c, 1.0);
    let y = rms_norm(&upload(&[rows, c], &x), Some(&upload(&[c], &w)), 1e-6).unwrap().to_f32().unwrap();
    let per_chunk = ((128usize << 20) - 512) / (4 * c);
    let picks: Vec<usize> = (0..rows).step_by(997).chain([per_chunk - 1, per_chunk, per_chunk + 1, rows - 1]).collect();
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for &i in &picks {
        got.extend_from_slice(&y[i * c..(i + 1) * c]);
        want.extend(cpu_rms(&x[i * c..(i + 1) * c], c, Some(&w), 1e-6));
    }
    assert_close("rms_norm > binding", &got, &want, TOL);
    assert!(y.iter().all(|v| v.is_finite()), "some rows were never written");
}

#[test]
fn rms_norm_without_subgroups() {
    let g = Gpu::new(&AdapterSelector { disable_subgroup: true, ..AdapterSelector::from_env() }).unwrap();
    g.set_poison(true);
    assert!(!g.caps.subgroup);
    let mut r = Rng::new(14);
    for (rows, c) in [(77usize, 4096usize), (70_000, 1), (5, 13)] {
        let x = r.normals(rows * c, 1.5);
        let w = round_f16(&r.normals(c, 1.0));
        let xt = Tensor::from_f32(&g, &[rows, c], &x).unwrap();
        let wt = Tensor::from_f32_as_f16(&g, &[c], &w).unwrap();
        let y = rms_norm(&xt, Some(&wt), 1e-6).unwrap();
        assert_close(&format!("rms_norm no subgroups [{rows}, {c}]"), &y.to_f32().unwrap(), &cpu_rms(&x, c, Some(&w), 1e-6), TOL);
    }
}

#[test]
fn rms_norm_rejects_bad_inputs() {
    let x = upload(&[4, 8], &[0.0; 32]);
    let e = rms_norm(&x, Some(&upload(&[7], &[1.0; 7])), 1e-6).unwrap_err().to_string();
    assert!(e.contains("weight must be [8]") && e.contains("[7]"), "{e}");
    let xh = Tensor::from_f32_as_f16(&gpu(), &[4, 8], &[0.0; 32]).unwrap();
    let e = rms_norm(&xh, None, 1e-6).unwrap_err().to_string();
    assert!(e.contains("f32"), "{e}");
    let e = rms_norm(&upload(&[], &[1.0]), None, 1e-6).unwrap_err().to_string();
    assert!(e.contains("[.., C]"), "{e}");
}
