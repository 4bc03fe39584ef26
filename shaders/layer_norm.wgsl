// LayerNorm over the last dimension (torch.nn.LayerNorm), f32 statistics without E[x²]−E[x]²:
// each thread keeps a running (count, mean, M2) over its strided share of the row (Chan's update
// per loaded vec4 or value), the shares are combined exactly as mean = Σnᵢmeanᵢ / n and
// M2 = Σ(M2ᵢ + nᵢ(meanᵢ − mean)²), and a second read of the row writes the output.
//
// SUBGROUP: one subgroup per row, combined with subgroupAdd and no workgroup barrier (barriers
// dominate on CPU drivers: at [2880, 320] lavapipe took 2.3 ms this way, 11–19 ms with the
// 64-thread workgroup per row that is the fallback without subgroups). Nothing is unrolled per
// row width: a register-cached row took LLVM 15 s to compile at C = 1024 on lavapipe. With VEC4
// counts and offsets are in vec4 units.
//
// MODULATE: Wan's modulated norm `LN(x) · (1 + scale) + shift`, the LN affine-free, with one
// scale and shift vector per batch item (rows b·per_batch ..): `weight` holds the scales and
// `bias` the shifts, [batches, C] each.

struct Params {
    rows: u32,
    c: u32,        // row length
    x_off: u32,
    o_off: u32,
    w_off: u32,
    b_off: u32,
    n: f32,        // row length in elements
    eps: f32,
    row0: u32,     // MODULATE: global row of this dispatch's first row
    per_batch: u32, // MODULATE: rows per batch item
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4
alias V = vec4<f32>;
const LANES: f32 = 4.0;
fn hsum(v: V) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}
#else
alias V = f32;
const LANES: f32 = 1.0;
fn hsum(v: V) -> f32 {
    return v;
}
#endif
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> weight: array<V>;
@group(0) @binding(3) var<storage, read> bias: array<V>;
@group(0) @binding(4) var<storage, read_write> o: array<V>;

const WG: u32 = 64u;

// (count, mean, M2) of elements first, first + step, … of the row at xb.
fn share(xb: u32, first: u32, step: u32) -> vec3<f32> {
    var acc = vec3<f32>(0.0);
    for (var i = first; i < p.c; i += step) {
        let v = x[xb + i];
        let m = hsum(v) / LANES;
        let d = v - V(m);
        let n = acc.x + LANES;
        let frac = LANES / n;
        let delta = m - acc.y;
        acc = vec3<f32>(n, acc.y + delta * frac, acc.z + hsum(d * d) + delta * delta * acc.x * frac);
    }
    return acc;
}

fn write_row(row: u32, first: u32, step: u32, mean: f32, rstd: f32) {
    let xb = p.x_off + row * p.c;
    let ob = p.o_off + row * p.c;
#if MODULATE
    let vb = ((p.row0 + row) / p.per_batch) * p.c;
    for (var i = first; i < p.c; i += step) {
        o[ob + i] = (x[xb + i] - V(mean)) * V(rstd) * (V(1.0) + weight[p.w_off + vb + i]) + bias[p.b_off + vb + i];
    }
#else
    for (var i = first; i < p.c; i += step) {
        o[ob + i] = (x[xb + i] - V(mean)) * V(rstd) * weight[p.w_off + i] + bias[p.b_off + i];
    }
#endif
}

#if SUBGROUP
// Rows are taken in a grid-stride loop: the host cannot know which subgroup size the driver picks.
@compute @workgroup_size(WG)
fn layer_norm(@builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sgs: u32,
              @builtin(subgroup_id) sg: u32, @builtin(num_subgroups) nsg: u32,
              @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * nwg.y * nsg;
    for (var row = wg_linear(wid, nwg) * nsg + sg; row < p.rows; row += stride) {
        let acc = share(p.x_off + row * p.c, lane, sgs);
        let mean = subgroupAdd(acc.x * acc.y) / p.n;
        let dm = acc.y - mean;
        let var_ = subgroupAdd(acc.z + acc.x * dm * dm) / p.n;
        write_row(row, lane, sgs, mean, inverseSqrt(var_ + p.eps));
    }
}
#else
var<workgroup> red: array<f32, 2u * WG>;

// Sum over the workgroup into every thread; `half` picks a separate scratch half per reduction
// so the second needs no barrier to protect the first's readers.
fn wg_sum(v: f32, half: u32, lid: u32) -> f32 {
    let b = half * WG;
    red[b + lid] = v;
    workgroupBarrier();
    if (lid < 32u) {
        red[b + lid] += red[b + lid + 32u];
    }
    workgroupBarrier();
    var t = 0.0;
    for (var i = 0u; i < 32u; i++) {
        t += red[b + i];
    }
    return t;
}

@compute @workgroup_size(WG)
fn layer_norm(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wg_linear(wid, nwg);
    if (row >= p.rows) {
        return;
    }
    let acc = share(p.x_off + row * p.c, lid, WG);
    let mean = wg_sum(acc.x * acc.y, 0u, lid) / p.n;
    let dm = acc.y - mean;
    let var_ = wg_sum(acc.z + acc.x * dm * dm, 1u, lid) / p.n;
    write_row(row, lid, WG, mean, inverseSqrt(var_ + p.eps));
}
#endif
