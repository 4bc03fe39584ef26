//! Elementwise kernels against f64 CPU references, including a dispatch of more than 65,535
//! workgroups and a tensor larger than lavapipe's 128 MiB storage binding.

mod common;
use common::*;
use t2v::ops::elementwise as ew;

fn erf(x: f64) -> f64 {
    // Abramowitz–Stegun 7.1.28 is too coarse for a reference; use the series / continued
    // fraction split at |x| = 3 with f64 accumulation (≈1e-15).
    if x.abs() < 3.0 {
        let mut sum = x;
        let mut term = x;
        let x2 = x * x;
        for n in 1..200 {
            term *= -x2 / n as f64;
            let add = term / (2 * n + 1) as f64;
            sum += add;
            if add.abs() < 1e-17 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc continued fraction (Lentz) for large |x|.
        let z = x.abs();
        let mut f = z;
        let mut c = z;
        let mut d = 0.0;
        for k in 1..300 {
            let a = k as f64 / 2.0;
            d = 1.0 / (z + a * d);
            c = z + a / c;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        let erfc = (-z * z).exp() / (f * std::f64::consts::PI.sqrt());
        x.signum() * (1.0 - erfc)
    }
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

#[test]
fn reference_erf_is_right() {
    // Known values (Abramowitz & Stegun table 7.1).
    for (x, e) in [(0.5, 0.520_499_877_813_046_5), (1.0, 0.842_700_792_949_714_9), (2.0, 0.995_322_265_018_952_7), (3.5, 0.999_999_256_901_627_7)] {
        assert!((erf(x) - e).abs() < 1e-14, "erf({x}) = {}", erf(x));
        assert!((erf(-x) + e).abs() < 1e-14);
    }
}

#[test]
fn unary_and_binary_ops() {
    let n = 5000;
    let mut r = Rng::new(3);
    // Spread over [-12, 12] so gelu's tails and erf's two branches are both exercised.
    let a = r.normals(n, 4.0);
    let b = r.normals(n, 1.0);
    let (at, bt) = (upload(&[n], &a), upload(&[n], &b));
    let d = |f: &dyn Fn(usize) -> f64| (0..n).map(f).collect::<Vec<f64>>();
    // Single rounding per element: relative error ~1e-7 per element.
    assert_close("add", &ew::add(&at, &bt).unwrap().to_f32().unwrap(), &d(&|i| a[i] as f64 + b[i] as f64), 1e-6);
    assert_close("mul", &ew::mul(&at, &bt).unwrap().to_f32().unwrap(), &d(&|i| a[i] as f64 * b[i] as f64), 1e-6);
    assert_close("scale", &ew::scale(&at, 0.18215).unwrap().to_f32().unwrap(), &d(&|i| a[i] as f64 * 0.18215), 1e-6);
    // clamp is exact; 5000 elements is not a multiple of the 256-wide workgroup.
    let clamped = ew::clamp_sym(&at, 1.5).unwrap().to_f32().unwrap();
    assert_eq!(clamped, a.iter().map(|&x| x.clamp(-1.5, 1.5)).collect::<Vec<f32>>(), "clamp_sym");
    // exp/erf in f32 add a few ulp.
    assert_close("silu", &ew::silu(&at).unwrap().to_f32().unwrap(), &d(&|i| silu(a[i] as f64)), 1e-5);
    assert_close("gelu", &ew::gelu(&at).unwrap().to_f32().unwrap(), &d(&|i| gelu(a[i] as f64)), 1e-5);
    let c: Vec<f32> = r.normals(n, 1.0);
    let ct = upload(&[n], &c);
    let y = ew::lincomb2(&at, 0.7, &bt, -1.3).unwrap().to_f32().unwrap();
    assert_close("lincomb2", &y, &d(&|i| 0.7f32 as f64 * a[i] as f64 - 1.3f32 as f64 * b[i] as f64), 1e-6);
    let y = ew::lincomb3(&at, 0.5, &bt, 2.0, &ct, -0.25).unwrap().to_f32().unwrap();
    assert_close("lincomb3", &y, &d(&|i| 0.5 * a[i] as f64 + 2.0 * b[i] as f64 - 0.25 * c[i] as f64), 1e-6);
    let qg = |x: f64| x / (1.0 + (-1.702 * x).exp());
    assert_close("quick_gelu", &ew::quick_gelu(&at).unwrap().to_f32().unwrap(), &d(&|i| qg(a[i] as f64)), 1e-5);
    let acc = upload(&[n], &a);
    ew::add_inplace(&acc, &bt).unwrap();
    assert_close("add_inplace", &acc.to_f32().unwrap(), &d(&|i| a[i] as f64 + b[i] as f64), 1e-6);
}

#[test]
fn gelu_small_and_large_arguments() {
    let a: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.025).collect(); // -10..10 step 0.025
    let got = ew::gelu(&upload(&[a.len()], &a)).unwrap().to_f32().unwrap();
    let want: Vec<f64> = a.iter().map(|&x| gelu(x as f64)).collect();
    assert_close("gelu sweep", &got, &want, 1e-5);
}

#[test]
fn broadcast_adds() {
    // (N=6, C=5, S=7) + per-channel vector: inner = S; and (rows, C) + bias: inner = 1.
    let (n, c, s) = (6, 5, 7);
    let mut r = Rng::new(4);
    let a = r.normals(n * c * s, 1.0);
    let v = r.normals(c, 1.0);
    let y = ew::add_bcast(&upload(&[n, c, s], &a), &upload(&[c], &v), s).unwrap();
    let want: Vec<f64> = (0..n * c * s).map(|i| a[i] as f64 + v[(i / s) % c] as f64).collect();
    assert_close("add_bcast per channel", &y.to_f32().unwrap(), &want, 1e-6);
    // temb per (frame, channel): b has N·C entries.
    let t = r.normals(n * c, 1.0);
    let y = ew::add_bcast(&upload(&[n, c, s], &a), &upload(&[n, c], &t), s).unwrap();
    let want: Vec<f64> = (0..n * c * s).map(|i| a[i] as f64 + t[i / s] as f64).collect();
    assert_close("add_bcast per frame-channel", &y.to_f32().unwrap(), &want, 1e-6);
    let y = ew::mul_bcast(&upload(&[n * s, c], &a), &upload(&[c], &v), 1).unwrap();
    let want: Vec<f64> = (0..n * c * s).map(|i| a[i] as f64 * v[i % c] as f64).collect();
    assert_close("mul_bcast rows", &y.to_f32().unwrap(), &want, 1e-6);
    assert!(ew::add_bcast(&upload(&[10], &[0.0; 10]), &upload(&[3], &[0.0; 3]), 1).is_err());
}

#[test]
fn geglu_splits_hidden_and_gate() {
    let (rows, d) = (77, 40);
    let mut r = Rng::new(5);
    let x = r.normals(rows * 2 * d, 2.0);
    let y = ew::geglu(&upload(&[rows, 2 * d], &x)).unwrap();
    assert_eq!(y.shape(), &[rows, d]);
    let want: Vec<f64> =
        (0..rows * d).map(|i| x[(i / d) * 2 * d + i % d] as f64 * gelu(x[(i / d) * 2 * d + d + i % d] as f64)).collect();
    assert_close("geglu", &y.to_f32().unwrap(), &want, 1e-5);
    assert!(ew::geglu(&upload(&[3], &[0.0; 3])).is_err());
}

#[test]
fn more_than_65535_workgroups_and_more_than_a_binding() {
    // 39 × (320 × 2880) = 35.9M elements = 144 MB per operand (> 128 MiB binding) and
    // 140,400 workgroups of 256 (> 65,535).
    let n = 39 * 320 * 2880;
    let a: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let b: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.5).collect();
    let y = ew::add(&upload(&[n], &a), &upload(&[n], &b)).unwrap().to_f32().unwrap();
    for i in (0..n).step_by(1013).chain([n / 2, n - 1]) {
        assert_eq!(y[i], a[i] + b[i], "element {i}");
    }
    assert!(y.iter().all(|v| v.is_finite()), "unwritten (poisoned) elements remain");
    // Broadcast across chunk boundaries: block index must continue across chunks.
    let c = 320;
    let v: Vec<f32> = (0..c).map(|i| i as f32).collect();
    let y = ew::add_bcast(&upload(&[n], &a), &upload(&[c], &v), 2880).unwrap().to_f32().unwrap();
    for i in (0..n).step_by(4099).chain([n - 1]) {
        assert_eq!(y[i], a[i] + v[(i / 2880) % c], "element {i}");
    }
}

/// transformers' gelu_new in f64.
fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
}

