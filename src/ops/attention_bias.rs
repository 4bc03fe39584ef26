//! Attention with a T5 relative-position bias and a key-length mask (shaders/attention_bias.wgsl):
//! what UMT5's encoder self-attention computes, `softmax(q·kᵀ·scale + bias[bucket(j − i)] + mask)·v`
//! per head, on diffusers' [B, L, H·D] layout. The [H, Lq, Lk] bias is never built: the kernel
//! looks each score's bias up from the layer's [buckets, H] table through a per-offset bucket
//! table computed here (transformers' `_relative_position_bucket`, f32 arithmetic and truncation
//! as torch does it). Batches are split when a tensor exceeds one storage binding.

use super::{chunk_ranges, f, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/attention_bias.wgsl");
const TK_MAX: usize = 32;
const WG_MAX: usize = 64;

/// How relative positions map to the rows of a bias table (T5Config's fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub num_buckets: usize,
    pub max_distance: usize,
    /// Encoder (true): separate buckets for keys before and after the query.
    pub bidirectional: bool,
}

impl Buckets {
    /// transformers' `_relative_position_bucket` for `rel` = key position − query position.
    ///
    /// torch computes the logarithmic bins in f32: `max_exact + int(log(n / max_exact) /
    /// log(max_distance / max_exact) · (nb − max_exact))`. Where the exact value is an integer
    /// (n = 16, 32, 64 for UMT5's 16/8/128) torch's f32 result lands on it, not an ulp below
    /// (WAN.md §5.3 lists the thresholds), so this takes the exact floor, computed in f64 and
    /// snapped to an integer within 1e-9.
    pub fn bucket(&self, rel: i64) -> usize {
        let mut nb = self.num_buckets;
        let mut base = 0;
        let n = if self.bidirectional {
            nb /= 2;
            if rel > 0 {
                base = nb;
            }
            rel.unsigned_abs() as usize
        } else {
            (-rel.min(0)) as usize
        };
        let max_exact = nb / 2;
        if n < max_exact {
            return base + n;
        }
        let x = ((n as f64 / max_exact as f64).ln() / (self.max_distance as f64 / max_exact as f64).ln()) * (nb - max_exact) as f64;
        let whole = if (x - x.round()).abs() < 1e-9 { x.round() } else { x.floor() };
        base + (max_exact + whole.max(0.0) as usize).min(nb.saturating_sub(1))
    }
}

/// A layer's relative-position bias: its `relative_attention_bias.weight` [num_buckets, H]
/// (f32) and how offsets map to its rows.
#[derive(Clone, Copy)]
pub struct RelBias<'a> {
    pub table: &'a Tensor,
    pub buckets: Buckets,
}

