//! matmul / linear against a CPU reference: f32 and f16 weights, vec4 and scalar paths,
//! shapes off every tile size, and an input (and an nn::Linear weight) larger than lavapipe's
//! 128 MiB binding.

mod common;
use common::reference::cpu_linear;
use common::*;
use t2v::ops::matmul::linear;
use t2v::{DType, Tensor};

fn check(m: usize, n: usize, k: usize, f16w: bool, with_bias: bool, seed: u64) {
    let mut r = Rng::new(seed);
    let x = r.normals(m * k, 1.0);
    let mut w = r.normals(n * k, 1.0 / (k as f32).sqrt());
    let b = r.normals(n, 0.5);
    let g = gpu();
    let wt = if f16w {
        w = round_f16(&w);
        Tensor::from_f32_as_f16(&g, &[n, k], &w).unwrap()
    } else {
        Tensor::from_f32(&g, &[n, k], &w).unwrap()
    };
    assert_eq!(wt.dtype(), if f16w { DType::F16 } else { DType::F32 });
    let bt = upload(&[n], &b);
    let xt = upload(&[m, k], &x);
    let y = linear(&xt, &wt, with_bias.then_some(&bt)).unwrap();
    assert_eq!(y.shape(), &[m, n]);
    let want = cpu_linear(&x, &w, with_bias.then_some(&b[..]), m, n, k);
    // f32 accumulation over K terms: error grows ~sqrt(K)·2^-24; 1e-5 holds to K≈4096.
    // f16 weights are rounded identically on both sides, so the bound is the same.
    assert_close(&format!("linear {m}x{n}x{k} f16w={f16w} bias={with_bias}"), &y.to_f32().unwrap(), &want, 1e-5);
}

#[test]
fn linear_f32_shapes() {
    for (i, &(m, n, k)) in [(1, 1, 1), (7, 5, 3), (77, 1024, 64), (130, 33, 320), (257, 17, 36), (64, 16, 4), (5, 640, 1280)]
        .iter()
        .enumerate()
    {
        check(m, n, k, false, true, i as u64);
        check(m, n, k, false, false, 100 + i as u64);
    }
}

#[test]
fn linear_f16_weights() {
    for (i, &(m, n, k)) in [(3, 7, 5), (77, 64, 128), (200, 48, 320), (33, 40, 36)].iter().enumerate() {
        check(m, n, k, true, true, 200 + i as u64);
    }
}

#[test]
fn linear_f16_weights_without_shader_f16() {
    // Opens a second device that pretends SHADER_F16 is absent: the unpack2x16float path.
    let sel = t2v::gpu::AdapterSelector { disable_f16: true, ..t2v::gpu::AdapterSelector::from_env() };
    let g = t2v::Gpu::new(&sel).unwrap();
    g.set_poison(true);
    assert!(!g.caps.shader_f16);
    for &(m, n, k) in &[(9, 13, 6), (70, 40, 64)] {
        let mut r = Rng::new(m as u64);
        let x = r.normals(m * k, 1.0);
        let w = round_f16(&r.normals(n * k, 0.3));
        let y = linear(
            &Tensor::from_f32(&g, &[m, k], &x).unwrap(),
            &Tensor::from_f32_as_f16(&g, &[n, k], &w).unwrap(),
            None,
        )
        .unwrap();
        assert_close("linear unpack2x16float", &y.to_f32().unwrap(), &cpu_linear(&x, &w, None, m, n, k), 1e-5);
    }
}

