//! Elementwise ops over f32 tensors (shaders/elementwise.wgsl).

use super::{chunk_ranges, f, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/elementwise.wgsl");
const WG: usize = 256;

/// Which operand windows an entry point binds.
struct Operands<'a> {
    a: Option<(&'a Tensor, usize)>, // tensor, elements of `a` per output element
    b: Option<&'a Tensor>,          // same-length second operand
    b_whole: Option<&'a Tensor>,    // broadcast operand, bound whole
    c: Option<&'a Tensor>,          // same-length third operand
    coef: [u32; 2],                 // f32 bits of s2, s3
    out: &'a Tensor,
    out_slot: u32,
    div: u32,
    modulo: u32,
    s: u32,
}

fn run(entry: &'static str, ops: Operands) -> Result<()> {
    let gpu = ops.out.gpu();
    let k = gpu.kernel("elementwise", SRC, entry, &[])?;
    let n = match ops.out_slot {
        4 => (ops.out.bytes() as usize).div_ceil(4),
        _ => ops.out.numel(),
    };
    let factor = ops.a.map_or(1, |(_, r)| r).max(1) as u64;
    // Chunks are whole blocks (geglu rows, broadcast blocks) so in-kernel index math holds.
    let mut per = units_per_binding(gpu, 4 * factor);
    if ops.div > 0 {
        per = (per / ops.div as usize).max(1) * ops.div as usize;
    }
    for (lo, hi) in chunk_ranges(n, per) {
        let mut params = [(hi - lo) as u32, 0, 0, 0, ops.div, ops.modulo, ops.s, 0, 0, ops.coef[0], ops.coef[1], 0];
        let mut binds = Vec::new();
        if let Some((a, r)) = ops.a {
            let w = a.window(lo * r, hi * r, entry)?;
            params[1] = w.shift;
            binds.push((1, w.binding));
        }
        if let Some(b) = ops.b {
            let w = b.window(lo, hi, entry)?;
            params[2] = w.shift;
            binds.push((2, w.binding));
        }
        if let Some(c) = ops.c {
            let w = c.window(lo, hi, entry)?;
            params[8] = w.shift;
            binds.push((5, w.binding));
        }
        if let Some(b) = ops.b_whole {
            let w = b.whole(entry)?;
            params[2] = w.shift;
            binds.push((2, w.binding));
            // Chunks start on block boundaries; tell the kernel which block comes first.
            params[7] = ((lo / ops.div as usize) % ops.modulo as usize) as u32;
        }
        let w = ops.out.window(lo, hi, entry)?;
        params[3] = w.shift;
        binds.push((ops.out_slot, w.binding));
        gpu.dispatch(&k, &params, binds, groups(gpu, (hi - lo).div_ceil(WG)));
    }
    Ok(())
}

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return shape_err(op, format!("shapes differ: {:?} vs {:?}", a.shape(), b.shape()));
    }
    f32_only(op, a)?;
    f32_only(op, b)
}

fn f32_only(op: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype() != DType::F32 {
        return shape_err(op, format!("expects f32 activations, got {}", t.dtype().name()));
    }
    Ok(())
}

fn unary(entry: &'static str, a: &Tensor, s: f32) -> Result<Tensor> {
    f32_only(entry, a)?;
    let out = Tensor::empty(a.gpu(), a.shape(), DType::F32)?;
    run(entry, Operands { a: Some((a, 1)), b: None, b_whole: None, c: None, coef: [0, 0], out: &out, out_slot: 3, div: 0, modulo: 1, s: f(s) })?;
    Ok(out)
}

fn binary(entry: &'static str, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape(entry, a, b)?;
    let out = Tensor::empty(a.gpu(), a.shape(), DType::F32)?;
    run(entry, Operands { a: Some((a, 1)), b: Some(b), b_whole: None, c: None, coef: [0, 0], out: &out, out_slot: 3, div: 0, modulo: 1, s: 0 })?;
    Ok(out)
}

/// `a·x + b·y`: scheduler updates and classifier-free guidance.
pub fn lincomb2(x: &Tensor, a: f32, y: &Tensor, b: f32) -> Result<Tensor> {
    same_shape("lincomb2", x, y)?;
    let out = Tensor::empty(x.gpu(), x.shape(), DType::F32)?;
    let ops = Operands { a: Some((x, 1)), b: Some(y), b_whole: None, c: None, coef: [f(b), 0], out: &out, out_slot: 3, div: 0, modulo: 1, s: f(a) };
    run("lincomb2", ops)?;
    Ok(out)
}

/// `a·x + b·y + c·z` (multistep schedulers).
pub fn lincomb3(x: &Tensor, a: f32, y: &Tensor, b: f32, z: &Tensor, c: f32) -> Result<Tensor> {
    same_shape("lincomb3", x, y)?;
    same_shape("lincomb3", x, z)?;
    let out = Tensor::empty(x.gpu(), x.shape(), DType::F32)?;
    let ops = Operands { a: Some((x, 1)), b: Some(y), b_whole: None, c: Some(z), coef: [f(b), f(c)], out: &out, out_slot: 3, div: 0, modulo: 1, s: f(a) };
    run("lincomb3", ops)?;
    Ok(out)
}

/// Fills every 32-bit word of `t` with `bits` (used for zeros and for test poisoning).
pub fn fill_bits(t: &Tensor, bits: u32) -> Result<()> {
    run("fill", Operands { a: None, b: None, b_whole: None, c: None, coef: [0, 0], out: t, out_slot: 4, div: 0, modulo: 1, s: bits })
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("add", a, b)
}

pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("mul", a, b)
}

