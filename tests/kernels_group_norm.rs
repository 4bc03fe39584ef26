//! GroupNorm against a CPU reference written over torch's 5-D (B, C, F, H, W) semantics: per
//! frame (F = 1), pooled over frames on the engine's folded (B·F, C, H, W) layout (data permuted
//! on the CPU), and on the (B, C, F, H, W) layout itself; vec4 and scalar spatial sizes, data
//! with a large mean, fused SiLU, a tensor larger than lavapipe's 128 MiB binding, bad shapes.

mod common;
use common::*;
use t2v::ops::group_norm::{group_norm, group_norm_5d, group_norm_frames, group_norm_inplace};
use t2v::{DType, Tensor};

/// torch.nn.GroupNorm(groups, C, eps) (+ SiLU) on x laid out (B, C, F, S), in f64, two-pass.
#[allow(clippy::too_many_arguments)]
fn cpu_group_norm_5d(
    x: &[f32],
    (b, c, f, s): (usize, usize, usize, usize),
    groups: usize,
    w: &[f32],
    bias: &[f32],
    eps: f32,
    silu: bool,
) -> Vec<f64> {
    let cpg = c / groups;
    let len = cpg * f * s; // one group is contiguous in this layout
    let mut out = vec![0.0f64; x.len()];
    for bi in 0..b {
        for g in 0..groups {
            let base = (bi * c + g * cpg) * f * s;
            let v = &x[base..base + len];
            let mean = v.iter().map(|&a| a as f64).sum::<f64>() / len as f64;
            let var = v.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / len as f64;
            let rstd = 1.0 / (var + eps as f64).sqrt();
            for (i, &a) in v.iter().enumerate() {
                let ch = g * cpg + i / (f * s);
                let y = (a as f64 - mean) * rstd * w[ch] as f64 + bias[ch] as f64;
                out[base + i] = if silu { y / (1.0 + (-y).exp()) } else { y };
            }
        }
    }
    out
}

/// (B·F, C, S) folded → (B, C, F, S).
fn unfold<T: Copy + Default>(x: &[T], (b, c, f, s): (usize, usize, usize, usize)) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    for bi in 0..b {
        for fi in 0..f {
            for ci in 0..c {
                let src = ((bi * f + fi) * c + ci) * s;
                let dst = ((bi * c + ci) * f + fi) * s;
                out[dst..dst + s].copy_from_slice(&x[src..src + s]);
            }
        }
    }
    out
}

/// (B, C, F, S) → (B·F, C, S) folded.
fn fold<T: Copy + Default>(x: &[T], (b, c, f, s): (usize, usize, usize, usize)) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    for bi in 0..b {
        for fi in 0..f {
            for ci in 0..c {
                let dst = ((bi * f + fi) * c + ci) * s;
                let src = ((bi * c + ci) * f + fi) * s;
                out[dst..dst + s].copy_from_slice(&x[src..src + s]);
            }
        }
    }
    out
}

struct Case {
    b: usize,
    f: usize,
    c: usize,
    h: usize,
    w: usize,
    groups: usize,
    eps: f32,
    silu: bool,
    offset: f32,
}

fn inputs(case: &Case, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut r = Rng::new(seed);
    let n = case.b * case.f * case.c * case.h * case.w;
    // Offset cases use |mean| ≈ 12–20 σ: E[x²]−E[x]² then loses ~2.5 digits to cancellation.
    let std = if case.offset == 0.0 { 1.0 } else { 0.25 };
    let x: Vec<f32> = r.normals(n, std).iter().map(|v| v + case.offset).collect();
    let w: Vec<f32> = r.normals(case.c, 0.5).iter().map(|v| v + 1.0).collect();
    let bias = r.normals(case.c, 0.5);
    (x, w, bias)
}

// Error budget: the statistics are exact two-pass sums per 4096-element segment merged with
// Chan's formula, so mean and rstd carry a few f32 roundings (~1e-7 relative, amplified by
// |mean|/σ on the offset cases); each output adds ~3 roundings and SiLU's exp a few ulp.
// Measured on lavapipe: 6e-8 … 7e-7. A per-segment E[x²]−E[x]² only reaches 1e-6 … 1e-5 on
// these cases, so group_norm_variance_without_cancellation checks that separately.
const TOL: f64 = 1e-5;

