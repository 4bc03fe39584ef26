//! GroupNorm (shaders/group_norm.wgsl), torch.nn.GroupNorm semantics: biased variance, eps
//! inside the square root, per-channel affine, optional fused SiLU. Statistics are f32 and
//! computed from centred sums (segment two-pass + Chan merge), never as E[x²]−E[x]².
//!
//! Three layouts share one set of kernels through strides:
//! - [`group_norm`]: x [N, C, *spatial], statistics per (n, group) — ResnetBlock2D, spatial
//!   Transformer2DModel, the VAE.
//! - [`group_norm_frames`]: the engine's folded [B·F, C, *spatial] with statistics pooled over
//!   the F frames of each b — torch GroupNorm on the 5-D (B, C, F, H, W) tensor, as diffusers'
//!   TemporalConvLayer and TransformerTemporalModel do.
//! - [`group_norm_5d`]: the same pooled statistics on a (B, C, F, *spatial) tensor.
//!
//! Work is split into chunks of whole batch items when a tensor exceeds one storage binding.

use super::{chunk_ranges, f, groups, units_per_binding};
use crate::error::{shape_err, Bytes, Error, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/group_norm.wgsl");
/// Threads per workgroup (the shader's WG).
const WG: usize = 64;
/// Elements one stats workgroup holds in registers (64 per thread). A 700k-element pooled group
/// then needs ~170 partials. On lavapipe 8192 measured within noise of 4096, 16384 about 2× slower
/// (register spills).
const SEG: usize = 4096;
/// Most plane elements one normalize workgroup writes (32 per thread).
const BLOCK: usize = 2048;

/// Element strides of one layout. A batch item (all frames of one b) is always contiguous, so
/// the binding-limit split works on whole items in every layout.
#[derive(Clone, Copy, Debug)]
struct Layout {
    batch: usize,
    frames: usize,
    channels: usize,
    spatial: usize,
    frame_stride: usize,
    channel_stride: usize,
}

impl Layout {
    fn item(&self) -> usize {
        self.frames * self.channels * self.spatial
    }

    /// How one group's elements in an item split into contiguous runs: (run length, runs,
    /// run stride). Channels of a group are adjacent in both supported layouts.
    fn runs(&self, cpg: usize) -> (usize, usize, usize) {
        if self.frames == 1 || self.frame_stride == self.spatial {
            // Per-frame, or (B, C, F, S): a group's channels × frames are one contiguous block.
            (cpg * self.frames * self.spatial, 1, 0)
        } else {
            // Folded (B·F, C, S): the group's cpg channels are contiguous within each frame.
            (cpg * self.spatial, self.frames, self.frame_stride)
        }
    }
}

/// torch.nn.GroupNorm on x [N, C, *spatial] (statistics per sample and group), then SiLU when
/// `silu`. weight and bias are f32 [C].
pub fn group_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, groups: usize, eps: f32, silu: bool) -> Result<Tensor> {
    split_dims("group_norm", x)?;
    let out = Tensor::empty(x.gpu(), x.shape(), DType::F32)?;
    per_image(x, weight, bias, groups, eps, silu, &out)?;
    Ok(out)
}

/// [`group_norm`] writing over `x`: for an input nothing reads afterwards (a ResnetBlock2D's
/// input once its shortcut is computed), which saves a whole activation — in Zeroscope's first
/// up-block layer at 24 frames, 960 channels of f32 (253 MiB at 576×320).
pub fn group_norm_inplace(x: &Tensor, weight: &Tensor, bias: &Tensor, groups: usize, eps: f32, silu: bool) -> Result<()> {
    per_image(x, weight, bias, groups, eps, silu, x)
}

