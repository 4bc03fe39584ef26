//! Attention with a T5 relative-position bias and key-length mask against an f64 CPU reference
//! that builds the full [H, Lq, Lk] bias the kernel never materialises; the bucket function
//! against transformers' thresholds (WAN.md §5.3).

mod common;
use common::*;
use t2v::ops::attention_bias::{attention_rel_bias, Buckets, RelBias};

const UMT5: Buckets = Buckets { num_buckets: 32, max_distance: 128, bidirectional: true };

#[test]
fn buckets_match_transformers_thresholds() {
    // First |rel| reaching each logarithmic bucket, from running transformers 5.23's
    // _relative_position_bucket (WAN.md §5.3).
    let first = [(8, 8), (12, 9), (16, 10), (23, 11), (32, 12), (46, 13), (64, 14), (91, 15)];
    for n in 0..8i64 {
        assert_eq!(UMT5.bucket(-n), n as usize);
        assert_eq!(UMT5.bucket(n), if n == 0 { 0 } else { 16 + n as usize });
    }
    for (n, b) in first {
        assert_eq!(UMT5.bucket(-n), b, "rel −{n}");
        assert_eq!(UMT5.bucket(-(n - 1)), b - 1, "rel −{}", n - 1);
        assert_eq!(UMT5.bucket(n), 16 + b, "rel +{n}");
    }
    assert_eq!(UMT5.bucket(511), 31);
    assert_eq!(UMT5.bucket(-511), 15);
    // Decoder (unidirectional): future keys share bucket 0.
    let causal = Buckets { bidirectional: false, ..UMT5 };
    assert_eq!(causal.bucket(5), 0);
    assert_eq!(causal.bucket(-5), 5);
}

/// softmax(scale·q·kᵀ + bias[bucket(j − i), h], keys j < len) · v in f64.
#[allow(clippy::too_many_arguments)]
fn cpu(q: &[f32], k: &[f32], v: &[f32], b: usize, lq: usize, lk: usize, heads: usize, d: usize, table: &[f32], bk: Buckets, lens: &[usize], scale: f64) -> Vec<f64> {
    let hd = heads * d;
    let mut out = vec![0.0; b * lq * hd];
    for bi in 0..b {
        for h in 0..heads {
            for i in 0..lq {
                let qi = &q[(bi * lq + i) * hd + h * d..][..d];
                let s: Vec<f64> = (0..lens[bi])
                    .map(|j| {
                        let kj = &k[(bi * lk + j) * hd + h * d..][..d];
                        let dot: f64 = qi.iter().zip(kj).map(|(a, b)| *a as f64 * *b as f64).sum();
                        scale * dot + table[bk.bucket(j as i64 - i as i64) * heads + h] as f64
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                let sum: f64 = w.iter().sum();
                for (j, wj) in w.iter().enumerate() {
                    let vj = &v[(bi * lk + j) * hd + h * d..][..d];
                    for c in 0..d {
                        out[(bi * lq + i) * hd + h * d + c] += wj / sum * vj[c] as f64;
                    }
                }
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn check(name: &str, b: usize, lq: usize, lk: usize, heads: usize, d: usize, bk: Buckets, lens: Option<Vec<usize>>, scale: f32, seed: u64) {
    let mut r = Rng::new(seed);
    let hd = heads * d;
    let q = r.normals(b * lq * hd, 0.5);
    let k = r.normals(b * lk * hd, 0.5);
    let v = r.normals(b * lk * hd, 1.0);
    // Bias values of a few units, as trained T5 tables have.
    let table = r.normals(bk.num_buckets * heads, 3.0);
    let (qt, kt, vt) = (upload(&[b, lq, hd], &q), upload(&[b, lk, hd], &k), upload(&[b, lk, hd], &v));
    let tt = upload(&[bk.num_buckets, heads], &table);
    let y = attention_rel_bias(&qt, &kt, &vt, heads, RelBias { table: &tt, buckets: bk }, lens.as_deref(), scale).unwrap();
    assert_eq!(y.shape(), &[b, lq, hd]);
    let lens = lens.unwrap_or(vec![lk; b]);
    let want = cpu(&q, &k, &v, b, lq, lk, heads, d, &table, bk, &lens, scale as f64);
    // f32 dot products over D ≤ 64 and an online softmax over ≤ 512 keys: a few 1e-7.
    assert_close(name, &y.to_f32().unwrap(), &want, 1e-5);
}

#[test]
fn tiny_umt5_shapes() {
    let tiny = Buckets { num_buckets: 8, max_distance: 16, bidirectional: true };
    check("tiny, padded keys", 2, 16, 16, 4, 8, tiny, Some(vec![5, 16]), 1.0, 1);
    check("one key", 1, 7, 7, 2, 8, tiny, Some(vec![1]), 1.0, 2);
    check("odd head width", 3, 9, 9, 3, 7, tiny, Some(vec![9, 2, 4]), 1.0, 3);
    check("Lq != Lk, scaled", 2, 5, 11, 2, 12, tiny, None, 0.3, 4);
    check("odd buckets", 1, 40, 40, 2, 4, Buckets { num_buckets: 7, max_distance: 20, bidirectional: true }, Some(vec![33]), 1.0, 5);
}

#[test]
fn umt5_length_512() {
    // Every bucket of the real configuration (offsets up to ±511), D = 64, a prompt of 77
    // tokens padded to 512 and a full one; the query tile spans several workgroups.
    check("L=512 H=2 D=64", 2, 512, 512, 2, 64, UMT5, Some(vec![77, 512]), 1.0, 6);
}

#[test]
fn rejects_bad_inputs() {
    let x = upload(&[1, 4, 8], &[0.0; 32]);
    let table = upload(&[8, 2], &[0.0; 16]);
    let bk = Buckets { num_buckets: 8, max_distance: 16, bidirectional: true };
    let e = attention_rel_bias(&x, &x, &x, 2, RelBias { table: &table, buckets: bk }, Some(&[0]), 1.0).unwrap_err().to_string();
    assert!(e.contains("key length 0"), "{e}");
    let e = attention_rel_bias(&x, &x, &x, 2, RelBias { table: &table, buckets: bk }, Some(&[5]), 1.0).unwrap_err().to_string();
    assert!(e.contains("key length 5"), "{e}");
    let e = attention_rel_bias(&x, &x, &x, 2, RelBias { table: &table, buckets: bk }, Some(&[1, 2]), 1.0).unwrap_err().to_string();
    assert!(e.contains("2 key lengths"), "{e}");
    let e = attention_rel_bias(&x, &x, &x, 4, RelBias { table: &table, buckets: bk }, None, 1.0).unwrap_err().to_string();
    assert!(e.contains("bias table must be f32 [8, 4]"), "{e}");
    let e = attention_rel_bias(&x, &x, &x, 3, RelBias { table: &table, buckets: bk }, None, 1.0).unwrap_err().to_string();
    assert!(e.contains("do not split into 3 heads"), "{e}");
}
