//! Attention against a CPU reference: self, cross, causal (CLIP), short temporal sequences,
//! awkward head dims and lengths, more than 65,535 workgroups, inputs larger than lavapipe's
//! 128 MiB binding, and bad shapes. On lavapipe the subgroup kernel (attention_rows4) runs;
//! one test opens a device without subgroups to cover the GPU kernel (workgroup-memory tiles).

mod common;
use common::reference::cpu_attention;
use common::*;
use std::sync::Arc;
use t2v::ops::attention::{attention, attention_scaled};
use t2v::{Gpu, Tensor};

/// Runs one shape on seeded random inputs and compares batches `check` (all when `None`).
#[allow(clippy::too_many_arguments)]
fn check_on(
    g: &Arc<Gpu>,
    name: &str,
    b: usize,
    lq: usize,
    lk: usize,
    h: usize,
    d: usize,
    causal: bool,
    check: Option<Vec<usize>>,
    seed: u64,
) {
    let mut r = Rng::new(seed);
    // q and k at D^-1/4 each make q·k·D^-1/2 ~ N(0, 1)·2: scores of a few units, so softmax is
    // neither flat nor one-hot and both the max and the sum matter.
    let qk_scale = 1.4 / (d as f32).powf(0.25);
    let q = r.normals(b * lq * h * d, qk_scale);
    let k = r.normals(b * lk * h * d, qk_scale);
    let v = r.normals(b * lk * h * d, 1.0);
    let t = |shape: &[usize], x: &[f32]| Tensor::from_f32(g, shape, x).unwrap();
    let y = attention(
        &t(&[b, lq, h * d], &q),
        &t(&[b, lk, h * d], &k),
        &t(&[b, lk, h * d], &v),
        h,
        causal,
    )
    .unwrap();
    assert_eq!(y.shape(), &[b, lq, h * d]);
    let y = y.to_f32().unwrap();
    let bs = check.unwrap_or_else(|| (0..b).collect());
    let row = lq * h * d;
    let got: Vec<f32> = bs
        .iter()
        .flat_map(|&i| y[i * row..(i + 1) * row].iter().copied())
        .collect();
    let want = cpu_attention(&q, &k, &v, &bs, lq, lk, h, d, causal, 1.0 / (d as f64).sqrt());
    // f32 scores, exp2 and running sums over ≤ a few hundred keys: rounding is ~1e-6 relative
    // at most (score error ~ε·|s|·√D, sum error ~ε·√Lk; measured 1e-7..4e-7 on lavapipe), so
    // 1e-5 leaves margin for a driver's exp2 (Vulkan allows 3 ULP) yet fails any indexing,
    // masking or rescaling mistake, each of which costs O(1e-2) or more.
    assert_close(name, &got, &want, 1e-5);
    if bs.len() < b {
        assert!(
            y.iter().all(|x| x.is_finite()),
            "{name}: some outputs were never written"
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn check_sampled(
    name: &str,
    b: usize,
    lq: usize,
    lk: usize,
    h: usize,
    d: usize,
    causal: bool,
    check: Option<Vec<usize>>,
    seed: u64,
) {
    check_on(&gpu(), name, b, lq, lk, h, d, causal, check, seed);
}

#[allow(clippy::too_many_arguments)]
fn check(name: &str, b: usize, lq: usize, lk: usize, h: usize, d: usize, causal: bool, seed: u64) {
    check_sampled(name, b, lq, lk, h, d, causal, None, seed);
}

#[test]
fn self_attention_one_head() {
    check("self 1 head", 2, 70, 70, 1, 40, false, 1);
}

#[test]
fn self_attention_multi_head_off_tile() {
    // 300 is a multiple of neither the 64-row query tile nor the 32-key K/V tile.
    check("self L=300 H=4 D=64", 1, 300, 300, 4, 64, false, 2);
}

#[test]
fn cross_attention_77_context_tokens() {
    check("cross Lq=200 Lk=77", 2, 200, 77, 2, 64, false, 3);
}

#[test]
fn causal_clip_text_encoder() {
    check("causal L=77 H=4 D=64", 1, 77, 77, 4, 64, true, 4);
    // Lq ≠ Lk: torch's is_causal keeps the top-left triangle (key j visible iff j ≤ i).
    check("causal Lq=40 Lk=25", 2, 40, 25, 2, 8, true, 5);
    check("causal Lq=130 Lk=130", 1, 130, 130, 1, 24, true, 6);
}

#[test]
fn temporal_attention_short_sequences() {
    check("temporal B=500 L=24", 500, 24, 24, 2, 64, false, 7);
    check("temporal B=33 L=1", 33, 1, 1, 3, 64, false, 8);
}

#[test]
fn head_dims() {
    for (i, &d) in [8usize, 24, 40, 80, 3, 160].iter().enumerate() {
        check(&format!("D={d}"), 2, 45, 33, 2, d, false, 10 + i as u64);
    }
}

#[test]
fn single_token() {
    check("Lq=1 Lk=1", 3, 1, 1, 2, 40, false, 20);
    check("Lq=1 Lk=77", 2, 1, 77, 2, 64, false, 21);
    check("Lq=65 Lk=1", 1, 65, 1, 2, 8, true, 22);
}

#[test]
fn more_than_65535_workgroups() {
    // One 8-row query tile per (batch, head): 33,000 × 2 = 66,000 workgroups, so the grid must
    // go 2-D. The CPU checks a spread of batches, the last included.
    let b = 33_000;
    let bs: Vec<usize> = (0..b).step_by(911).chain([b / 2, b - 1]).collect();
    check_sampled("66,000 workgroups", b, 8, 8, 2, 8, false, Some(bs), 30);
}

#[test]
fn k_and_v_larger_than_a_binding() {
    // k and v are 2,100 × 256 × 64 f32 = 138 MB each, over lavapipe's 128 MiB binding: the
    // wrapper must split batches. A single query keeps the GPU work and the reference cheap.
    let (b, lq, lk, h, d) = (2100, 1, 256, 1, 64);
    assert!((b * lk * h * d * 4) as u64 > 128 << 20);
    let bs: Vec<usize> = (0..b).step_by(97).chain([b - 1]).collect();
    check_sampled("k, v > binding", b, lq, lk, h, d, false, Some(bs), 31);
}

#[test]
fn gpu_kernel_without_subgroups() {
    // The workgroup-memory kernel that real GPUs run: 64-row query tiles, 32-key K/V tiles
    // (70 and 77 keys end mid-tile), 8-wide workgroups for short sequences. Small head dims
    // keep lavapipe's compile of its unrolled loops short.
    let sel = t2v::gpu::AdapterSelector {
        disable_subgroup: true,
        ..t2v::gpu::AdapterSelector::from_env()
    };
    let g = Gpu::new(&sel).unwrap();
    g.set_poison(true);
    assert!(!g.caps.subgroup);
    check_on(&g, "no-subgroup self L=70", 2, 70, 70, 2, 16, false, None, 50);
    check_on(&g, "no-subgroup cross Lq=130 Lk=77", 1, 130, 77, 1, 16, false, None, 51);
    check_on(&g, "no-subgroup causal L=77", 1, 77, 77, 2, 16, true, None, 52);
    check_on(&g, "no-subgroup temporal B=40 L=5 D=3", 40, 5, 5, 2, 3, false, None, 53);
}

#[test]
fn explicit_scale() {
    let (b, l, h, d) = (1, 20, 2, 8);
    let mut r = Rng::new(40);
    let q = r.normals(b * l * h * d, 1.0);
    let k = r.normals(b * l * h * d, 1.0);
    let v = r.normals(b * l * h * d, 1.0);
    let t = |x: &[f32]| upload(&[b, l, h * d], x);
    let y = attention_scaled(&t(&q), &t(&k), &t(&v), h, false, 0.7)
        .unwrap()
        .to_f32()
        .unwrap();
    assert_close(
        "scale=0.7",
        &y,
        &cpu_attention(&q, &k, &v, &[0], l, l, h, d, false, 0.7),
        1e-5,
    );
}

#[test]
fn rejects_bad_shapes() {
    let t = |s: &[usize]| upload(s, &vec![0.0; s.iter().product()]);
    let msg = |r: t2v::Result<t2v::Tensor>| r.unwrap_err().to_string();
    let e = msg(attention(&t(&[2, 10, 64]), &t(&[2, 7, 32]), &t(&[2, 7, 32]), 2, false));
    assert!(e.contains("[2, 10, 64]") && e.contains("[2, 7, 32]"), "{e}");
    let e = msg(attention(&t(&[2, 10, 64]), &t(&[2, 7, 64]), &t(&[2, 8, 64]), 2, false));
    assert!(e.contains("[2, 7, 64]") && e.contains("[2, 8, 64]"), "{e}");
    let e = msg(attention(&t(&[1, 4, 30]), &t(&[1, 4, 30]), &t(&[1, 4, 30]), 4, false));
    assert!(e.contains("4 heads"), "{e}");
    let e = msg(attention(&t(&[1, 4, 30]), &t(&[1, 4, 30]), &t(&[1, 4, 30]), 0, false));
    assert!(e.contains("0 heads"), "{e}");
    let e = msg(attention(&t(&[4, 30]), &t(&[1, 4, 30]), &t(&[1, 4, 30]), 1, false));
    assert!(e.contains("[4, 30]"), "{e}");
    let e = msg(attention(&t(&[1, 4, 8]), &t(&[1, 0, 8]), &t(&[1, 0, 8]), 1, false));
    assert!(e.contains("zero keys"), "{e}");
    let g = gpu();
    let h16 = t2v::Tensor::from_f32_as_f16(&g, &[1, 4, 8], &[0.0; 32]).unwrap();
    let e = msg(attention(&h16, &t(&[1, 4, 8]), &t(&[1, 4, 8]), 1, false));
    assert!(e.contains("f32"), "{e}");
}