/// Per-frame GroupNorm: [N, C, H, W] with N = B·F rows, each its own sample.
fn check_per_frame(case: &Case, seed: u64) {
    let (x, w, bias) = inputs(case, seed);
    let n = case.b * case.f;
    let dims = (n, case.c, 1, case.h * case.w);
    let want = cpu_group_norm_5d(&x, dims, case.groups, &w, &bias, case.eps, case.silu);
    let y = group_norm(
        &upload(&[n, case.c, case.h, case.w], &x),
        &upload(&[case.c], &w),
        &upload(&[case.c], &bias),
        case.groups,
        case.eps,
        case.silu,
    )
    .unwrap();
    assert_eq!(y.shape(), &[n, case.c, case.h, case.w]);
    let name = format!("group_norm [{n}, {}, {}, {}] G={} eps={} silu={}", case.c, case.h, case.w, case.groups, case.eps, case.silu);
    assert_close(&name, &y.to_f32().unwrap(), &want, TOL);
}

/// Frame-pooled GroupNorm on the folded layout and on (B, C, F, H, W), both against torch's
/// 5-D semantics.
fn check_pooled(case: &Case, seed: u64) {
    let (x_folded, w, bias) = inputs(case, seed);
    let s = case.h * case.w;
    let dims = (case.b, case.c, case.f, s);
    let x5 = unfold(&x_folded, dims);
    let want5 = cpu_group_norm_5d(&x5, dims, case.groups, &w, &bias, case.eps, case.silu);
    let want_folded = fold(&want5, dims);
    let (wt, bt) = (upload(&[case.c], &w), upload(&[case.c], &bias));
    let name = format!(
        "[{}·{}, {}, {}, {}] G={} eps={} silu={}",
        case.b, case.f, case.c, case.h, case.w, case.groups, case.eps, case.silu
    );

    let xt = upload(&[case.b * case.f, case.c, case.h, case.w], &x_folded);
    let y = group_norm_frames(&xt, case.f, &wt, &bt, case.groups, case.eps, case.silu).unwrap();
    assert_eq!(y.shape(), xt.shape());
    assert_close(&format!("group_norm_frames {name}"), &y.to_f32().unwrap(), &want_folded, TOL);

    let x5t = upload(&[case.b, case.c, case.f, case.h, case.w], &x5);
    let y5 = group_norm_5d(&x5t, &wt, &bt, case.groups, case.eps, case.silu).unwrap();
    assert_close(&format!("group_norm_5d {name}"), &y5.to_f32().unwrap(), &want5, TOL);
}

#[allow(clippy::too_many_arguments)]
fn case(b: usize, f: usize, c: usize, h: usize, w: usize, eps: f32, silu: bool, offset: f32) -> Case {
    Case { b, f, c, h, w, groups: 32, eps, silu, offset }
}

#[test]
fn group_norm_per_frame() {
    let cases = [
        case(1, 1, 64, 5, 9, 1e-5, false, 0.0),   // scalar path (S = 45), 2 channels per group
        case(2, 1, 320, 5, 9, 1e-6, true, 3.0),   // Transformer2DModel eps, offset mean
        case(1, 2, 320, 40, 72, 1e-5, true, 3.0), // level 0 at 576×320: 8 segments per group
        case(3, 1, 640, 20, 36, 1e-5, false, -2.0),
        case(2, 1, 64, 7, 13, 1e-6, true, 0.0),
        case(1, 1, 1280, 3, 4, 1e-5, true, 0.0),
    ];
    for (i, c) in cases.iter().enumerate() {
        check_per_frame(c, i as u64);
    }
    // 4 groups of 16 channels: group size unrelated to 32.
    check_per_frame(&Case { groups: 4, ..case(2, 1, 64, 6, 6, 1e-5, false, 1.0) }, 40);
}