/// UMT5 self-attention: q [B, Lq, H·D], k and v [B, Lk, H·D] (f32), `key_lens` the number of
/// valid (unpadded) keys of each batch row, 1..=Lk (None: all Lk). `scale` multiplies q·kᵀ
/// (UMT5: 1).
pub fn attention_rel_bias(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, bias: RelBias, key_lens: Option<&[usize]>, scale: f32) -> Result<Tensor> {
    let RelBias { table, buckets } = bias;
    let op = "attention_rel_bias";
    for (name, t) in [("q", q), ("k", k), ("v", v)] {
        if t.shape().len() != 3 || t.dtype() != DType::F32 {
            return shape_err(op, format!("{name} must be f32 [B, L, H·D], got {:?} {}", t.shape(), t.dtype().name()));
        }
    }
    let (b, lq, hd) = (q.dim(0), q.dim(1), q.dim(2));
    let lk = k.dim(1);
    if k.shape() != v.shape() || k.dim(0) != b || k.dim(2) != hd {
        return shape_err(op, format!("q {:?} needs k and v [{b}, Lk, {hd}], got {:?} and {:?}", q.shape(), k.shape(), v.shape()));
    }
    if heads == 0 || hd == 0 || !hd.is_multiple_of(heads) {
        return shape_err(op, format!("{hd} channels of q {:?} do not split into {heads} heads", q.shape()));
    }
    if buckets.num_buckets == 0 || table.shape() != [buckets.num_buckets, heads] || table.dtype() != DType::F32 {
        return shape_err(op, format!("bias table must be f32 [{}, {heads}], got {:?} {}", buckets.num_buckets, table.shape(), table.dtype().name()));
    }
    if !scale.is_finite() {
        return shape_err(op, format!("softmax scale must be finite, got {scale}"));
    }
    let lens: Vec<f32> = match key_lens {
        Some(l) => {
            if l.len() != b {
                return shape_err(op, format!("{} key lengths for a batch of {b}", l.len()));
            }
            if let Some(bad) = l.iter().find(|&&n| n == 0 || n > lk) {
                return shape_err(op, format!("key length {bad} is outside 1..={lk}"));
            }
            l.iter().map(|&n| n as f32).collect()
        }
        None => vec![lk as f32; b],
    };
    let gpu = q.gpu();
    let out = Tensor::empty(gpu, q.shape(), DType::F32)?;
    if b == 0 || lq == 0 {
        return Ok(out);
    }
    if lk == 0 {
        return shape_err(op, format!("softmax over zero keys: k {:?}", k.shape()));
    }
    // One bucket per offset j − i = −(Lq−1) ..= Lk−1.
    let offsets: Vec<f32> = (0..lq + lk - 1).map(|o| buckets.bucket(o as i64 - (lq as i64 - 1)) as f32).collect();
    let bucket_t = Tensor::from_f32(gpu, &[offsets.len()], &offsets)?;
    let lens_t = Tensor::from_f32(gpu, &[b], &lens)?;
    let d = hd / heads;
    let d4 = d.div_ceil(4);
    let smem = gpu.limits.max_compute_workgroup_storage_size as usize;
    let tk = TK_MAX.min(smem / (2 * 16 * d4)) / 4 * 4;
    if tk == 0 {
        return shape_err(op, format!("head dim {d} is too large: 4 keys of K and V need more than {smem} B of workgroup memory"));
    }
    let wg = lq.div_ceil(8).clamp(1, WG_MAX / 8) * 8;
    let defines = [("D", d.to_string()), ("WG", wg.to_string()), ("TK", tk.to_string())];
    let kern = gpu.kernel("attention_bias", SRC, "attention_bias", &defines)?;
    let q_tiles = lq.div_ceil(wg);
    let tw = table.whole(op)?;
    let bw = bucket_t.whole(op)?;
    let lw = lens_t.whole(op)?;
    let per_batch = 4 * (lq.max(lk) * hd) as u64;
    let max_batches = (u32::MAX as usize / (heads * q_tiles)).max(1);
    for (lo, hi) in chunk_ranges(b, units_per_binding(gpu, per_batch).min(max_batches)) {
        let qw = q.window(lo * lq * hd, hi * lq * hd, op)?;
        let kw = k.window(lo * lk * hd, hi * lk * hd, op)?;
        let vw = v.window(lo * lk * hd, hi * lk * hd, op)?;
        let ow = out.window(lo * lq * hd, hi * lq * hd, op)?;
        let n_groups = (hi - lo) * heads * q_tiles;
        let params = [
            lq as u32,
            lk as u32,
            heads as u32,
            q_tiles as u32,
            n_groups as u32,
            qw.shift,
            kw.shift,
            vw.shift,
            ow.shift,
            f(scale * std::f32::consts::LOG2_E),
            lo as u32,
            tw.shift,
            bw.shift,
            lw.shift,
            0,
            0,
        ];
        let binds = vec![
            (1, qw.binding),
            (2, kw.binding),
            (3, vw.binding),
            (4, ow.binding),
            (5, tw.binding.clone()),
            (6, bw.binding.clone()),
            (7, lw.binding.clone()),
        ];
        gpu.dispatch(&kern, &params, binds, groups(gpu, n_groups));
    }
    Ok(out)
}
