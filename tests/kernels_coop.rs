//! The cooperative-matrix (matrix unit) GEMM kernels — linear, conv2d, temporal conv — against
//! the plain CPU references, on a device opened with `T2V_COOP=on` (lavapipe 26 offers 8×8
//! f16 tiles; its default is the FMA kernels, which are faster on a CPU).
//!
//! Bounds, from f16 input rounding: the kernels round activations (and f32 weights) to f16 on
//! their way into the tiles and accumulate in f32. Against a reference fed the same f16-rounded
//! inputs they must agree to f32 accumulation (relative L2 ≤ 1e-5); against the exact reference
//! the error is that of rounding both factors of every product, ≤ 2^-11 (f16's unit roundoff)
//! relative. Without cooperative matrices the tests say so and pass, unless
//! `T2V_EXPECT_COOP=1` (set by tools/test where the adapter has them).

mod common;
use common::reference::{cpu_attention, cpu_conv2d, cpu_conv_temporal, cpu_linear, fold};
use common::{assert_close, round_f16, Rng};
use std::sync::{Arc, OnceLock};
use t2v::gpu::{AdapterSelector, CoopChoice};
use t2v::ops::attention::attention;
use t2v::ops::conv2d::conv2d;
use t2v::ops::conv_temporal::{conv_temporal, FrameLayout};
use t2v::ops::matmul::linear;
use t2v::{Gpu, Tensor};

const F16_UNIT_ROUNDOFF: f64 = 1.0 / 2048.0;
/// q, k, v and P rounded to f16 once each: four roundoffs.
const ATTENTION_BOUND: f64 = 4.0 * F16_UNIT_ROUNDOFF;

fn coop_gpu() -> Option<Arc<Gpu>> {
    static GPU: OnceLock<Option<Arc<Gpu>>> = OnceLock::new();
    GPU.get_or_init(|| {
        let g = Gpu::new(&AdapterSelector { coop: CoopChoice::On, ..AdapterSelector::from_env() }).expect("a GPU adapter");
        g.set_poison(true);
        let expect = std::env::var("T2V_EXPECT_COOP").is_ok_and(|v| v == "1");
        match g.caps.coop {
            Some(s) => {
                eprintln!("cooperative matrices: {s}×{s} f16 tiles, subgroups up to {} on {}", g.caps.subgroup_max, g.info.name);
                Some(g)
            }
            None if expect => panic!("T2V_EXPECT_COOP=1 but {} ({}) offers no f16 cooperative matrices", g.info.name, g.info.driver_info),
            None => {
                eprintln!("skipped: {} has no f16 cooperative matrices (Mesa 26.1+ lavapipe or a GPU with matrix units has)", g.info.name);
                None
            }
        }
    })
    .clone()
}

fn weights(g: &Arc<Gpu>, shape: &[usize], w: &[f32], f16: bool) -> Tensor {
    if f16 {
        Tensor::from_f32_as_f16(g, shape, w).unwrap()
    } else {
        Tensor::from_f32(g, shape, w).unwrap()
    }
}

/// Both bounds: same-rounding reference at f32 accumulation, exact reference at f16 rounding.
#[track_caller]
fn check_both(name: &str, got: &[f32], rounded: &[f64], exact: &[f64]) {
    assert_close(&format!("{name} vs f16-rounded inputs"), got, rounded, 1e-5);
    assert_close(&format!("{name} vs exact"), got, exact, F16_UNIT_ROUNDOFF);
}

#[test]
fn linear_on_matrix_units() {
    let Some(g) = coop_gpu() else { return };
    let shapes = [(1, 1, 1), (7, 5, 3), (77, 64, 128), (130, 33, 320), (257, 17, 36), (5, 640, 1280), (64, 16, 4)];
    for (i, &(m, n, k)) in shapes.iter().enumerate() {
        for (f16w, with_bias) in [(true, true), (false, false)] {
            let mut r = Rng::new(10 + i as u64);
            let x = r.normals(m * k, 1.0);
            let mut w = r.normals(n * k, 1.0 / (k as f32).sqrt());
            if f16w {
                w = round_f16(&w);
            }
            let b = r.normals(n, 0.5);
            let y = linear(&Tensor::from_f32(&g, &[m, k], &x).unwrap(), &weights(&g, &[n, k], &w, f16w), with_bias.then_some(&Tensor::from_f32(&g, &[n], &b).unwrap())).unwrap();
            let bias = with_bias.then_some(&b[..]);
            check_both(
                &format!("linear {m}x{n}x{k} f16w={f16w}"),
                &y.to_f32().unwrap(),
                &cpu_linear(&round_f16(&x), &round_f16(&w), bias, m, n, k),
                &cpu_linear(&x, &w, bias, m, n, k),
            );
        }
    }
}