#[test]
fn group_norm_pooled_over_frames() {
    let cases = [
        case(2, 3, 64, 5, 9, 1e-5, false, 0.0),    // scalar path, whole group in one segment
        case(1, 8, 320, 5, 9, 1e-6, true, 3.0),    // TransformerTemporalModel eps
        case(2, 4, 64, 40, 72, 1e-5, true, 3.0),   // level 0 size: several 4096-element segments per run
        case(1, 2, 640, 20, 36, 1e-6, false, 3.0),
        case(2, 1, 320, 8, 8, 1e-5, true, 0.0),    // one frame: pooled == per-frame
    ];
    for (i, c) in cases.iter().enumerate() {
        check_pooled(c, 100 + i as u64);
    }
    // One group of 12 frames × 8 channels × 2880: 72 segment partials, so finalize's threads
    // each merge more than one before the tree.
    check_pooled(&Case { groups: 1, ..case(1, 12, 8, 40, 72, 1e-5, false, 3.0) }, 110);
}

#[test]
fn group_norm_variance_without_cancellation() {
    // |mean| = 2000 σ: E[x²]−E[x]² in f32 cancels every significant digit (relative L2 ~1e-1 and
    // up), while centred sums only carry the mean's own rounding, |mean|·~2⁻²³ ≈ 1e-5 absolute
    // ≈ 2e-4 of σ. Checked per frame (one segment per group) and pooled (Chan merges).
    let (c, h, w) = (64usize, 40usize, 72usize);
    let mut r = Rng::new(77);
    let mk = |r: &mut Rng, n: usize| -> Vec<f32> { r.normals(n, 0.05).iter().map(|v| v + 100.0).collect() };
    let wv: Vec<f32> = r.normals(c, 0.5).iter().map(|v| v + 1.0).collect();
    let bv = r.normals(c, 0.5);
    let (wt, bt) = (upload(&[c], &wv), upload(&[c], &bv));

    let x = mk(&mut r, 2 * c * h * w);
    let want = cpu_group_norm_5d(&x, (2, c, 1, h * w), 32, &wv, &bv, 1e-5, false);
    let y = group_norm(&upload(&[2, c, h, w], &x), &wt, &bt, 32, 1e-5, false).unwrap();
    assert_close("group_norm |mean| = 2000σ", &y.to_f32().unwrap(), &want, 1e-3);

    let dims = (1, c, 6, h * w);
    let xf = mk(&mut r, 6 * c * h * w);
    let want = fold(&cpu_group_norm_5d(&unfold(&xf, dims), dims, 32, &wv, &bv, 1e-5, false), dims);
    let y = group_norm_frames(&upload(&[6, c, h, w], &xf), 6, &wt, &bt, 32, 1e-5, false).unwrap();
    assert_close("group_norm_frames |mean| = 2000σ", &y.to_f32().unwrap(), &want, 1e-3);
}

#[test]
fn group_norm_input_larger_than_a_binding() {
    // 4 items of 40 MiB (160 MiB): over lavapipe's 128 MiB binding, so the wrapper must split
    // by items. Statistics are checked in full, outputs on a sample of every group.
    let (n, c, h, w, groups) = (4usize, 64usize, 160usize, 1024usize, 32usize);
    let s = h * w;
    assert!((n * c * s * 4) as u64 > 128 << 20);
    let mut r = Rng::new(7);
    let x: Vec<f32> = (0..n * c * s).map(|i| r.uniform() * 2.0 - 1.0 + (i % 7) as f32 * 0.25 + 1.0).collect();
    let wv = r.normals(c, 0.5);
    let bv = r.normals(c, 0.5);
    let y = group_norm(&upload(&[n, c, h, w], &x), &upload(&[c], &wv), &upload(&[c], &bv), groups, 1e-5, true)
        .unwrap()
        .to_f32()
        .unwrap();
    let cpg = c / groups;
    let len = cpg * s;
    let mut got = Vec::new();
    let mut want = Vec::new();
    for ni in 0..n {
        for g in 0..groups {
            let base = (ni * c + g * cpg) * s;
            let v = &x[base..base + len];
            let mean = v.iter().map(|&a| a as f64).sum::<f64>() / len as f64;
            let var = v.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / len as f64;
            let rstd = 1.0 / (var + 1e-5).sqrt();
            for i in (0..len).step_by(211).chain([0, len - 1]) {
                let ch = g * cpg + i / s;
                let t = (v[i] as f64 - mean) * rstd * wv[ch] as f64 + bv[ch] as f64;
                got.push(y[base + i]);
                want.push(t / (1.0 + (-t).exp()));
            }
        }
    }
    assert_close("group_norm > binding", &got, &want, TOL);
    assert!(y.iter().all(|v| v.is_finite()), "some elements were never written");
}

