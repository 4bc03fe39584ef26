// Scaled dot-product attention with an online softmax ("flash"): O = softmax(Q·Kᵀ·scale
// [+ causal mask]) · V per (batch, head), Q/K/V/O in diffusers' [B, L, H·D] layout (H blocks of
// D channels per token). The Lq×Lk scores never exist: a workgroup owns a tile of query rows of
// one (batch, head), keeps each row's running max, running sum and output accumulator in
// registers (f32) and folds keys in 4 at a time (one accumulator rescale per 4 keys). Scores
// carry a log2(e) factor (folded into q) so the softmax is exp2. D is padded to whole vec4s:
// pad channels read as zero and are never stored. Causal: key j is visible to query i iff
// j ≤ i (torch's is_causal, top-left aligned when Lq ≠ Lk).
//
// Two entry points, differing in how the invocations share K/V rows:
// - attention (GPUs): one query row per invocation; TK keys of K and V are staged in
//   workgroup memory and every invocation reads key j at the same time, a workgroup-uniform
//   address (a conflict-free broadcast).
// - attention_rows4 (CPU drivers with a fixed subgroup size; needs SUBGROUP): lavapipe
//   (Mesa 25) keeps loop counters per lane, so a uniform-address load inside a loop becomes one
//   scalar load per lane (the workgroup-memory kernel runs at ~2 GFLOP/s there). Instead lane t
//   of each subgroup loads key k0+t's K and V rows once, and subgroupShuffle (a single vpermd)
//   hands them to every lane; each invocation owns 4 query rows as the 4 components of vec4s,
//   so each shuffled value feeds one vec4 FMA.
//
// Measured on lavapipe (Mesa 25.0.7, 2 cores), Zeroscope level-0 spatial self-attention
// (B=1, L=2880, 5 heads × 64): attention_rows4 18.6 GFLOP/s, attention 2.1 GFLOP/s (with
// T2V_NO_SUBGROUP=1). All bench cases: src/ops/attention.rs.