#[test]
fn gelu_tanh_and_gated_form() {
    // A sweep over [-12, 12] (both tanh tails) plus odd-length normals; one extreme value whose
    // cube overflows f32 must give x (positive) or 0 (negative), never NaN.
    let mut a: Vec<f32> = (-480..=480).map(|i| i as f32 * 0.025).collect();
    let mut r = Rng::new(21);
    a.extend(r.normals(4001, 3.0));
    a.extend([1e13, -1e13, 0.0, 1e-30]);
    let n = a.len();
    let got = ew::gelu_tanh(&upload(&[n], &a)).unwrap().to_f32().unwrap();
    let want: Vec<f64> = a.iter().map(|&x| if x.abs() > 1e12 { (x.max(0.0)) as f64 } else { gelu_tanh(x as f64) }).collect();
    assert!(got.iter().all(|v| v.is_finite()), "gelu_tanh produced a non-finite value");
    assert_eq!(got[n - 4], 1e13);
    assert_eq!(got[n - 3], 0.0);
    assert_close("gelu_tanh", &got[..n - 4], &want[..n - 4], 1e-5);
    // Near-zero arguments keep their relative accuracy (no 1 − e^{-2z} cancellation blow-up).
    let small: Vec<f32> = (1..200).map(|i| i as f32 * 1e-5).collect();
    let got = ew::gelu_tanh(&upload(&[small.len()], &small)).unwrap().to_f32().unwrap();
    assert_close("gelu_tanh small", &got, &small.iter().map(|&x| gelu_tanh(x as f64)).collect::<Vec<_>>(), 1e-5);

    // Gated: rows of a (77, 103) gate and up projection.
    let (rows, d) = (77, 103);
    let g = r.normals(rows * d, 2.0);
    let u = r.normals(rows * d, 1.0);
    let y = ew::gelu_tanh_mul(&upload(&[rows, d], &g), &upload(&[rows, d], &u)).unwrap();
    assert_eq!(y.shape(), &[rows, d]);
    let want: Vec<f64> = (0..rows * d).map(|i| gelu_tanh(g[i] as f64) * u[i] as f64).collect();
    assert_close("gelu_tanh_mul", &y.to_f32().unwrap(), &want, 1e-5);
    let e = ew::gelu_tanh_mul(&upload(&[3], &[0.0; 3]), &upload(&[4], &[0.0; 4])).unwrap_err().to_string();
    assert!(e.contains("shapes differ"), "{e}");
}

#[test]
fn gelu_tanh_mul_across_bindings() {
    // 36M elements per operand (144 MB > 128 MiB binding, > 65,535 workgroups): the chunked
    // windows of a and b must stay aligned with each other.
    let n = 36_000_000usize;
    let a: Vec<f32> = (0..n).map(|i| ((i % 2001) as f32 - 1000.0) * 0.004).collect();
    let b: Vec<f32> = (0..n).map(|i| (i % 13) as f32 - 6.0).collect();
    let y = ew::gelu_tanh_mul(&upload(&[n], &a), &upload(&[n], &b)).unwrap().to_f32().unwrap();
    let picks: Vec<usize> = (0..n).step_by(4999).chain([n / 2, n - 1]).collect();
    let got: Vec<f32> = picks.iter().map(|&i| y[i]).collect();
    let want: Vec<f64> = picks.iter().map(|&i| gelu_tanh(a[i] as f64) * b[i] as f64).collect();
    assert_close("gelu_tanh_mul > binding", &got, &want, 1e-5);
    assert!(y.iter().all(|v| v.is_finite()), "unwritten (poisoned) elements remain");
}
