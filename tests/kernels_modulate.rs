//! Wan's modulation kernels against CPU references: the modulated LayerNorm
//! (`LN(x)·(1 + scale) + shift`, affine-free, per-batch or shared vectors, vectors that are views
//! into a bigger modulation tensor as the model passes them), the in-place gated residual
//! `x += a·gate`, and patchify/unpatchify (Conv3d patch order in, channel-fastest order out) at
//! odd grids and patches; bad inputs.

mod common;
use common::*;
use t2v::ops::layer_norm::layer_norm_modulated;
use t2v::ops::layout::{merge_heads, patchify, split_heads, unpatchify};
use t2v::ops::modulate::gated_add_inplace;
use t2v::Tensor;

/// Affine-free LayerNorm (biased variance, f64) · (1 + scale[b]) + shift[b]; rows of batch b are
/// b·per .. (b+1)·per.
fn cpu_modulated(x: &[f32], c: usize, per: usize, shift: &[f32], scale: &[f32], eps: f32) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for (r, row) in x.chunks(c).enumerate() {
        let vb = if shift.len() == c { 0 } else { (r / per) * c };
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
        let rstd = 1.0 / (var + eps as f64).sqrt();
        out.extend(row.iter().enumerate().map(|(i, &v)| (v as f64 - mean) * rstd * (1.0 + scale[vb + i] as f64) + shift[vb + i] as f64));
    }
    out
}

/// A [6, C] (or [B·6, C]) modulation tensor and rows `k` of it for each of `b` batch items, as
/// views: the model takes shift/scale/gate as rows of scale_shift_table + timestep_proj.
fn modulation(r: &mut Rng, b: usize, c: usize) -> (Tensor, Vec<f32>) {
    let host = r.normals(b * 6 * c, 0.7);
    (upload(&[b * 6, c], &host), host)
}

fn rows_of(host: &[f32], b: usize, c: usize, k: usize) -> Vec<f32> {
    (0..b).flat_map(|i| host[(i * 6 + k) * c..(i * 6 + k + 1) * c].to_vec()).collect()
}

const TOL: f64 = 1e-5;

fn check_modulated(b: usize, l: usize, c: usize, offset: f32, seed: u64) {
    let mut r = Rng::new(seed);
    let x: Vec<f32> = r.normals(b * l * c, 1.5).iter().map(|v| v + offset).collect();
    let (m, host) = modulation(&mut r, 1, c);
    // Shared vectors (one timestep for the batch): rows 3 and 4 (c_shift, c_scale), views at an
    // unaligned offset when C is odd.
    let y = layer_norm_modulated(&upload(&[b, l, c], &x), &m.narrow0(3, 1).unwrap(), &m.narrow0(4, 1).unwrap(), 1e-6).unwrap();
    let want = cpu_modulated(&x, c, l, &rows_of(&host, 1, c, 3), &rows_of(&host, 1, c, 4), 1e-6);
    assert_close(&format!("modulated LN shared [{b}, {l}, {c}]"), &y.to_f32().unwrap(), &want, TOL);
    // One vector per batch item.
    let shift = r.normals(b * c, 0.5);
    let scale = r.normals(b * c, 0.5);
    let y = layer_norm_modulated(&upload(&[b, l, c], &x), &upload(&[b, c], &shift), &upload(&[b, c], &scale), 1e-6).unwrap();
    let want = cpu_modulated(&x, c, l, &shift, &scale, 1e-6);
    assert_close(&format!("modulated LN per batch [{b}, {l}, {c}]"), &y.to_f32().unwrap(), &want, TOL);
}

#[test]
fn modulated_layer_norm_shapes() {
    check_modulated(1, 60, 64, 0.0, 1); // vec4 path
    check_modulated(2, 33, 40, 3.0, 2); // per-batch vectors, offset rows
    check_modulated(3, 17, 21, -1.0, 3); // odd width: scalar loads, unaligned views
    check_modulated(1, 5, 1536, 0.5, 4); // Wan 1.3B width
    check_modulated(2, 1, 7, 0.0, 5); // one token per item
}

fn check_gated(b: usize, l: usize, c: usize, per_batch_gate: bool, seed: u64) {
    let mut r = Rng::new(seed);
    let x = r.normals(b * l * c, 1.0);
    let a = r.normals(b * l * c, 1.0);
    let (m, host) = modulation(&mut r, if per_batch_gate { b } else { 1 }, c);
    let xt = upload(&[b, l, c], &x);
    let (gate, gh): (Tensor, Vec<f32>) = if per_batch_gate {
        // Batch items' gates as separate rows of a [B, C] tensor.
        let g = rows_of(&host, b, c, 2);
        (upload(&[b, c], &g), g)
    } else {
        (m.narrow0(5, 1).unwrap(), rows_of(&host, 1, c, 5))
    };
    gated_add_inplace(&xt, &upload(&[b, l, c], &a), &gate).unwrap();
    let want: Vec<f64> = (0..x.len())
        .map(|i| {
            let g = if gh.len() == c { gh[i % c] } else { gh[(i / (l * c)) * c + i % c] };
            x[i] as f64 + a[i] as f64 * g as f64
        })
        .collect();
    assert_close(&format!("gated add [{b}, {l}, {c}] per_batch={per_batch_gate}"), &xt.to_f32().unwrap(), &want, 1e-6);
}

