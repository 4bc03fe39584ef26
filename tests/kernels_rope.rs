//! Wan's 3-D rotary embedding against a CPU reference written from diffusers 0.42.1's
//! `WanRotaryPosEmbed` (per-axis f64 tables, repeat-interleaved, concatenated, split, gathered
//! per token) and `apply_rotary_emb` (interleaved pairs): the host tables bit for bit, the
//! in-place kernel at awkward grids, head widths and batch sizes, an input larger than a binding,
//! and bad inputs.

mod common;
use common::*;
use t2v::ops::rope::{rope_inplace, rope_reference, RopeTables};

/// diffusers' freqs_cos/freqs_sin buffers [max_len, D] (f32) and the per-token gather for a grid.
fn diffusers_tables(d: usize, grid: [usize; 3], max_len: usize) -> (Vec<f32>, Vec<f32>) {
    let hw = 2 * (d / 6);
    let dims = [d - 2 * hw, hw, hw];
    // get_1d_rotary_pos_embed(dim, max_len, 10000, use_real, repeat_interleave_real, f64).
    let axis = |dim: usize| -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let freqs: Vec<f64> = (0..dim).step_by(2).map(|k| 1.0 / 10000f64.powf(k as f64 / dim as f64)).collect();
        let mut cos = Vec::new();
        let mut sin = Vec::new();
        for pos in 0..max_len {
            cos.push(freqs.iter().flat_map(|f| [(pos as f64 * f).cos() as f32; 2]).collect());
            sin.push(freqs.iter().flat_map(|f| [(pos as f64 * f).sin() as f32; 2]).collect());
        }
        (cos, sin)
    };
    let tabs: Vec<_> = dims.iter().map(|&dim| axis(dim)).collect();
    let (mut cos, mut sin) = (Vec::new(), Vec::new());
    for f in 0..grid[0] {
        for h in 0..grid[1] {
            for w in 0..grid[2] {
                for (a, pos) in [f, h, w].into_iter().enumerate() {
                    cos.extend_from_slice(&tabs[a].0[pos]);
                    sin.extend_from_slice(&tabs[a].1[pos]);
                }
            }
        }
    }
    (cos, sin)
}

/// apply_rotary_emb on x [B, L, H·D] with per-token tables [L, D], in f64.
fn cpu_rope(x: &[f32], cos: &[f32], sin: &[f32], l: usize, heads: usize, d: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; x.len()];
    for (r, row) in x.chunks(heads * d).enumerate() {
        let tok = r % l;
        for h in 0..heads {
            for j in 0..d / 2 {
                let (x1, x2) = (row[h * d + 2 * j] as f64, row[h * d + 2 * j + 1] as f64);
                let c = cos[tok * d + 2 * j] as f64;
                let s = sin[tok * d + 2 * j + 1] as f64;
                out[r * heads * d + h * d + 2 * j] = x1 * c - x2 * s;
                out[r * heads * d + h * d + 2 * j + 1] = x1 * s + x2 * c;
            }
        }
    }
    out
}

