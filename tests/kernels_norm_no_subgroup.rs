//! GroupNorm and LayerNorm on a device that reports no subgroup operations: the
//! workgroup-memory reduction paths that GPUs without subgroups (and older drivers) take.

mod common;
use common::{assert_close, Rng};
use t2v::gpu::AdapterSelector;
use t2v::ops::{group_norm::group_norm, layer_norm::layer_norm};
use t2v::{Gpu, Tensor};

#[test]
fn norms_without_subgroups() {
    let g = Gpu::new(&AdapterSelector { disable_subgroup: true, ..AdapterSelector::from_env() }).unwrap();
    g.set_poison(true);
    assert!(!g.caps.subgroup);
    let mut r = Rng::new(11);

    // LayerNorm over rows.
    let (rows, c) = (77, 33);
    let x: Vec<f32> = r.normals(rows * c, 2.0).iter().map(|v| v + 5.0).collect();
    let w = r.normals(c, 1.0);
    let b = r.normals(c, 1.0);
    let up = |s: &[usize], v: &[f32]| Tensor::from_f32(&g, s, v).unwrap();
    let y = layer_norm(&up(&[rows, c], &x), &up(&[c], &w), &up(&[c], &b), 1e-5).unwrap();
    let mut want = Vec::new();
    for row in x.chunks(c) {
        let m = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = row.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / c as f64;
        want.extend(row.iter().enumerate().map(|(i, &v)| (v as f64 - m) / (var + 1e-5).sqrt() * w[i] as f64 + b[i] as f64));
    }
    assert_close("layer_norm (no subgroups)", &y.to_f32().unwrap(), &want, 1e-5);

    // GroupNorm per image, 4 groups, with SiLU.
    let (n, c, s, groups) = (2, 16, 45, 4);
    let x: Vec<f32> = r.normals(n * c * s, 1.5).iter().map(|v| v - 2.0).collect();
    let w = r.normals(c, 1.0);
    let b = r.normals(c, 1.0);
    let y = group_norm(&up(&[n, c, 5, 9], &x), &up(&[c], &w), &up(&[c], &b), groups, 1e-6, true).unwrap();
    let cpg = c / groups;
    let mut want = vec![0.0f64; x.len()];
    for i in 0..n {
        for gi in 0..groups {
            let seg = &x[(i * c + gi * cpg) * s..(i * c + (gi + 1) * cpg) * s];
            let m = seg.iter().map(|&v| v as f64).sum::<f64>() / seg.len() as f64;
            let var = seg.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / seg.len() as f64;
            for (j, &v) in seg.iter().enumerate() {
                let ch = gi * cpg + j / s;
                let h = (v as f64 - m) / (var + 1e-6).sqrt() * w[ch] as f64 + b[ch] as f64;
                want[(i * c + gi * cpg) * s + j] = h / (1.0 + (-h).exp());
            }
        }
    }
    assert_close("group_norm+silu (no subgroups)", &y.to_f32().unwrap(), &want, 1e-5);
}