#[test]
fn conv2d_on_matrix_units() {
    let Some(g) = coop_gpu() else { return };
    // (n, cin, h, w, cout, k, stride): Downsample2D, odd sizes, 1×1 shortcuts, Cin·k² off tiles
    let shapes = [(2, 8, 10, 18, 8, 3, 2), (1, 5, 7, 9, 12, 3, 1), (3, 16, 5, 5, 20, 1, 1), (2, 4, 9, 5, 6, 3, 1), (1, 3, 1, 1, 40, 3, 1)];
    for (i, &(n, cin, h, wd, cout, k, s)) in shapes.iter().enumerate() {
        let f16w = i % 2 == 0;
        let pad = k / 2;
        let mut r = Rng::new(30 + i as u64);
        let x = r.normals(n * cin * h * wd, 1.0);
        let mut w = r.normals(cout * cin * k * k, 1.0 / ((cin * k * k) as f32).sqrt());
        if f16w {
            w = round_f16(&w);
        }
        let b = r.normals(cout, 0.3);
        let y = conv2d(&Tensor::from_f32(&g, &[n, cin, h, wd], &x).unwrap(), &weights(&g, &[cout, cin, k, k], &w, f16w), Some(&Tensor::from_f32(&g, &[cout], &b).unwrap()), s, pad).unwrap();
        let (rounded, oh, ow) = cpu_conv2d(&round_f16(&x), &round_f16(&w), Some(&b), n, cin, h, wd, cout, k, s, pad);
        let (exact, _, _) = cpu_conv2d(&x, &w, Some(&b), n, cin, h, wd, cout, k, s, pad);
        assert_eq!(y.shape(), &[n, cout, oh, ow]);
        check_both(&format!("conv2d n{n} {cin}->{cout} {h}x{wd} k{k} s{s} f16w={f16w}"), &y.to_f32().unwrap(), &rounded, &exact);
    }
}

#[test]
fn temporal_conv_on_matrix_units() {
    let Some(g) = coop_gpu() else { return };
    for (i, &(bs, cin, f, s, cout, f16w)) in [(1, 8, 5, 12, 8, true), (2, 12, 3, 9, 20, false), (1, 16, 1, 4, 4, true), (2, 9, 24, 2, 3, false)].iter().enumerate() {
        let mut r = Rng::new(50 + i as u64);
        let x = r.normals(bs * cin * f * s, 1.0);
        let mut w = r.normals(cout * cin * 3, 1.0 / ((cin * 3) as f32).sqrt());
        if f16w {
            w = round_f16(&w);
        }
        let b = r.normals(cout, 0.3);
        let (wt, bt) = (weights(&g, &[cout, cin, 3, 1, 1], &w, f16w), Tensor::from_f32(&g, &[cout], &b).unwrap());
        let rounded = cpu_conv_temporal(&round_f16(&x), &round_f16(&w), &b, bs, cin, f, s, cout);
        let exact = cpu_conv_temporal(&x, &w, &b, bs, cin, f, s, cout);
        let name = format!("temporal b{bs} {cin}->{cout} f{f} s{s} f16w={f16w}");
        let y = conv_temporal(&Tensor::from_f32(&g, &[bs, cin, f, 1, s], &x).unwrap(), f, FrameLayout::ChannelsFirst, &wt, Some(&bt)).unwrap();
        check_both(&format!("{name} channels-first"), &y.to_f32().unwrap(), &rounded, &exact);
        let xf = fold(&x, bs, cin, f, s);
        let y = conv_temporal(&Tensor::from_f32(&g, &[bs * f, cin, 1, s], &xf).unwrap(), f, FrameLayout::Folded, &wt, Some(&bt)).unwrap();
        check_both(&format!("{name} folded"), &y.to_f32().unwrap(), &fold(&rounded, bs, cout, f, s), &fold(&exact, bs, cout, f, s));
    }
}

#[test]
fn attention_on_matrix_units() {
    // Q·Kᵀ and P·V on f16 tiles: q (with the softmax scale), k, v and the probabilities P are
    // each rounded to f16 once, so the error against the exact softmax is a few f16 roundoffs.
    let Some(g) = coop_gpu() else { return };
    // (b, lq, lk, heads, d, causal): spatial self, cross (77 keys), temporal (24), CLIP causal,
    // head widths off the tile (3, 40, 5), a single key and query.
    let shapes = [(1, 96, 96, 2, 64, false), (2, 37, 77, 3, 40, false), (3, 24, 24, 5, 8, false), (1, 77, 77, 4, 16, true), (2, 9, 13, 1, 3, false), (1, 1, 1, 2, 5, false), (1, 20, 20, 2, 160, true)];
    for (i, &(b, lq, lk, h, d, causal)) in shapes.iter().enumerate() {
        let mut r = Rng::new(70 + i as u64);
        let s = 1.4 / (d as f32).powf(0.25);
        let (q, k, v) = (r.normals(b * lq * h * d, s), r.normals(b * lk * h * d, s), r.normals(b * lk * h * d, 1.0));
        let t = |l: usize, x: &[f32]| Tensor::from_f32(&g, &[b, l, h * d], x).unwrap();
        let y = attention(&t(lq, &q), &t(lk, &k), &t(lk, &v), h, causal).unwrap();
        let all: Vec<usize> = (0..b).collect();
        let exact = cpu_attention(&q, &k, &v, &all, lq, lk, h, d, causal, 1.0 / (d as f64).sqrt());
        assert_close(&format!("attention b{b} {lq}x{lk} {h}×{d} causal={causal}"), &y.to_f32().unwrap(), &exact, ATTENTION_BOUND);
    }
}
