//! Scaled dot-product attention (shaders/attention.wgsl), torch's
//! `F.scaled_dot_product_attention` on diffusers' layout: q [B, Lq, H·D], k and v [B, Lk, H·D]
//! (heads interleaved as H blocks of D channels, as right after to_q / to_k / to_v), output
//! [B, Lq, H·D]. Online softmax: the Lq×Lk scores never exist in memory. Batches are split into
//! chunks when a tensor exceeds one storage binding.
//!
//! Two kernel variants (the shader header says why):
//! - `attention` (GPUs): one query row per invocation, K/V tiles staged in workgroup memory.
//! - `attention_rows4` (CPU drivers with a fixed subgroup size, D ≤ 256): four query rows per
//!   invocation, K/V rows shared through subgroup shuffles.
//!
//! Measured on lavapipe (Mesa 25.0.7, LLVM 15, 2 cores shared with other builds, so ±30%),
//! release build, `crate::bench` timing, GFLOP/s at the bench shapes for `attention_rows4`
//! [`attention`, forced with T2V_NO_SUBGROUP=1]: spatial self L0 (B=1, L=2880, 5×64) 18.6
//! [2.1]; cross L0 (Lk=77) 13.8 [1.9]; temporal (B=2880, L=24) 7.5–11.5 [1.8]; CLIP causal
//! (L=77, 16×64) 7.4–9.6 [0.6]. How rows4 got there (self L0): one row per invocation reading
//! workgroup memory 1.3–2.4; K/V through subgroup shuffles with 4 rows per invocation ~9;
//! rows as vec4 lanes with one unrollable nest per 4 channels and 4 keys 17–19.

use super::{chunk_ranges, f, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::gpu::Gpu;
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/attention.wgsl");
const COOP_SRC: &str = include_str!("../../shaders/attention_coop.wgsl");

/// `attention`: keys staged per K/V tile, fewer when 2·TK·D floats would not fit the
/// device's workgroup memory (D = 128 fits 32 keys in lavapipe's 32 KiB).
const TK_MAX: usize = 32;
/// `attention`: invocations (= query rows) per workgroup for long query sequences.
const WG_MAX: usize = 64;
/// `attention_rows4` is written out for at most 64 vec4 channels (D ≤ 256); larger heads
/// (the VAE's single 512-channel head) use `attention`.
const ROWS4_MAX_D4: usize = 64;

/// `softmax(q·kᵀ / √D [+ causal mask]) · v` per head; causal lets query i see keys j ≤ i.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, causal: bool) -> Result<Tensor> {
    let hd = q.shape().last().copied().unwrap_or(0);
    let d = hd.checked_div(heads).unwrap_or(0);
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
        return shape_err(
            op,
            format!("k {:?} and v {:?} must have the same shape", k.shape(), v.shape()),
        );
    }
    if k.dim(0) != b || k.dim(2) != hd {
        return shape_err(
            op,
            format!("q {:?} needs k and v [{b}, Lk, {hd}], got {:?}", q.shape(), k.shape()),
        );
    }
    if heads == 0 || hd == 0 || !hd.is_multiple_of(heads) {
        return shape_err(
            op,
            format!("{hd} channels of q {:?} do not split into {heads} heads", q.shape()),
        );
    }
    if !scale.is_finite() {
        return shape_err(op, format!("softmax scale must be finite, got {scale}"));
    }
    if lk == 0 && b > 0 && lq > 0 {
        return shape_err(
            op,
            format!(
                "softmax over zero keys: k {:?} has no tokens for q {:?}",
                k.shape(),
                q.shape()
            ),
        );
    }
    let out = Tensor::empty(q.gpu(), q.shape(), DType::F32)?;
    if b == 0 || lq == 0 {
        return Ok(out);
    }
    let gpu = q.gpu();
    if let Some(sub) = coop_subgroups(gpu, hd / heads) {
        return attention_coop(q, k, v, out, heads, causal, scale, sub);
    }
    let var = Variant::pick(gpu, hd / heads, lq)?;
    let kern = gpu.kernel("attention", SRC, var.entry, &var.defines)?;
    dispatch_tiles(&kern, q, k, v, out, heads, causal, scale, var.wg * var.rows)
}

/// Records `kern` over every (batch, head, tile of `rows_per_group` query rows), in batch
/// chunks that fit a binding; both attention kernels take these parameters.
#[allow(clippy::too_many_arguments)]
fn dispatch_tiles(kern: &std::sync::Arc<crate::gpu::Kernel>, q: &Tensor, k: &Tensor, v: &Tensor, out: Tensor, heads: usize, causal: bool, scale: f32, rows_per_group: usize) -> Result<Tensor> {
    let op = "attention";
    let gpu = q.gpu();
    let (b, lq, hd) = (q.dim(0), q.dim(1), q.dim(2));
    let lk = k.dim(1);
    let q_tiles = lq.div_ceil(rows_per_group);
    let per_batch = 4 * (lq.max(lk) * hd) as u64;
    // The grid index is a u32 in the kernel.
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
            (hd / heads).div_ceil(4) as u32,
        ];
        // QKᵀ and PV: 2·lq·lk·d each per head (causal masking not discounted).
        gpu.flops_hint(4.0 * (hi - lo) as f64 * lq as f64 * lk as f64 * hd as f64);
        gpu.dispatch(kern, &params, vec![(1, qw.binding), (2, kw.binding), (3, vw.binding), (4, ow.binding)], groups(gpu, n_groups));
    }
    Ok(out)
}