struct Params {
    lq: u32,
    lk: u32,
    heads: u32,
    q_tiles: u32,
    n_groups: u32,
    q_off: u32,
    k_off: u32,
    v_off: u32,
    o_off: u32,
    // Softmax scale × log2(e), folded into q once.
    scale: f32,
    causal: u32,
    // = D4, for attention_rows4: a runtime bound keeps the loops that only move rows in and out
    // rolled. Unrolled, lavapipe expands each per-lane load or store there into 8 scalar ones
    // and the shader takes seconds longer to compile.
    d4: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

const D: u32 = {{D}}u;
const D4: u32 = (D + 3u) / 4u;
const WG: u32 = {{WG}}u;
// Keys per outer step, a multiple of 4: the staged tile (attention) or the subgroup size
// (attention_rows4, one key per lane).
const TK: u32 = {{TK}}u;
// Below any real score but finite: exp2(MASKED - m) is exactly 0 and never NaN, and a row whose
// keys are all masked so far keeps m = M_INIT (alpha stays 1, sums stay 0).
const MASKED: f32 = -3.0e38;
const M_INIT: f32 = -1.0e30;

var<workgroup> ks: array<vec4<f32>, TK * D4>;
var<workgroup> vs: array<vec4<f32>, TK * D4>;

// Channels 4·c4 .. 4·c4+3 of the row starting at `base` of q (src 0), k (1) or v (2); pad
// channels (≥ D) read as 0 and never index outside the row's head.
fn load4(src: u32, base: u32, c4: u32) -> vec4<f32> {
    var r = vec4<f32>(0.0);
    for (var t = 0u; t < 4u; t++) {
        let d = c4 * 4u + t;
        if (d < D) {
            if (src == 0u) {
                r[t] = q[base + d];
            } else if (src == 1u) {
                r[t] = k[base + d];
            } else {
                r[t] = v[base + d];
            }
        }
    }
    return r;
}

@compute @workgroup_size({{WG}})
fn attention(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = wg_linear(wid, nwg);
    if (g >= p.n_groups) {
        return;
    }
    let hd = p.heads * D;
    // Consecutive workgroups take consecutive query tiles of one (batch, head): same K/V in cache.
    let tile = g % p.q_tiles;
    let bh = g / p.q_tiles;
    let h = bh % p.heads;
    let b = bh / p.heads;
    let i = tile * WG + lid;
    let kv_row0 = b * p.lk;

    // Rows past Lq compute on row Lq-1 (keeps every load in range) and are never stored.
    let q_base = p.q_off + (b * p.lq + min(i, p.lq - 1u)) * hd + h * D;
    var qr: array<vec4<f32>, D4>;
    var acc: array<vec4<f32>, D4>;
    for (var c = 0u; c < D4; c++) {
        qr[c] = load4(0u, q_base, c) * p.scale;
        acc[c] = vec4<f32>(0.0);
    }
    var m = M_INIT;
    var l = 0.0;
    // Keys at index ≥ lim are invisible to this row (end of sequence, or the causal diagonal).
    let lim = select(p.lk, min(p.lk, i + 1u), p.causal != 0u);
    // Causal: no row of this tile sees past its last row.
    var kend = p.lk;
    if (p.causal != 0u) {
        kend = min(p.lk, min((tile + 1u) * WG, p.lq));
    }
    for (var k0 = 0u; k0 < kend; k0 += TK) {
        // Whole steps of 4 keys are read, so that many are staged; keys past Lk re-read key
        // Lk-1 (finite, so 0·v stays 0) and are masked out of the softmax.
        let staged = (min(TK, kend - k0) + 3u) / 4u * 4u;
        workgroupBarrier();
        for (var e = lid; e < staged * D4; e += WG) {
            let row = (kv_row0 + min(k0 + e / D4, p.lk - 1u)) * hd + h * D;
            ks[e] = load4(1u, p.k_off + row, e % D4);
            vs[e] = load4(2u, p.v_off + row, e % D4);
        }
        workgroupBarrier();
        for (var j = 0u; j < min(TK, kend - k0); j += 4u) {
            var s = vec4<f32>(0.0);
            for (var c = 0u; c < D4; c++) {
                let x = qr[c];
                s += vec4<f32>(
                    dot(x, ks[j * D4 + c]),
                    dot(x, ks[(j + 1u) * D4 + c]),
                    dot(x, ks[(j + 2u) * D4 + c]),
                    dot(x, ks[(j + 3u) * D4 + c]),
                );
            }
            s = select(s, vec4<f32>(MASKED), vec4<u32>(k0 + j) + vec4<u32>(0u, 1u, 2u, 3u) >= vec4<u32>(lim));
            let mt = max(m, max(max(s.x, s.y), max(s.z, s.w)));
            let alpha = exp2(m - mt);
            m = mt;
            let w = exp2(s - vec4<f32>(mt));
            l = l * alpha + ((w.x + w.y) + (w.z + w.w));
            for (var c = 0u; c < D4; c++) {
                var a = acc[c] * alpha;
                a = fma(vec4<f32>(w.x), vs[j * D4 + c], a);
                a = fma(vec4<f32>(w.y), vs[(j + 1u) * D4 + c], a);
                a = fma(vec4<f32>(w.z), vs[(j + 2u) * D4 + c], a);
                acc[c] = fma(vec4<f32>(w.w), vs[(j + 3u) * D4 + c], a);
            }
        }
    }
    if (i < p.lq) {
        // Every row sees key 0 (causal included), so l ≥ 1 here.
        let inv = 1.0 / l;
        let base = p.o_off + (b * p.lq + i) * hd + h * D;
        for (var c = 0u; c < D4; c++) {
            let y = acc[c] * inv;
            for (var t = 0u; t < 4u; t++) {
                if (c * 4u + t < D) {
                    o[base + c * 4u + t] = y[t];
                }
            }
        }
    }
}

#if SUBGROUP
// attention_rows4: each invocation owns 4 query rows as the 4 components of vec4s (qv[d] holds
// channel d of the 4 rows), so the online softmax is plain vec4 math and every shuffled k or v
// value meets the 4 rows in one vec4 FMA. Arrays stay in registers only when indexed by
// constants, i.e. inside unrolled loops, and Mesa unrolls a loop nest only while it is small
// (~800 scalar instructions): hence separate calls of one small nest per CH vec4 channels
// (qk_part, pv_part) rather than a loop over them; 4 vec4 channels per nest unroll, 8 do not
// (measured at L=2880, D=64: CH=4 18.6 GFLOP/s, CH=8 8.0). Up to D = 256 (SD 1.5's 160
// included); larger heads take `attention`.
const CH: u32 = 4u;

// Scores of the 4 rows (vec4) against the 4 keys held by lanes j..j+3 (columns of s), channels
// 4·c0 .. 4·(c0+CH): each q value is loaded once for 4 keys.
fn qk_part(qv: ptr<function, array<vec4<f32>, 4u * D4>>, kr: ptr<function, array<vec4<f32>, D4>>, j: u32, c0: u32, s_in: mat4x4<f32>) -> mat4x4<f32> {
    var s = s_in;
    for (var c = c0; c < min(c0 + CH, D4); c++) {
        let k_0 = subgroupShuffle((*kr)[c], j);
        let k_1 = subgroupShuffle((*kr)[c], j + 1u);
        let k_2 = subgroupShuffle((*kr)[c], j + 2u);
        let k_3 = subgroupShuffle((*kr)[c], j + 3u);
        for (var t = 0u; t < 4u; t++) {
            let qd = (*qv)[4u * c + t];
            s[0] = fma(qd, vec4<f32>(k_0[t]), s[0]);
            s[1] = fma(qd, vec4<f32>(k_1[t]), s[1]);
            s[2] = fma(qd, vec4<f32>(k_2[t]), s[2]);
            s[3] = fma(qd, vec4<f32>(k_3[t]), s[3]);
        }
    }
    return s;
}

// acc = acc·alpha + Σ_n w[n] · v[key j+n], channels 4·c0 .. 4·(c0+CH): one load and store of
// each accumulator per 4 keys.
fn pv_part(acc: ptr<function, array<vec4<f32>, 4u * D4>>, vr: ptr<function, array<vec4<f32>, D4>>, j: u32, c0: u32, w: mat4x4<f32>, alpha: vec4<f32>) {
    for (var c = c0; c < min(c0 + CH, D4); c++) {
        let v_0 = subgroupShuffle((*vr)[c], j);
        let v_1 = subgroupShuffle((*vr)[c], j + 1u);
        let v_2 = subgroupShuffle((*vr)[c], j + 2u);
        let v_3 = subgroupShuffle((*vr)[c], j + 3u);
        for (var t = 0u; t < 4u; t++) {
            var a = (*acc)[4u * c + t] * alpha;
            a = fma(w[0], vec4<f32>(v_0[t]), a);
            a = fma(w[1], vec4<f32>(v_1[t]), a);
            a = fma(w[2], vec4<f32>(v_2[t]), a);
            (*acc)[4u * c + t] = fma(w[3], vec4<f32>(v_3[t]), a);
        }
    }
}

// Separate calls rather than a loop over c0: each call is its own small loop nest, which Mesa
// unrolls; the guards are constant. Up to 16 chunks: D4 ≤ 64 (D ≤ 256).
fn qk_all(qv: ptr<function, array<vec4<f32>, 4u * D4>>, kr: ptr<function, array<vec4<f32>, D4>>, j: u32) -> mat4x4<f32> {
    var s = qk_part(qv, kr, j, 0u, mat4x4<f32>());
    if (D4 > CH) { s = qk_part(qv, kr, j, CH, s); }
    if (D4 > 2u * CH) { s = qk_part(qv, kr, j, 2u * CH, s); }
    if (D4 > 3u * CH) { s = qk_part(qv, kr, j, 3u * CH, s); }
    if (D4 > 4u * CH) { s = qk_part(qv, kr, j, 4u * CH, s); }
    if (D4 > 5u * CH) { s = qk_part(qv, kr, j, 5u * CH, s); }
    if (D4 > 6u * CH) { s = qk_part(qv, kr, j, 6u * CH, s); }
    if (D4 > 7u * CH) { s = qk_part(qv, kr, j, 7u * CH, s); }
    if (D4 > 8u * CH) { s = qk_part(qv, kr, j, 8u * CH, s); }
    if (D4 > 9u * CH) { s = qk_part(qv, kr, j, 9u * CH, s); }
    if (D4 > 10u * CH) { s = qk_part(qv, kr, j, 10u * CH, s); }
    if (D4 > 11u * CH) { s = qk_part(qv, kr, j, 11u * CH, s); }
    if (D4 > 12u * CH) { s = qk_part(qv, kr, j, 12u * CH, s); }
    if (D4 > 13u * CH) { s = qk_part(qv, kr, j, 13u * CH, s); }
    if (D4 > 14u * CH) { s = qk_part(qv, kr, j, 14u * CH, s); }
    if (D4 > 15u * CH) { s = qk_part(qv, kr, j, 15u * CH, s); }
    return s;
}

fn pv_all(acc: ptr<function, array<vec4<f32>, 4u * D4>>, vr: ptr<function, array<vec4<f32>, D4>>, j: u32, w: mat4x4<f32>, alpha: vec4<f32>) {
    pv_part(acc, vr, j, 0u, w, alpha);
    if (D4 > CH) { pv_part(acc, vr, j, CH, w, alpha); }
    if (D4 > 2u * CH) { pv_part(acc, vr, j, 2u * CH, w, alpha); }
    if (D4 > 3u * CH) { pv_part(acc, vr, j, 3u * CH, w, alpha); }
    if (D4 > 4u * CH) { pv_part(acc, vr, j, 4u * CH, w, alpha); }
    if (D4 > 5u * CH) { pv_part(acc, vr, j, 5u * CH, w, alpha); }
    if (D4 > 6u * CH) { pv_part(acc, vr, j, 6u * CH, w, alpha); }
    if (D4 > 7u * CH) { pv_part(acc, vr, j, 7u * CH, w, alpha); }
    if (D4 > 8u * CH) { pv_part(acc, vr, j, 8u * CH, w, alpha); }
    if (D4 > 9u * CH) { pv_part(acc, vr, j, 9u * CH, w, alpha); }
    if (D4 > 10u * CH) { pv_part(acc, vr, j, 10u * CH, w, alpha); }
    if (D4 > 11u * CH) { pv_part(acc, vr, j, 11u * CH, w, alpha); }
    if (D4 > 12u * CH) { pv_part(acc, vr, j, 12u * CH, w, alpha); }
    if (D4 > 13u * CH) { pv_part(acc, vr, j, 13u * CH, w, alpha); }
    if (D4 > 14u * CH) { pv_part(acc, vr, j, 14u * CH, w, alpha); }
    if (D4 > 15u * CH) { pv_part(acc, vr, j, 15u * CH, w, alpha); }
}

@compute @workgroup_size({{WG}})
fn attention_rows4(
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) sl: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = wg_linear(wid, nwg);
    if (g >= p.n_groups) {
        return;
    }
    let hd = p.heads * D;
    let tile = g % p.q_tiles;
    let bh = g / p.q_tiles;
    let h = bh % p.heads;
    let b = bh / p.heads;
    let q0 = tile * WG * 4u;
    let kv_row0 = b * p.lk;
    let rows = vec4<u32>(q0 + lid) + vec4<u32>(0u, WG, 2u * WG, 3u * WG);