#[test]
fn group_norm_rejects_bad_inputs() {
    let g = gpu();
    let x = upload(&[2, 6, 3, 3], &[0.0; 108]);
    let w6 = upload(&[6], &[1.0; 6]);
    let b6 = upload(&[6], &[0.0; 6]);
    let e = group_norm(&x, &w6, &b6, 4, 1e-5, false).unwrap_err().to_string();
    assert!(e.contains("6 channels") && e.contains("4 groups"), "{e}");
    let e = group_norm(&x, &upload(&[5], &[1.0; 5]), &b6, 3, 1e-5, false).unwrap_err().to_string();
    assert!(e.contains("weight must be f32 [6]") && e.contains("[5]"), "{e}");
    let e = group_norm_frames(&x, 3, &w6, &b6, 3, 1e-5, false).unwrap_err().to_string();
    assert!(e.contains("3-frame"), "{e}");
    let xh = Tensor::from_f32_as_f16(&g, &[2, 6, 3, 3], &[0.0; 108]).unwrap();
    assert_eq!(xh.dtype(), DType::F16);
    let e = group_norm(&xh, &w6, &b6, 3, 1e-5, false).unwrap_err().to_string();
    assert!(e.contains("f32"), "{e}");
    let e = group_norm(&upload(&[6], &[0.0; 6]), &w6, &b6, 3, 1e-5, false).unwrap_err().to_string();
    assert!(e.contains("[N, C, *spatial]"), "{e}");
}

#[test]
fn group_norm_image_larger_than_a_binding() {
    // One 64-channel 1024×640 image is 160 MiB: over lavapipe's 128 MiB binding, so its groups
    // are normalised in binding-sized runs (the VAE decoder's full-resolution GroupNorms).
    check_per_frame(&case(1, 1, 64, 1024, 640, 1e-6, true, 0.0), 31);
}

#[test]
fn group_norm_item_larger_than_a_binding_is_an_error() {
    // A 2-frame item of 141 MB pooled over frames cannot be split on a 128 MiB binding.
    let g = gpu();
    if g.max_binding() > 140_000_000 {
        return; // a real GPU binds it whole
    }
    let (c, s) = (32usize, 550_000usize);
    let x = Tensor::empty(&g, &[2, c, s], DType::F32).unwrap();
    let w = upload(&[c], &vec![1.0; c]);
    let b = upload(&[c], &vec![0.0; c]);
    let e = group_norm_frames(&x, 2, &w, &b, 32, 1e-5, false).unwrap_err();
    assert!(matches!(e, t2v::Error::BindingTooLarge { .. }), "{e}");
    assert!(e.to_string().contains("one batch item"), "{e}");
}

#[test]
fn group_norm_in_place() {
    // Normalising over the input (a resnet's input once its shortcut is computed) matches the
    // reference, also for an image split into runs of groups (160 MiB > one lavapipe binding).
    for (case, seed) in [(case(3, 1, 64, 9, 13, 1e-5, true, 0.0), 41), (case(1, 1, 64, 1024, 640, 1e-6, false, 3.0), 42)] {
        let (x, w, bias) = inputs(&case, seed);
        let n = case.b * case.f;
        let want = cpu_group_norm_5d(&x, (n, case.c, 1, case.h * case.w), case.groups, &w, &bias, case.eps, case.silu);
        let t = upload(&[n, case.c, case.h, case.w], &x);
        group_norm_inplace(&t, &upload(&[case.c], &w), &upload(&[case.c], &bias), case.groups, case.eps, case.silu).unwrap();
        assert_close(&format!("group_norm_inplace [{n}, {}, {}, {}]", case.c, case.h, case.w), &t.to_f32().unwrap(), &want, TOL);
    }
}