#[test]
fn gated_residual_shapes() {
    check_gated(1, 60, 64, false, 11);
    check_gated(2, 33, 40, true, 12);
    check_gated(3, 17, 21, false, 13);
    check_gated(2, 5, 19, true, 14);
}

#[test]
fn gated_residual_on_a_row_range() {
    // The feed-forward adds its output chunk by chunk into row ranges of x: the rows around the
    // range must stay as they were.
    let (l, c) = (23usize, 12usize);
    let mut r = Rng::new(21);
    let x = r.normals(l * c, 1.0);
    let a = r.normals(7 * c, 1.0);
    let g = r.normals(c, 1.0);
    let xt = upload(&[l, c], &x);
    gated_add_inplace(&xt.narrow0(9, 7).unwrap(), &upload(&[7, c], &a), &upload(&[c], &g)).unwrap();
    let want: Vec<f64> = (0..l * c)
        .map(|i| {
            let row = i / c;
            if (9..16).contains(&row) {
                x[i] as f64 + a[i - 9 * c] as f64 * g[i % c] as f64
            } else {
                x[i] as f64
            }
        })
        .collect();
    assert_close("gated add rows 9..16", &xt.to_f32().unwrap(), &want, 1e-6);
}

/// Conv3d(kernel = stride = patch)'s input patches: out[b, tok, ((c·pt + a)·ph + i)·pw + j].
fn cpu_patchify(x: &[f32], b: usize, c: usize, size: [usize; 3], p: [usize; 3]) -> Vec<f64> {
    let g = [size[0] / p[0], size[1] / p[1], size[2] / p[2]];
    let mut out = Vec::new();
    for bi in 0..b {
        for f in 0..g[0] {
            for h in 0..g[1] {
                for w in 0..g[2] {
                    for ci in 0..c {
                        for a in 0..p[0] {
                            for i in 0..p[1] {
                                for j in 0..p[2] {
                                    let (ff, hh, ww) = (f * p[0] + a, h * p[1] + i, w * p[2] + j);
                                    out.push(x[(((bi * c + ci) * size[0] + ff) * size[1] + hh) * size[2] + ww] as f64);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// diffusers: reshape(B, F', H', W', pt, ph, pw, C).permute(0, 7, 1, 4, 2, 5, 3, 6) → flatten.
fn cpu_unpatchify(x: &[f32], b: usize, c: usize, g: [usize; 3], p: [usize; 3]) -> Vec<f64> {
    let size = [g[0] * p[0], g[1] * p[1], g[2] * p[2]];
    let mut out = vec![0.0f64; b * c * size.iter().product::<usize>()];
    let width = c * p.iter().product::<usize>();
    for bi in 0..b {
        for f in 0..g[0] {
            for h in 0..g[1] {
                for w in 0..g[2] {
                    let tok = (f * g[1] + h) * g[2] + w;
                    for a in 0..p[0] {
                        for i in 0..p[1] {
                            for j in 0..p[2] {
                                for ci in 0..c {
                                    let src = (bi * g.iter().product::<usize>() + tok) * width + ((a * p[1] + i) * p[2] + j) * c + ci;
                                    let (ff, hh, ww) = (f * p[0] + a, h * p[1] + i, w * p[2] + j);
                                    out[(((bi * c + ci) * size[0] + ff) * size[1] + hh) * size[2] + ww] = x[src] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn patchify_and_unpatchify() {
    // (B, C, size, patch): Wan's (1, 2, 2) patch at an odd grid, a 2×2×2 patch, a 1×3×1 patch.
    for (i, (b, c, size, p)) in [(1, 16, [3, 10, 14], [1, 2, 2]), (2, 3, [4, 6, 10], [2, 2, 2]), (1, 5, [2, 9, 3], [1, 3, 1])].into_iter().enumerate() {
        let mut r = Rng::new(30 + i as u64);
        let n = b * c * size.iter().product::<usize>();
        let x = r.normals(n, 1.0);
        let t = upload(&[b, c, size[0], size[1], size[2]], &x);
        let y = patchify(&t, p).unwrap();
        let g = [size[0] / p[0], size[1] / p[1], size[2] / p[2]];
        let l = g.iter().product::<usize>();
        assert_eq!(y.shape(), &[b, l, c * p.iter().product::<usize>()]);
        assert_close(&format!("patchify {size:?} {p:?}"), &y.to_f32().unwrap(), &cpu_patchify(&x, b, c, size, p), 0.0);
        // Unpatchify of rows that are not a patchify output: the channel order differs.
        let rows = r.normals(n, 1.0);
        let u = unpatchify(&upload(&[b, l, c * p.iter().product::<usize>()], &rows), g, p).unwrap();
        assert_eq!(u.shape(), &[b, c, size[0], size[1], size[2]]);
        assert_close(&format!("unpatchify {size:?} {p:?}"), &u.to_f32().unwrap(), &cpu_unpatchify(&rows, b, c, g, p), 0.0);
    }
}

#[test]
fn modulate_ops_reject_bad_inputs() {
    let x = upload(&[2, 3, 8], &[0.0; 48]);
    let e = layer_norm_modulated(&x, &upload(&[3, 8], &[0.0; 24]), &upload(&[3, 8], &[0.0; 24]), 1e-6).unwrap_err().to_string();
    assert!(e.contains("shift must be f32 [8] or [2, 8]"), "{e}");
    let e = layer_norm_modulated(&x, &upload(&[8], &[0.0; 8]), &upload(&[2, 8], &[0.0; 16]), 1e-6).unwrap_err().to_string();
    assert!(e.contains("same shape"), "{e}");
    let e = gated_add_inplace(&x, &upload(&[2, 3, 7], &[0.0; 42]), &upload(&[8], &[0.0; 8])).unwrap_err().to_string();
    assert!(e.contains("one shape"), "{e}");
    let e = gated_add_inplace(&x, &x.reshape(&[2, 3, 8]).unwrap(), &upload(&[8], &[0.0; 8])).unwrap_err().to_string();
    assert!(e.contains("different buffers"), "{e}");
    let e = gated_add_inplace(&x, &upload(&[2, 3, 8], &[0.0; 48]), &upload(&[4], &[0.0; 4])).unwrap_err().to_string();
    assert!(e.contains("gate must be f32"), "{e}");
    let v = upload(&[1, 2, 3, 5, 4], &[0.0; 120]);
    let e = patchify(&v, [1, 2, 2]).unwrap_err().to_string();
    assert!(e.contains("whole multiples of the patch"), "{e}");
    let e = unpatchify(&upload(&[1, 5, 8], &[0.0; 40]), [1, 2, 2], [1, 2, 2]).unwrap_err().to_string();
    assert!(e.contains("(B, 4, 4·C)"), "{e}");
}

#[test]
fn split_and_merge_heads() {
    // [B, L, H·D] → [B·H, L, D] and back, at odd sizes.
    let (b, l, h, d) = (2usize, 13usize, 3usize, 5usize);
    let mut r = Rng::new(40);
    let x = r.normals(b * l * h * d, 1.0);
    let s = split_heads(&upload(&[b, l, h * d], &x), h).unwrap();
    assert_eq!(s.shape(), &[b * h, l, d]);
    let mut want = vec![0.0f64; x.len()];
    for bi in 0..b {
        for li in 0..l {
            for hi in 0..h {
                for di in 0..d {
                    want[((bi * h + hi) * l + li) * d + di] = x[(bi * l + li) * h * d + hi * d + di] as f64;
                }
            }
        }
    }
    assert_close("split_heads", &s.to_f32().unwrap(), &want, 0.0);
    let m = merge_heads(&s, h).unwrap();
    assert_eq!(m.shape(), &[b, l, h * d]);
    assert_close("merge_heads", &m.to_f32().unwrap(), &x.iter().map(|&v| v as f64).collect::<Vec<_>>(), 0.0);
    assert!(split_heads(&upload(&[1, 2, 7], &[0.0; 14]), 2).unwrap_err().to_string().contains("[B, L, 2·D]"));
}

#[test]
fn split_heads_of_a_sequence_larger_than_a_binding() {
    // 70,000 tokens × 4 × 128 f32 = 143 MB in one batch item: each head (36 MB) is one output
    // binding, the input is bound a row range at a time.
    let (l, h, d) = (70_000usize, 4usize, 128usize);
    assert!((l * h * d * 4) as u64 > 128 << 20);
    let x: Vec<f32> = (0..l * h * d).map(|i| (i % 1_000_003) as f32).collect();
    let s = split_heads(&upload(&[1, l, h * d], &x), h).unwrap().to_f32().unwrap();
    for &(li, hi, di) in &[(0usize, 0usize, 0usize), (l - 1, 3, 127), (36_000, 2, 5), (65_535, 1, 64), (12_345, 3, 0)] {
        assert_eq!(s[(hi * l + li) * d + di], x[li * h * d + hi * d + di], "token {li} head {hi} channel {di}");
    }
    let m = merge_heads(&upload(&[h, l, d], &s), h).unwrap().to_f32().unwrap();
    assert!(m == x, "merge_heads(split_heads(x)) != x");
}
