// GroupNorm with f32 statistics in three passes over one chunk of batch items:
//   stats     one workgroup per segment (≤ 4096 contiguous elements of one group): the segment
//             stays in registers, so its mean and Σ(x−mean)² are an exact two-pass result from
//             one read; writes (mean, M2) per segment, or (mean, rstd) when a group is one segment.
//   finalize  one workgroup per group: Chan's parallel merge of the segment partials, in a tree,
//             so groups of ~700k elements (pooled over 24 frames) keep f32 accuracy without the
//             cancellation of E[x²]−E[x]².
//   normalize one workgroup per (item, frame, channel) plane block: y = (x−mean)·rstd·w + b,
//             optional SiLU. The channel is uniform per workgroup, so the affine is a subtract
//             and an FMA per element.
//
// Addresses are strided so the same kernels serve both activation layouts:
//   folded (B·F, C, S): frame stride C·S, channel stride S; a group is F runs of cpg·S elements.
//   (B, C, F, S):        frame stride S, channel stride F·S; a group is one run of cpg·F·S.
// With VEC4 every count, offset and stride below is in vec4 units (the host guarantees S % 4 == 0
// and 16-byte aligned windows).

struct Params {
    x_off: u32,
    o_off: u32,
    w_off: u32,
    b_off: u32,
    units: u32,        // groups to normalise in this chunk: items × G
    unit_base: u32,    // global index of the chunk's first unit (slots in `stats`)
    groups: u32,
    cpg: u32,          // channels per group
    channels: u32,
    frames: u32,
    sb: u32,           // batch-item stride
    sf: u32,           // frame stride
    sc: u32,           // channel stride
    spatial: u32,      // S: contiguous elements of one (item, frame, channel) plane
    run_len: u32,      // contiguous elements of one group in one run
    runs: u32,
    run_stride: u32,
    seg_len: u32,      // elements per stats segment (last one of a run may be shorter)
    segs_per_run: u32,
    per_wg: u32,       // plane elements per normalize workgroup
    blocks: u32,       // normalize workgroups per plane
    planes: u32,       // planes in this chunk: items × F × C
    final_off: u32,    // where the (mean, rstd) table starts in `stats`
    direct: u32,       // 1: each unit is one segment, stats writes (mean, rstd) itself
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4
alias V = vec4<f32>;
const LANES: u32 = 4u;
fn hsum(v: V) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}
#else
alias V = f32;
const LANES: u32 = 1u;
fn hsum(v: V) -> f32 {
    return v;
}
#endif
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<V>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

// 64 threads per workgroup throughout: on lavapipe a 256-thread stats workgroup ran 2–4× slower
// (every barrier switches through all its subgroups), and 64 is a whole wave on every GPU.
const WG: u32 = 64u;
// Values per thread: the stats pass keeps 64 f32 (16 vec4) of its segment in registers, so a
// full segment is 4096 elements either way; a normalize workgroup covers up to 2048.
const SEG_ITER: u32 = {{SEG_ITER}}u;
const NORM_ITER: u32 = {{NORM_ITER}}u;

// Two reductions per segment, each with its own half of `red` so the second needs no barrier
// to protect the first's readers.
var<workgroup> red: array<f32, 2u * WG>;

#if SUBGROUP
// Subgroup sums, then one barrier and a serial sum of the per-subgroup partials: workgroup
// barriers are the dominant cost on CPU drivers (a coroutine switch per subgroup each).
fn wg_sum(v: f32, half: u32, lid: u32, lane: u32, sg: u32, nsg: u32) -> f32 {
    let s = subgroupAdd(v);
    if (lane == 0u) {
        red[half * WG + sg] = s;
    }
    workgroupBarrier();
    var t = 0.0;
    for (var i = 0u; i < nsg; i++) {
        t += red[half * WG + i];
    }
    return t;
}
#else
// A tree down to 32 partials, then each thread adds those 32 in the same order.
fn wg_sum(v: f32, half: u32, lid: u32, lane: u32, sg: u32, nsg: u32) -> f32 {
    let b = half * WG;
    red[b + lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s >= 32u; s >>= 1u) {
        if (lid < s) {
            red[b + lid] += red[b + lid + s];
        }
        workgroupBarrier();
    }
    var t = 0.0;
    for (var i = 0u; i < 32u; i++) {
        t += red[b + i];
    }
    return t;
}
#endif

@compute @workgroup_size(WG)
#if SUBGROUP
fn stats_pass(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) lane: u32,
              @builtin(subgroup_id) sg: u32, @builtin(num_subgroups) nsg: u32,
              @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
