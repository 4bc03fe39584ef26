//! Scaled dot-product attention (shaders/attention.wgsl), torch's
//! `F.scaled_dot_product_attention` on diffusers' layout: q [B, Lq, H·D], k and v [B, Lk, H·D]
//! (heads interleaved as H blocks of D channels, as right after to_q / to_k / to_v), output
//! [B, Lq, H·D]. Online softmax: the Lq×Lk scores never exist in memory. Batches are split into
//! chunks when a tensor exceeds one storage binding.

use super::{chunk_ranges, f, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/attention.wgsl");

/// Most keys staged per K/V tile; fewer when 2·TK·D floats would not fit the device's
/// workgroup memory.
const TK_MAX: usize = 32;
/// Keys per online-softmax step: one accumulator rescale and one pair of exp2 per KB keys.
const KB: usize = 8;
/// Invocations per workgroup for long query sequences (one or more query rows each).
const WG_MAX: usize = 64;

/// `softmax(q·kᵀ / √D [+ causal mask]) · v` per head; causal lets query i see keys j ≤ i.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
    let hd = q.shape().last().copied().unwrap_or(0);
    let d = if heads > 0 { hd / heads } else { 0 };
    attention_scaled(q, k, v, heads, causal, 1.0 / (d.max(1) as f32).sqrt())
}

/// [`attention`] with an explicit softmax scale (torch's `scale=` argument).
pub fn attention_scaled(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool, scale: f32) -> Result<Tensor> {
    let op = "attention";
    for (name, t) in [("q", q), ("k", k), ("v", v)] {
        if t.shape().len() != 3 {
            return shape_err(op, format!("{name} must be [B, L, H·D], got {:?}", t.shape()));
        }
        if t.dtype() != DType::F32 {
            return shape_err(op, format!("{name} must be f32, got {}", t.dtype().name()));
        }
    }
    let (b, lq, hd) = (q.dim(0), q.dim(1), q.dim(2));
    let lk = k.dim(1);
    if k.shape() != v.shape() {
        return shape_err(op, format!("k {:?} and v {:?} must have the same shape", k.shape(), v.shape()));
    }
    if k.dim(0) != b || k.dim(2) != hd {
        return shape_err(op, format!("q {:?} needs k and v [{b}, Lk, {hd}], got {:?}", q.shape(), k.shape()));
    }
    if heads == 0 || hd % heads != 0 || hd == 0 {
        return shape_err(op, format!("{hd} channels of q {:?} do not split into {heads} heads", q.shape()));
    }
    if !scale.is_finite() {
        return shape_err(op, format!("softmax scale must be finite, got {scale}"));
    }
    let out = Tensor::empty(q.gpu(), q.shape(), DType::F32)?;
    if b == 0 || lq == 0 {
        return Ok(out);
    }
    if lk == 0 {
        return shape_err(op, format!("softmax over zero keys: k {:?} has no tokens for q {:?}", k.shape(), q.shape()));
    }
    let gpu = q.gpu();
    let d = hd / heads;
    let d4 = d.div_ceil(4);
    let smem = gpu.limits.max_compute_workgroup_storage_size as usize;
    let tk = TK_MAX.min(smem / (2 * 16 * d4)) / KB * KB;
    if tk == 0 {
        return shape_err(op, format!("head dim {d} is too large: {KB} keys of K and V need more than {smem} B of workgroup memory"));
    }
    // Short query sequences (temporal attention: Lq = frames) get a workgroup just big enough,
    // in whole 8-lane groups, instead of idling most of a 64-wide one.
    let (wg, qb) = if lq >= WG_MAX { (WG_MAX, 1) } else { (lq.div_ceil(8) * 8, 1) };
    let defines = [
        ("D", d.to_string()),
        ("WG", wg.to_string()),
        ("QB", qb.to_string()),
        ("TK", tk.to_string()),
        ("KB", KB.to_string()),
        ("STAGE", std::env::var("T2V_ATTN_STAGE").unwrap_or("1".into())),
    ];
    let kern = gpu.kernel("attention", SRC, "attention", &defines)?;
    let q_tiles = lq.div_ceil(wg * qb);
    let per_batch = 4 * (lq.max(lk) * hd) as u64;
    // One pass over the whole grid must also index within u32 workgroups.
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
            causal as u32,
        ];
        gpu.dispatch(
            &kern,
            &params,
            vec![(1, qw.binding), (2, kw.binding), (3, vw.binding), (4, ow.binding)],
            groups(gpu, n_groups),
        );
    }
    Ok(out)
}

/// Benchmark cases at Zeroscope 576×320 shapes (latent 72×40 = 2,880 tokens at level 0).
pub(crate) fn bench_cases(gpu: &std::sync::Arc<crate::gpu::Gpu>, frames: usize) -> Result<Vec<crate::bench::Case>> {
    use crate::bench::{rand_tensor, Case};
    let f = frames.max(1);
    // (label, B, Lq, Lk, heads, D, causal)
    let shapes = [
        ("spatial self L0", f, 2880, 2880, 5, 64, false),
        ("cross L0", f, 2880, 77, 5, 64, false),
        ("temporal", 2880, 24, 24, 5, 64, false),
        ("clip causal", 1, 77, 77, 16, 64, true),
    ];
    let mut cases = Vec::new();
    for (i, &(label, b, lq, lk, h, d, causal)) in shapes.iter().enumerate() {
        let seed = 10 * i as u64;
        let q = rand_tensor(gpu, &[b, lq, h * d], DType::F32, seed + 1)?;
        let k = rand_tensor(gpu, &[b, lk, h * d], DType::F32, seed + 2)?;
        let v = rand_tensor(gpu, &[b, lk, h * d], DType::F32, seed + 3)?;
        let pairs = (b * h * lq * lk) as f64;
        let flops = 4.0 * pairs * d as f64 * if causal { 0.5 } else { 1.0 };
        let bytes = 4.0 * (2 * b * lq * h * d + 2 * b * lk * h * d) as f64;
        cases.push(Case::new(
            "attention",
            format!("{label} B={b} Lq={lq} Lk={lk} H={h} D={d}{}", if causal { " causal" } else { "" }),
            flops,
            bytes,
            move || attention(&q, &k, &v, h, causal).map(drop),
        ));
    }
    Ok(cases)
}