/// Subgroups per workgroup for the matrix-unit kernel at head width `d` (up to 4, as many as the
/// workgroup memory holds), or None to use the FMA kernels.
fn coop_subgroups(gpu: &Gpu, d: usize) -> Option<usize> {
    let s = gpu.caps.coop? as usize;
    let dp = d.div_ceil(s) * s;
    let shared = 2 * s * dp * 2;
    let per_subgroup = s * dp * 2 + s * dp * 4 + s * s * 6 + 3 * s * 4;
    let limit = gpu.limits.max_compute_workgroup_storage_size as usize;
    let n = limit.checked_sub(shared)? / per_subgroup;
    (n >= 1).then_some(n.min(4))
}

/// shaders/attention_coop.wgsl: Q·Kᵀ and P·V on cooperative matrices.
#[allow(clippy::too_many_arguments)]
fn attention_coop(q: &Tensor, k: &Tensor, v: &Tensor, out: Tensor, heads: usize, causal: bool, scale: f32, nsg: usize) -> Result<Tensor> {
    let gpu = q.gpu();
    let hd = q.dim(2);
    let s = gpu.caps.coop.unwrap_or(8) as usize;
    let sg = gpu.caps.subgroup_max.max(1) as usize;
    let defines = [("S", s.to_string()), ("D", (hd / heads).to_string()), ("NSG", nsg.to_string()), ("SG", sg.to_string()), ("WG", (nsg * sg).to_string())];
    let kern = gpu.kernel("attention_coop", COOP_SRC, "attention_coop", &defines)?;
    dispatch_tiles(&kern, q, k, v, out, heads, causal, scale, nsg * s)
}

/// A kernel entry point with its specialisation.
struct Variant {
    entry: &'static str,
    /// Invocations per workgroup.
    wg: usize,
    /// Query rows per invocation.
    rows: usize,
    defines: Vec<(&'static str, String)>,
}

impl Variant {
    fn pick(gpu: &Gpu, d: usize, lq: usize) -> Result<Variant> {
        let d4 = d.div_ceil(4);
        let sg = gpu.info.subgroup_min_size as usize;
        let smem = gpu.limits.max_compute_workgroup_storage_size as usize;
        // Four rows per invocation would spill on a GPU (4·2·D registers), and the shuffles
        // only beat workgroup-memory broadcasts where those cost a load per lane.
        let rows4 = gpu.info.device_type == wgpu::DeviceType::Cpu
            && gpu.caps.subgroup
            && sg == gpu.info.subgroup_max_size as usize
            && (4..=64).contains(&sg)
            && sg.is_multiple_of(4)
            && d4 <= ROWS4_MAX_D4
            // The module's K/V tiles (TK = SG keys) must fit even where rows4 leaves them unused.
            && 2 * 16 * sg * d4 <= smem;
        let (entry, wg, rows, tk) = if rows4 {
            // One subgroup per workgroup, each lane holding one of the SG keys of a step.
            ("attention_rows4", sg, 4, sg)
        } else {
            let tk = TK_MAX.min(smem / (2 * 16 * d4)) / 4 * 4;
            if tk == 0 {
                return shape_err(
                    "attention",
                    format!("head dim {d} is too large: 4 keys of K and V need more than {smem} B of workgroup memory"),
                );
            }
            // Short query sequences (temporal attention: Lq = frames) get a workgroup just big
            // enough, in whole 8-lane groups, instead of idling most of a 64-wide one.
            ("attention", lq.div_ceil(8).clamp(1, WG_MAX / 8) * 8, 1, tk)
        };
        let defines = vec![
            ("D", d.to_string()),
            ("WG", wg.to_string()),
            ("TK", tk.to_string()),
            ("SUBGROUP", (rows4 as u32).to_string()),
        ];
        Ok(Variant {
            entry,
            wg,
            rows,
            defines,
        })
    }
}

/// Benchmark cases at Zeroscope 576×320 shapes (latent 72×40 = 2,880 tokens at level 0).
pub(crate) fn bench_cases(gpu: &std::sync::Arc<Gpu>, frames: usize) -> Result<Vec<crate::bench::Case>> {
    use crate::bench::{rand_tensor, Case};
    let f = frames.max(1);
    // (label, B, Lq, Lk, heads, D, causal)
    let shapes = [
        ("spatial self L0", f, 2880, 2880, 5, 64, false),
        ("cross L0", f, 2880, 77, 5, 64, false),
        // B·H·W sequences of F frames: not scaled by frames.
        ("temporal", 2880, 24, 24, 5, 64, false),
        ("clip causal", 1, 77, 77, 16, 64, true),
    ];
    let mut cases = Vec::new();
    for (i, &(label, b, lq, lk, h, d, causal)) in shapes.iter().enumerate() {
        let seed = 10 * i as u64;
        let q = rand_tensor(gpu, &[b, lq, h * d], DType::F32, seed + 1)?;
        let k = rand_tensor(gpu, &[b, lk, h * d], DType::F32, seed + 2)?;
        let v = rand_tensor(gpu, &[b, lk, h * d], DType::F32, seed + 3)?;
        // q·kᵀ and p·v: 2 FLOPs each per (query, key, channel); causal computes half the pairs.
        let pairs = (b * h * lq * lk) as f64 * if causal { 0.5 } else { 1.0 };
        let bytes = 4.0 * (2 * b * lq * h * d + 2 * b * lk * h * d) as f64;
        cases.push(Case::new(
            "attention",
            format!(
                "{label} B={b} Lq={lq} Lk={lk} H={h} D={d}{}",
                if causal { " causal" } else { "" }
            ),
            4.0 * pairs * d as f64,
            bytes,
            move || attention(&q, &k, &v, h, causal).map(drop),
        ));
    }
    Ok(cases)
}
