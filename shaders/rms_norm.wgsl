// RMS norm over the last dimension (torch.nn.RMSNorm, T5LayerNorm / UMT5LayerNorm):
// o = x · rsqrt(mean(x²) + eps) · w, statistics in f32, no mean subtraction, no bias.
// Each thread sums the squares of its strided share of the row, the shares are combined, and a
// second read of the row writes the output (rows stay in memory, never in registers: a
// register-cached row of 4096 would take minutes to compile on lavapipe).
//
// SUBGROUP: one subgroup per row, combined with subgroupAdd and no barrier; otherwise one 64-thread
// workgroup per row. With VEC4 counts and offsets of x and o are in vec4 units. HAS_W = 0 skips
// the weight (elementwise_affine=False). W_F16: the weight is f16, read as packed u32 pairs (no
// shader-f16 feature needed); its offset is always in elements.

struct Params {
    rows: u32,
    c: u32,        // row length in V units
    x_off: u32,
    o_off: u32,
    w_off: u32,    // in elements
    _pad: u32,
    n: f32,        // row length in elements
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4
alias V = vec4<f32>;
fn hsum(v: V) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}
#else
alias V = f32;
fn hsum(v: V) -> f32 {
    return v;
}
#endif
@group(0) @binding(1) var<storage, read> x: array<V>;
#if W_F16
@group(0) @binding(2) var<storage, read> weight: array<u32>;
#else
@group(0) @binding(2) var<storage, read> weight: array<f32>;
#endif
@group(0) @binding(3) var<storage, read_write> o: array<V>;

const WG: u32 = 64u;

// Weight element e (absolute index in the binding).
fn w_at(e: u32) -> f32 {
#if W_F16
    return unpack2x16float(weight[e >> 1u])[e & 1u];
#else
    return weight[e];
#endif
}

// Weight for V unit i of the row.
fn load_w(i: u32) -> V {
#if HAS_W
#if VEC4
    let e = p.w_off + 4u * i;
    return vec4<f32>(w_at(e), w_at(e + 1u), w_at(e + 2u), w_at(e + 3u));
#else
    return w_at(p.w_off + i);
#endif
#else
    return V(1.0);
#endif
}

fn share(xb: u32, first: u32, step: u32) -> f32 {
    var acc = 0.0;
    for (var i = first; i < p.c; i += step) {
        let v = x[xb + i];
        acc += hsum(v * v);
    }
    return acc;
}

fn write_row(row: u32, first: u32, step: u32, r: f32) {
    let xb = p.x_off + row * p.c;
    let ob = p.o_off + row * p.c;
    for (var i = first; i < p.c; i += step) {
        o[ob + i] = x[xb + i] * V(r) * load_w(i);
    }
}

#if SUBGROUP
// Rows are taken in a grid-stride loop: the host cannot know which subgroup size the driver picks.
@compute @workgroup_size(WG)
fn rms_norm(@builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sgs: u32,
            @builtin(subgroup_id) sg: u32, @builtin(num_subgroups) nsg: u32,
            @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * nwg.y * nsg;
    for (var row = wg_linear(wid, nwg) * nsg + sg; row < p.rows; row += stride) {
        let ms = subgroupAdd(share(p.x_off + row * p.c, lane, sgs)) / p.n;
        write_row(row, lane, sgs, inverseSqrt(ms + p.eps));
    }
}
#else
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn rms_norm(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wg_linear(wid, nwg);
    // No early return: every thread must reach the barriers (uniform per workgroup anyway).
    let live = row < p.rows;
    var s = 0.0;
    if (live) {
        s = share(p.x_off + row * p.c, lid, WG);
    }
    red[lid] = s;
    workgroupBarrier();
    if (lid < 32u) {
        red[lid] += red[lid + 32u];
    }
    workgroupBarrier();
    var t = 0.0;
    for (var i = 0u; i < 32u; i++) {
        t += red[i];
    }
    if (live) {
        write_row(row, lid, WG, inverseSqrt(t / p.n + p.eps));
    }
}
#endif