#[allow(clippy::too_many_arguments)]
fn per_image(x: &Tensor, weight: &Tensor, bias: &Tensor, groups: usize, eps: f32, silu: bool, out: &Tensor) -> Result<()> {
    let op = "group_norm";
    let (n, c, s) = split_dims(op, x)?;
    let fits = (c * s * 4) as u64 + 512 <= x.gpu().max_binding();
    if !fits && groups > 0 && c % groups == 0 && weight.shape() == [c] && bias.shape() == [c] {
        return by_group_chunks(op, x, weight, bias, groups, eps, silu, out);
    }
    let layout = Layout { batch: n, frames: 1, channels: c, spatial: s, frame_stride: c * s, channel_stride: s };
    run_into(op, x, layout, weight, bias, groups, eps, silu, out)
}

/// An image larger than one storage binding (the VAE decoder's full-resolution layers on an
/// adapter with 128 MiB bindings): its groups are independent, so each binding-sized run of
/// whole groups is normalised as an image of its own, with its slice of weight and bias.
#[allow(clippy::too_many_arguments)]
fn by_group_chunks(op: &'static str, x: &Tensor, weight: &Tensor, bias: &Tensor, groups: usize, eps: f32, silu: bool, out: &Tensor) -> Result<()> {
    let (n, c, s) = split_dims(op, x)?;
    let cpg = c / groups;
    let per = units_per_binding(x.gpu(), (cpg * s * 4) as u64);
    let (xf, of) = (x.reshape(&[n * c, s])?, out.reshape(&[n * c, s])?);
    for i in 0..n {
        for (g0, g1) in chunk_ranges(groups, per) {
            let (r0, rows) = (i * c + g0 * cpg, (g1 - g0) * cpg);
            let layout = Layout { batch: 1, frames: 1, channels: rows, spatial: s, frame_stride: rows * s, channel_stride: s };
            let (w, b) = (weight.narrow0(g0 * cpg, rows)?, bias.narrow0(g0 * cpg, rows)?);
            let xv = xf.narrow0(r0, rows)?.reshape(&[1, rows, s])?;
            let ov = of.narrow0(r0, rows)?.reshape(&[1, rows, s])?;
            run_into(op, &xv, layout, &w, &b, g1 - g0, eps, silu, &ov)?;
        }
    }
    Ok(())
}

/// GroupNorm with statistics pooled over frames, on the folded layout [B·F, C, *spatial]
/// (frame f of batch b at row b·F + f): equal to torch GroupNorm on the (B, C, F, H, W) tensor.
/// The output keeps the folded layout.
pub fn group_norm_frames(
    x: &Tensor,
    frames: usize,
    weight: &Tensor,
    bias: &Tensor,
    groups: usize,
    eps: f32,
    silu: bool,
) -> Result<Tensor> {
    let op = "group_norm_frames";
    let (rows, c, s) = split_dims(op, x)?;
    if frames == 0 || rows % frames != 0 {
        return shape_err(op, format!("{} rows of {:?} are not a whole number of {frames}-frame batch items", rows, x.shape()));
    }
    let layout = Layout { batch: rows / frames, frames, channels: c, spatial: s, frame_stride: c * s, channel_stride: s };
    run(op, x, layout, weight, bias, groups, eps, silu)
}

/// GroupNorm with statistics pooled over frames on x [B, C, F, *spatial] (torch GroupNorm on
/// a 5-D tensor).
pub fn group_norm_5d(x: &Tensor, weight: &Tensor, bias: &Tensor, groups: usize, eps: f32, silu: bool) -> Result<Tensor> {
    let op = "group_norm_5d";
    if x.shape().len() < 3 {
        return shape_err(op, format!("expects [B, C, F, *spatial], got {:?}", x.shape()));
    }
    let (b, c, rest) = split_dims(op, x)?;
    let frames = x.dim(2);
    let s = rest.checked_div(frames).unwrap_or(0);
    let layout = Layout { batch: b, frames, channels: c, spatial: s, frame_stride: s, channel_stride: frames * s };
    run(op, x, layout, weight, bias, groups, eps, silu)
}