#else
fn stats_pass(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let lane = 0u;
    let sg = 0u;
    let nsg = 0u;
#endif
    let g = wg_linear(wid, nwg);
    let spu = p.runs * p.segs_per_run;
    if (g >= p.units * spu) {
        return;
    }
    let u = g / spu;
    let rem = g - u * spu;
    let r = rem / p.segs_per_run;
    let seg = rem - r * p.segs_per_run;
    let item = u / p.groups;
    let grp = u - item * p.groups;
    let start = seg * p.seg_len;
    let cnt = min(p.seg_len, p.run_len - start);
    let base = p.x_off + item * p.sb + grp * p.cpg * p.sc + r * p.run_stride + start;

    var v: array<V, SEG_ITER>;
    var s = 0.0;
    for (var k = 0u; k < SEG_ITER; k++) {
        let i = lid + k * WG;
        if (i < cnt) {
            v[k] = x[base + i];
            s += hsum(v[k]);
        }
    }
    let n = f32(cnt * LANES);
    let mean = wg_sum(s, 0u, lid, lane, sg, nsg) / n;
    var q = 0.0;
    for (var k = 0u; k < SEG_ITER; k++) {
        if (lid + k * WG < cnt) {
            let d = v[k] - V(mean);
            q += hsum(d * d);
        }
    }
    let m2 = wg_sum(q, 1u, lid, lane, sg, nsg);
    if (lid == 0u) {
        let ug = p.unit_base + u;
        if (p.direct != 0u) {
            stats[p.final_off + 2u * ug] = mean;
            stats[p.final_off + 2u * ug + 1u] = inverseSqrt(m2 / n + p.eps);
        } else {
            let slot = ug * spu + rem;
            stats[2u * slot] = mean;
            stats[2u * slot + 1u] = m2;
        }
    }
}

// Chan et al.: merges (count, mean, M2) summaries without forming Σx².
fn chan(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
    let n = a.x + b.x;
    if (b.x == 0.0) {
        return a;
    }
    let frac = b.x / n;
    let delta = b.y - a.y;
    return vec3<f32>(n, a.y + delta * frac, a.z + b.z + delta * delta * a.x * frac);
}

var<workgroup> fin: array<vec3<f32>, WG>;

@compute @workgroup_size(WG)
fn finalize(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let u = wg_linear(wid, nwg);
    if (u >= p.units) {
        return;
    }
    let spu = p.runs * p.segs_per_run;
    let ug = p.unit_base + u;
    let full = f32(p.seg_len * LANES);
    let last = f32((p.run_len - (p.segs_per_run - 1u) * p.seg_len) * LANES);
    var acc = vec3<f32>(0.0);
    for (var k = lid; k < spu; k += WG) {
        let seg = k % p.segs_per_run;
        let n = select(full, last, seg == p.segs_per_run - 1u);
        let slot = ug * spu + k;
        acc = chan(acc, vec3<f32>(n, stats[2u * slot], stats[2u * slot + 1u]));
    }
    fin[lid] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            fin[lid] = chan(fin[lid], fin[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let t = fin[0];
        stats[p.final_off + 2u * ug] = t.y;
        stats[p.final_off + 2u * ug + 1u] = inverseSqrt(t.z / t.x + p.eps);
    }
}

@compute @workgroup_size(WG)
fn normalize(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wg_linear(wid, nwg);
    if (g >= p.planes * p.blocks) {
        return;
    }
    let q = g / p.blocks;
    let blk = g - q * p.blocks;
    let c = q % p.channels;
    let t = q / p.channels;
    let f = t % p.frames;
    let item = t / p.frames;
    let off = item * p.sb + f * p.sf + c * p.sc;
    let ug = p.unit_base + item * p.groups + c / p.cpg;
    let mean = V(stats[p.final_off + 2u * ug]);
    let a = V(stats[p.final_off + 2u * ug + 1u] * weight[p.w_off + c]);
    let sh = V(bias[p.b_off + c]);
    let lo = blk * p.per_wg;
    let hi = min(lo + p.per_wg, p.spatial);
    for (var k = 0u; k < NORM_ITER; k++) {
        let i = lo + lid + k * WG;
        if (i < hi) {
#if INPLACE
            var y = (o[p.o_off + off + i] - mean) * a + sh;
#else
            var y = (x[p.x_off + off + i] - mean) * a + sh;
#endif
#if SILU
            y = y / (V(1.0) + exp(-y));
#endif
            o[p.o_off + off + i] = y;
        }
    }
}