#[test]
fn linear_input_larger_than_a_binding() {
    // 133,000 × 256 f32 = 136 MB of input: over lavapipe's 128 MiB storage binding, so the
    // wrapper must split rows. Checked against the CPU on a sample of rows.
    let g = gpu();
    let (m, n, k) = (133_000usize, 8usize, 256usize);
    assert!((m * k * 4) as u64 > 128 << 20);
    let mut r = Rng::new(7);
    let x = r.normals(m * k, 1.0);
    let w = r.normals(n * k, 0.1);
    let y = linear(&Tensor::from_f32(&g, &[m, k], &x).unwrap(), &Tensor::from_f32(&g, &[n, k], &w).unwrap(), None)
        .unwrap()
        .to_f32()
        .unwrap();
    let rows: Vec<usize> = (0..m).step_by(997).chain([m / 2 - 1, m / 2, m - 1]).collect();
    let mut got = Vec::new();
    let mut want = Vec::new();
    for &i in &rows {
        got.extend_from_slice(&y[i * n..(i + 1) * n]);
        want.extend(cpu_linear(&x[i * k..(i + 1) * k], &w, None, 1, n, k));
    }
    assert_close("linear > binding", &got, &want, 1e-5);
    assert!(y.iter().all(|v| v.is_finite()), "some rows were never written");
}

#[test]
fn linear_every_tiling() {
    // Whatever the adapter's table picks, both tilings and every candidate tile must be right:
    // tiles across M, N and K edges, a GEMV (M = 1, 3), a scalar-K path (K = 37), f16 weights.
    use t2v::ops::tiles::{candidates, Tile};
    let g = gpu();
    for (i, &(m, n, k, f16w)) in [(1, 70, 64, true), (3, 33, 37, false), (19, 65, 40, true), (45, 9, 128, false), (130, 47, 12, true)]
        .iter()
        .enumerate()
    {
        let mut r = Rng::new(500 + i as u64);
        let x = r.normals(m * k, 1.0);
        let mut w = r.normals(n * k, 1.0 / (k as f32).sqrt());
        let b = r.normals(n, 0.5);
        let wt = if f16w {
            w = round_f16(&w);
            Tensor::from_f32_as_f16(&g, &[n, k], &w).unwrap()
        } else {
            Tensor::from_f32(&g, &[n, k], &w).unwrap()
        };
        let want = cpu_linear(&x, &w, Some(&b), m, n, k);
        let mut tiles = candidates(m);
        tiles.push(Tile::Cols { wg: 4, tm: 3, tn: 5 });
        tiles.push(Tile::Rows { wg: 8, tm: 3, tn: 5 });
        for t in tiles {
            let out = Tensor::empty(&g, &[m, n], DType::F32).unwrap();
            t2v::ops::matmul::linear_tiled(&upload(&[m, k], &x), &wt, Some(&upload(&[n], &b)), &out, Some(t)).unwrap();
            assert_close(&format!("linear {m}x{n}x{k} f16w={f16w} {t}"), &out.to_f32().unwrap(), &want, 1e-5);
        }
    }
}

#[test]
fn linear_rejects_wrong_shapes() {
    let x = upload(&[4, 8], &[0.0; 32]);
    let w = upload(&[3, 7], &[0.0; 21]);
    let e = linear(&x, &w, None).unwrap_err().to_string();
    assert!(e.contains("[N, 8]") && e.contains("[3, 7]"), "{e}");
}

#[test]
fn linear_weight_larger_than_a_binding() {
    // nn::Linear binds a weight past the adapter's binding limit as row blocks and concatenates
    // their outputs (Wan 14B's [30720, 5120] f16 time projection on lavapipe). 33,001 × 1,017
    // f32 rows = 134.2 MB, just over 128 MiB: two uneven blocks, an odd K (scalar path).
    let g = gpu();
    let (m, n, k) = (3, 33_001, 1_017);
    assert!((n * k * 4) as u64 > g.max_binding(), "the weight must exceed this adapter's binding limit");
    let mut r = Rng::new(41);
    let x = r.normals(m * k, 1.0);
    let w = r.normals(n * k, 1.0 / (k as f32).sqrt());
    let b = r.normals(n, 0.5);
    let lin = t2v::nn::Linear { weight: Tensor::from_f32(&g, &[n, k], &w).unwrap(), bias: Some(upload(&[n], &b)) };
    let y = lin.forward(&upload(&[1, m, k], &x)).unwrap();
    assert_eq!(y.shape(), &[1, m, n]);
    assert_close("linear with a row-blocked weight", &y.to_f32().unwrap(), &cpu_linear(&x, &w, Some(&b), m, n, k), 1e-5);
}