    var qv: array<vec4<f32>, 4u * D4>;
    var acc: array<vec4<f32>, 4u * D4>;
    // Runtime bounds (p.d4) on the loops that move rows in and out: see Params.d4.
    for (var d = 0u; d < 4u * p.d4; d++) {
        var x = vec4<f32>(0.0);
        if (d < D) {
            for (var r = 0u; r < 4u; r++) {
                // Rows past Lq compute on row Lq-1 (keeps loads in range) and are never stored.
                x[r] = q[p.q_off + (b * p.lq + min(rows[r], p.lq - 1u)) * hd + h * D + d];
            }
        }
        qv[d] = x * p.scale;
        acc[d] = vec4<f32>(0.0);
    }
    var m = vec4<f32>(M_INIT);
    var l = vec4<f32>(0.0);
    let lim = select(vec4<u32>(p.lk), min(vec4<u32>(p.lk), rows + vec4<u32>(1u)), p.causal != 0u);
    var kend = p.lk;
    if (p.causal != 0u) {
        kend = min(p.lk, min(q0 + 4u * WG, p.lq));
    }
    // Each subgroup walks the keys TK = SG at a time, lane t holding key k0+t's K and V rows.
    // Keys past Lk re-read key Lk-1 (finite, so 0·v stays 0) and are masked out.
    for (var k0 = 0u; k0 < kend; k0 += TK) {
        let mine = (kv_row0 + min(k0 + sl, p.lk - 1u)) * hd + h * D;
        var kr: array<vec4<f32>, D4>;
        var vr: array<vec4<f32>, D4>;
        for (var c = 0u; c < p.d4; c++) {
            kr[c] = load4(1u, p.k_off + mine, c);
            vr[c] = load4(2u, p.v_off + mine, c);
        }
        for (var j = 0u; j < min(TK, kend - k0); j += 4u) {
            let sc = qk_all(&qv, &kr, j);
            let key = vec4<u32>(k0 + j);
            let s0 = select(sc[0], vec4<f32>(MASKED), key >= lim);
            let s1 = select(sc[1], vec4<f32>(MASKED), key + vec4<u32>(1u) >= lim);
            let s2 = select(sc[2], vec4<f32>(MASKED), key + vec4<u32>(2u) >= lim);
            let s3 = select(sc[3], vec4<f32>(MASKED), key + vec4<u32>(3u) >= lim);
            let mt = max(m, max(max(s0, s1), max(s2, s3)));
            let alpha = exp2(m - mt);
            m = mt;
            let w = mat4x4<f32>(exp2(s0 - mt), exp2(s1 - mt), exp2(s2 - mt), exp2(s3 - mt));
            l = l * alpha + ((w[0] + w[1]) + (w[2] + w[3]));
            pv_all(&acc, &vr, j, w, alpha);
        }
    }
    // Every row sees key 0 (causal included), so l ≥ 1 here.
    let inv = 1.0 / l;
    for (var d = 0u; d < 4u * p.d4; d++) {
        let y = acc[d] * inv;
        for (var r = 0u; r < 4u; r++) {
            if (rows[r] < p.lq && d < D) {
                o[p.o_off + (b * p.lq + rows[r]) * hd + h * D + d] = y[r];
            }
        }
    }
}
#endif