/// `acc += x` in place (residual connections).
pub fn add_inplace(acc: &Tensor, x: &Tensor) -> Result<()> {
    same_shape("add_inplace", acc, x)?;
    run("add_inplace", Operands { a: Some((x, 1)), b: None, b_whole: None, c: None, coef: [0, 0], out: acc, out_slot: 3, div: 0, modulo: 1, s: 0 })
}

fn bcast(entry: &'static str, a: &Tensor, b: &Tensor, inner: usize) -> Result<Tensor> {
    f32_only(entry, a)?;
    f32_only(entry, b)?;
    if inner == 0 || !a.numel().is_multiple_of(inner * b.numel()) {
        return shape_err(
            entry,
            format!("{:?} is not a whole number of [{} × {inner}] blocks for broadcasting {:?}", a.shape(), b.numel(), b.shape()),
        );
    }
    let out = Tensor::empty(a.gpu(), a.shape(), DType::F32)?;
    let ops = Operands {
        a: Some((a, 1)),
        b: None,
        b_whole: Some(b),
        c: None,
        coef: [0, 0],
        out: &out,
        out_slot: 3,
        div: inner as u32,
        modulo: b.numel() as u32,
        s: 0,
    };
    run(entry, ops)?;
    Ok(out)
}

/// `a[i] + b[(i / inner) % b.len()]`: adds a per-channel (inner = H·W) or per-row vector.
pub fn add_bcast(a: &Tensor, b: &Tensor, inner: usize) -> Result<Tensor> {
    bcast("add_bcast", a, b, inner)
}

/// `a[i] * b[(i / inner) % b.len()]`.
pub fn mul_bcast(a: &Tensor, b: &Tensor, inner: usize) -> Result<Tensor> {
    bcast("mul_bcast", a, b, inner)
}

pub fn scale(a: &Tensor, s: f32) -> Result<Tensor> {
    unary("scale", a, s)
}

/// `a.clamp(-s, s)` (s ≥ 0): DDIM's `clip_sample`.
pub fn clamp_sym(a: &Tensor, s: f32) -> Result<Tensor> {
    unary("clamp_sym", a, s)
}

pub fn silu(a: &Tensor) -> Result<Tensor> {
    unary("silu_op", a, 0.0)
}

/// Exact (erf) GELU, as torch's default `F.gelu`.
pub fn gelu(a: &Tensor) -> Result<Tensor> {
    unary("gelu", a, 0.0)
}

/// `max(a, 0)` (torch's ReLU; -0.0 and NaN aside).
pub fn relu(a: &Tensor) -> Result<Tensor> {
    unary("relu", a, 0.0)
}

pub fn tanh(a: &Tensor) -> Result<Tensor> {
    unary("tanh_op", a, 0.0)
}

pub fn sigmoid(a: &Tensor) -> Result<Tensor> {
    unary("sigmoid", a, 0.0)
}

/// OpenAI CLIP's `quick_gelu`: x · sigmoid(1.702 x).
pub fn quick_gelu(a: &Tensor) -> Result<Tensor> {
    unary("quick_gelu", a, 0.0)
}

/// Tanh-approximated GELU (transformers' `gelu_new`, torch `gelu(approximate="tanh")`):
/// Wan's feed-forward activation.
pub fn gelu_tanh(a: &Tensor) -> Result<Tensor> {
    unary("gelu_tanh", a, 0.0)
}

/// `gelu_tanh(a) ⊙ b`: T5's gated-gelu feed-forward, whose `wi_0` (gate, activated) and `wi_1`
/// projections are separate linears, so the two halves arrive as two same-shape tensors.
pub fn gelu_tanh_mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("gelu_tanh_mul", a, b)
}

/// diffusers' GEGLU after its projection: rows `[h | gate]` (width 2d) → `h * gelu(gate)`.
pub fn geglu(x: &Tensor) -> Result<Tensor> {
    f32_only("geglu", x)?;
    let w = *x.shape().last().unwrap_or(&0);
    if w == 0 || !w.is_multiple_of(2) {
        return shape_err("geglu", format!("last dimension of {:?} must be even (h and gate halves)", x.shape()));
    }
    let d = w / 2;
    let mut shape = x.shape().to_vec();
    *shape.last_mut().unwrap_or(&mut 0) = d;
    let out = Tensor::empty(x.gpu(), &shape, DType::F32)?;
    run("geglu", Operands { a: Some((x, 2)), b: None, b_whole: None, c: None, coef: [0, 0], out: &out, out_slot: 3, div: d as u32, modulo: 1, s: 0 })?;
    Ok(out)
}

pub(crate) fn bench_cases(gpu: &std::sync::Arc<crate::gpu::Gpu>, frames: usize) -> Result<Vec<crate::bench::Case>> {
    use crate::bench::{rand_tensor, Case};
    let n = frames * 320 * 2880; // one level-0 activation
    let a = rand_tensor(gpu, &[n], DType::F32, 1)?;
    let b = rand_tensor(gpu, &[n], DType::F32, 2)?;
    let h = rand_tensor(gpu, &[frames * 2880, 2560], DType::F32, 3)?;
    let (a2, h2) = (a.clone(), h.clone());
    Ok(vec![
        Case::new("elementwise", format!("add L0 {frames}x320x40x72"), n as f64, 12.0 * n as f64, move || add(&a, &b).map(drop)),
        Case::new("elementwise", format!("silu L0 {frames}x320x40x72"), 4.0 * n as f64, 8.0 * n as f64, move || silu(&a2).map(drop)),
        Case::new(
            "elementwise",
            format!("geglu L0 {}x2560 -> 1280", frames * 2880),
            (frames * 2880 * 1280 * 20) as f64,
            (frames * 2880 * (2560 + 1280) * 4) as f64,
            move || geglu(&h2).map(drop),
        ),
    ])
}