#[test]
fn host_tables_match_diffusers_bit_for_bit() {
    for (d, grid) in [(128, [21, 3, 5]), (12, [3, 4, 5]), (16, [2, 7, 3]), (6, [4, 1, 2]), (20, [1, 9, 11]), (2, [3, 2, 2])] {
        let (cos, sin) = rope_reference(d, grid).unwrap();
        let (wc, ws) = diffusers_tables(d, grid, 32);
        assert_eq!(cos.len(), wc.len(), "D={d} grid {grid:?}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(bits(&cos) == bits(&wc), "cos differs at D={d} grid {grid:?}");
        assert!(bits(&sin) == bits(&ws), "sin differs at D={d} grid {grid:?}");
    }
}

// Each output is two f32 products and a sum (≤ ~2 ulp); relative L2 lands near 1e-7.
const TOL: f64 = 1e-6;

fn check(b: usize, grid: [usize; 3], heads: usize, d: usize, seed: u64) {
    let l = grid.iter().product::<usize>();
    let mut r = Rng::new(seed);
    let x = r.normals(b * l * heads * d, 1.0);
    let t = upload(&[b, l, heads * d], &x);
    let tables = RopeTables::new(&gpu(), d, grid, 1024).unwrap();
    rope_inplace(&t, &tables, heads).unwrap();
    let (cos, sin) = diffusers_tables(d, grid, grid.iter().copied().max().unwrap_or(1));
    let want = cpu_rope(&x, &cos, &sin, l, heads, d);
    assert_close(&format!("rope B={b} grid {grid:?} {heads}×{d}"), &t.to_f32().unwrap(), &want, TOL);
}

#[test]
fn rope_shapes() {
    check(1, [21, 3, 5], 2, 128, 1); // Wan's head width, 21 latent frames
    check(2, [3, 5, 7], 3, 16, 2); // batch 2: tokens restart per item
    check(1, [5, 3, 2], 2, 12, 3); // the tiny fixture's head width (4/4/4)
    check(3, [1, 1, 1], 1, 6, 4); // one token: the identity rotation at position 0
    check(1, [2, 9, 11], 5, 20, 5); // t 12 / h 4 / w 4, odd grid
    check(1, [4, 2, 3], 1, 2, 6); // D = 2: time only (h/w dims 0)
}

#[test]
fn rope_input_larger_than_a_binding() {
    // 70,000 tokens × 4 heads × 128 f32 = 143 MB: over lavapipe's 128 MiB binding, so rows are
    // split and the token index must continue across chunks. Checked on sampled rows.
    let (grid, heads, d) = ([1usize, 250, 280], 4usize, 128usize);
    let l = grid.iter().product::<usize>();
    let width = heads * d;
    assert!((l * width * 4) as u64 > 128 << 20);
    let mut r = Rng::new(9);
    let x: Vec<f32> = (0..l * width).map(|_| r.uniform() - 0.5).collect();
    let t = upload(&[1, l, width], &x);
    let tables = RopeTables::new(&gpu(), d, grid, 1024).unwrap();
    rope_inplace(&t, &tables, heads).unwrap();
    let y = t.to_f32().unwrap();
    let (cos, sin) = diffusers_tables(d, grid, 280);
    let per_chunk = ((128usize << 20) - 512) / (4 * width);
    let picks: Vec<usize> = (0..l).step_by(997).chain([per_chunk - 1, per_chunk, per_chunk + 1, l - 1]).collect();
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for &i in &picks {
        got.extend_from_slice(&y[i * width..(i + 1) * width]);
        let row = cpu_rope(&x[i * width..(i + 1) * width], &cos[i * d..(i + 1) * d], &sin[i * d..(i + 1) * d], 1, heads, d);
        want.extend(row);
    }
    assert_close("rope > binding", &got, &want, TOL);
    assert!(y.iter().all(|v| v.is_finite()));
}

#[test]
fn rope_rejects_bad_inputs() {
    let e = RopeTables::new(&gpu(), 7, [1, 1, 1], 1024).err().unwrap().to_string();
    assert!(e.contains("attention_head_dim 7 must be even"), "{e}");
    let e = RopeTables::new(&gpu(), 12, [2, 40, 3], 32).err().unwrap().to_string();
    assert!(e.contains("rope_max_seq_len 32") && e.contains("40"), "{e}");
    let tables = RopeTables::new(&gpu(), 12, [2, 2, 2], 32).unwrap();
    let x = upload(&[1, 7, 24], &[0.0; 168]);
    let e = rope_inplace(&x, &tables, 2).unwrap_err().to_string();
    assert!(e.contains("[B, 8, 2·12]"), "{e}");
    let x = upload(&[1, 8, 24], &[0.0; 192]);
    let e = rope_inplace(&x, &tables, 3).unwrap_err().to_string();
    assert!(e.contains("3·12"), "{e}");
}