/// (dim 0, dim 1, product of the rest) of an f32 tensor with at least two dimensions.
fn split_dims(op: &'static str, x: &Tensor) -> Result<(usize, usize, usize)> {
    if x.shape().len() < 2 {
        return shape_err(op, format!("expects [N, C, *spatial], got {:?}", x.shape()));
    }
    if x.dtype() != DType::F32 {
        return shape_err(op, format!("expects f32 activations, got {}", x.dtype().name()));
    }
    Ok((x.dim(0), x.dim(1), x.shape()[2..].iter().product()))
}

#[allow(clippy::too_many_arguments)]
fn run(op: &'static str, x: &Tensor, l: Layout, weight: &Tensor, bias: &Tensor, num_groups: usize, eps: f32, silu: bool) -> Result<Tensor> {
    let out = Tensor::empty(x.gpu(), x.shape(), DType::F32)?;
    run_into(op, x, l, weight, bias, num_groups, eps, silu, &out)?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn run_into(
    op: &'static str,
    x: &Tensor,
    l: Layout,
    weight: &Tensor,
    bias: &Tensor,
    num_groups: usize,
    eps: f32,
    silu: bool,
    out: &Tensor,
) -> Result<()> {
    let c = l.channels;
    if num_groups == 0 || !c.is_multiple_of(num_groups) {
        return shape_err(op, format!("{c} channels of {:?} do not split into {num_groups} groups", x.shape()));
    }
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if t.shape() != [c] || t.dtype() != DType::F32 {
            return shape_err(op, format!("{name} must be f32 [{c}], got {:?} {}", t.shape(), t.dtype().name()));
        }
    }
    let gpu = x.gpu();
    let item = l.item();
    let item_bytes = item as u64 * 4;
    // A group's statistics need every frame of its item in one binding.
    if gpu.is_planning() {
        gpu.note_binding(item_bytes, op);
    } else if item_bytes + 512 > gpu.max_binding() {
        return Err(Error::BindingTooLarge {
            op,
            what: format!("one batch item of {:?} ({} frame(s) × {c} channels × {} pixels)", x.shape(), l.frames, l.spatial),
            need: Bytes(item_bytes),
            limit: Bytes(gpu.max_binding()),
        });
    }
    if out.shape() != x.shape() {
        return shape_err(op, format!("output {:?} for input {:?}", out.shape(), x.shape()));
    }
    // In place: the normalize pass reads the input through the output binding (one buffer may
    // not be bound read-only and writable in one dispatch); the stats pass only reads.
    let inplace = x.aliases(out);
    if !inplace && x.shares_storage(out) {
        return Err(Error::Other(format!("{op}: output {:?} overlaps its input without being it", out.shape())));
    }
    if x.numel() == 0 {
        return Ok(());
    }
    let cpg = c / num_groups;
    let (run_len, runs, run_stride) = l.runs(cpg);
    // Segments are equal-length (a multiple of 4 for the vec4 path) so no workgroup gets a sliver.
    let spr0 = run_len.div_ceil(SEG);
    let seg_len = run_len.div_ceil(spr0).next_multiple_of(4).min(SEG);
    let segs_per_run = run_len.div_ceil(seg_len);
    let spu = runs * segs_per_run;
    let direct = spu == 1;
    let blocks0 = l.spatial.div_ceil(BLOCK);
    let per_wg = l.spatial.div_ceil(blocks0).next_multiple_of(4).min(BLOCK);
    let blocks = l.spatial.div_ceil(per_wg);

    let units_total = l.batch * num_groups;
    let final_off = if direct { 0 } else { units_total * spu * 2 };
    let stats = Tensor::empty(gpu, &[final_off + units_total * 2], DType::F32)?;
    let sw = stats.whole(op)?;
    if sw.shift != 0 {
        // The kernels index `stats` from 0; a fresh pool tensor always starts a buffer.
        return Err(Error::Other(format!("{op}: statistics buffer starts {} elements into its binding", sw.shift)));
    }
    let ww = weight.whole(op)?;
    let bw = bias.whole(op)?;

    let subgroup = gpu.caps.subgroup;
    for (lo, hi) in chunk_ranges(l.batch, units_per_binding(gpu, item_bytes)) {
        let xw = x.window(lo * item, hi * item, op)?;
        let ow = out.window(lo * item, hi * item, op)?;
        let vec4 = l.spatial.is_multiple_of(4) && xw.shift % 4 == 0 && ow.shift % 4 == 0;
        let lanes = if vec4 { 4 } else { 1 };
        let v = |n: usize| (n / lanes) as u32;
        let defines = [
            ("VEC4", (vec4 as u32).to_string()),
            ("SILU", (silu as u32).to_string()),
            ("SEG_ITER", (SEG / WG / lanes).to_string()),
            ("NORM_ITER", (BLOCK / WG / lanes).to_string()),
            ("SUBGROUP", (subgroup as u32).to_string()),
            ("INPLACE", (inplace as u32).to_string()),
        ];
        let items = hi - lo;
        let units = items * num_groups;
        let planes = items * l.frames * c;
        let params = [
            xw.shift / lanes as u32,
            ow.shift / lanes as u32,
            ww.shift,
            bw.shift,
            units as u32,
            (lo * num_groups) as u32,
            num_groups as u32,
            cpg as u32,
            c as u32,
            l.frames as u32,
            v(item),
            v(l.frame_stride),
            v(l.channel_stride),
            v(l.spatial),
            v(run_len),
            runs as u32,
            v(run_stride),
            v(seg_len),
            segs_per_run as u32,
            v(per_wg),
            blocks as u32,
            planes as u32,
            final_off as u32,
            direct as u32,
            f(eps),
        ];
        let k_stats = gpu.kernel("group_norm", SRC, "stats_pass", &defines)?;
        gpu.dispatch(
            &k_stats,
            &params,
            vec![(1, xw.binding.clone()), (5, sw.binding.clone())],
            groups(gpu, units * spu),
        );
        if !direct {
            let k_fin = gpu.kernel("group_norm", SRC, "finalize", &defines)?;
            gpu.dispatch(&k_fin, &params, vec![(5, sw.binding.clone())], groups(gpu, units));
        }
        let k_norm = gpu.kernel("group_norm", SRC, "normalize", &defines)?;
        let mut bindings = vec![(2, ww.binding.clone()), (3, bw.binding.clone()), (4, ow.binding), (5, sw.binding.clone())];
        if !inplace {
            bindings.push((1, xw.binding));
        }
        gpu.dispatch(&k_norm, &params, bindings, groups(gpu, planes * blocks));
    }
    Ok(())
}

/// Zeroscope 576×320 level-0 shapes: per-frame GroupNorm as in ResnetBlock2D, and the
/// frame-pooled one of TemporalConvLayer with its SiLU.
pub(crate) fn bench_cases(gpu: &std::sync::Arc<crate::gpu::Gpu>, frames: usize) -> Result<Vec<crate::bench::Case>> {
    use crate::bench::{rand_tensor, Case};
    let (c, h, w) = (320, 40, 72);
    let weight = rand_tensor(gpu, &[c], DType::F32, 11)?;
    let bias = rand_tensor(gpu, &[c], DType::F32, 12)?;
    let mut v = Vec::new();
    for (label, rows, pooled) in [("per-frame", frames.max(1), 0), ("pooled+silu", 24, 24)] {
        let x = rand_tensor(gpu, &[rows, c, h, w], DType::F32, 10)?;
        let n = x.numel() as f64;
        let (wt, bt) = (weight.clone(), bias.clone());
        v.push(Case::new("group_norm", format!("{label} [{rows}, {c}, {h}, {w}] G=32"), 8.0 * n, 8.0 * n, move || {
            if pooled > 0 {
                group_norm_frames(&x, pooled, &wt, &bt, 32, 1e-5, true).map(drop)
            } else {
                group_norm(&x, &wt, &bt, 32, 1e-5, false).map(drop)
            }
        }));
    }
    Ok(v)
}
