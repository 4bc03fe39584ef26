// Scaled dot-product attention, online softmax ("flash"): O = softmax(Q·Kᵀ·scale [+ causal]) · V
// per (batch, head), with Q/K/V/O in diffusers' [B, L, H·D] layout (heads interleaved as H
// blocks of D channels). The L×L score matrix never exists: a workgroup owns WG·QB query rows
// of one (batch, head) and streams K/V through workgroup memory TK keys at a time, keeping a
// running max, running sum and output accumulator per row in registers (all f32).
//
// Why this shape: every invocation reads the same staged key or value at the same time, so the
// inner loops' workgroup-memory loads have a workgroup-uniform address (a broadcast on GPUs, a
// single scalar load on CPU-SIMD drivers like lavapipe) and each one feeds QB vec4 FMAs. The
// per-lane (divergent-address) global loads are only the staging copies, amortised over the
// WG·QB rows that share them, and q / output once per row. Scores are kept pre-scaled by
// log2(e) so the softmax is exp2. D is padded to whole vec4s (pad lanes are zero in Q and K).
// Measured: see ATTN_MEASURED_NOTE below.

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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

const D: u32 = {{D}}u;
const D4: u32 = (D + 3u) / 4u;
const WG: u32 = {{WG}}u;
const QB: u32 = {{QB}}u;
const TK: u32 = {{TK}}u;
// Keys per online-softmax step (TK is a multiple of it).
const KB: u32 = {{KB}}u;
// Below any real score but finite: exp2(MASKED - m) is exactly 0 and never NaN, and a row whose
// keys are all masked so far keeps m = M_INIT (alpha stays 1, sums stay 0).
const MASKED: f32 = -3.0e38;
const M_INIT: f32 = -1.0e30;

var<workgroup> ks: array<vec4<f32>, TK * D4>;
var<workgroup> vs: array<vec4<f32>, TK * D4>;

// Four channels of one row starting at channel 4·c4; pad channels (≥ D) read as 0 and never
// index outside the row's head.
fn load4(src: u32, base: u32, c4: u32) -> vec4<f32> {
    var r = vec4<f32>(0.0);
    for (var t = 0u; t < 4u; t++) {
        let d = c4 * 4u + t;
        var x = 0.0;
        if (d < D) {
            if (src == 0u) {
                x = q[base + d];
            } else if (src == 1u) {
                x = k[base + d];
            } else {
                x = v[base + d];
            }
        }
        r[t] = x;
    }
    return r;
}

var<private> kv_base: u32;
var<private> kv_hd: u32;
var<private> kv_head: u32;
fn key4(key: u32, at: u32, c: u32) -> vec4<f32> {
#if STAGE
    return ks[at];
#else
    return load4(1u, p.k_off + (kv_base + min(key, p.lk - 1u)) * kv_hd + kv_head, c);
#endif
}
fn value4(key: u32, at: u32, c: u32) -> vec4<f32> {
#if STAGE
    return vs[at];
#else
    return load4(2u, p.v_off + (kv_base + min(key, p.lk - 1u)) * kv_hd + kv_head, c);
#endif
}

@compute @workgroup_size({{WG}})
fn attention(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
    let q0 = tile * WG * QB;

    var qr: array<array<vec4<f32>, D4>, QB>;
    var acc: array<array<vec4<f32>, D4>, QB>;
    var m: array<f32, QB>;
    var l: array<f32, QB>;
    // Keys at index ≥ lim[r] are invisible to row r (end of sequence, or the causal diagonal).
    var lim: array<u32, QB>;
    for (var r = 0u; r < QB; r++) {
        let i = q0 + r * WG + lid;
        // Rows past Lq compute on row Lq-1 (keeps every load in range) and are never stored.
        let base = p.q_off + (b * p.lq + min(i, p.lq - 1u)) * hd + h * D;
        for (var c = 0u; c < D4; c++) {
            qr[r][c] = load4(0u, base, c) * p.scale;
            acc[r][c] = vec4<f32>(0.0);
        }
        m[r] = M_INIT;
        l[r] = 0.0;
        lim[r] = select(p.lk, min(p.lk, i + 1u), p.causal != 0u);
    }
    // Causal: no row of this tile sees past its last row.
    var kend = p.lk;
    if (p.causal != 0u) {
        kend = min(p.lk, min(q0 + WG * QB, p.lq));
    }
    let kv_row0 = b * p.lk;
    kv_base = kv_row0;
    kv_hd = hd;
    kv_head = h * D;
    for (var k0 = 0u; k0 < kend; k0 += TK) {
        // Staged rows: the keys left, rounded up to whole KB blocks so every key a block reads
        // holds finite data (rows past Lk re-read key Lk-1 and are masked out of the softmax).
        let n = min(TK, kend - k0);
        let rows = (n + KB - 1u) / KB * KB;
#if STAGE
        workgroupBarrier();
        for (var e = lid; e < rows * D4; e += WG) {
            let j = e / D4;
            let c = e % D4;
            let row = (kv_row0 + min(k0 + j, p.lk - 1u)) * hd + h * D;
            ks[e] = load4(1u, p.k_off + row, c);
            vs[e] = load4(2u, p.v_off + row, c);
        }
        workgroupBarrier();
#endif
        // A runtime loop over blocks of KB keys: the block body is unrolled (scores stay in
        // registers) but the whole tile is not, which would bloat the shader and its compile.
        for (var j0 = 0u; j0 < rows; j0 += KB) {
            var s: array<array<f32, KB>, QB>;
            for (var jj = 0u; jj < KB; jj++) {
                var dv: array<vec4<f32>, QB>;
                for (var r = 0u; r < QB; r++) {
                    dv[r] = vec4<f32>(0.0);
                }
                for (var c = 0u; c < D4; c++) {
                    let kk = key4(k0 + j0 + jj, (j0 + jj) * D4 + c, c);
                    for (var r = 0u; r < QB; r++) {
                        dv[r] = fma(qr[r][c], kk, dv[r]);
                    }
                }
                for (var r = 0u; r < QB; r++) {
                    let x = (dv[r].x + dv[r].y) + (dv[r].z + dv[r].w);
                    s[r][jj] = select(x, MASKED, k0 + j0 + jj >= lim[r]);
                }
            }
            // One rescale of the accumulator per KB keys, not per key.
            for (var r = 0u; r < QB; r++) {
                var mt = m[r];
                for (var jj = 0u; jj < KB; jj++) {
                    mt = max(mt, s[r][jj]);
                }
                let alpha = exp2(m[r] - mt);
                m[r] = mt;
                var ls = 0.0;
                for (var jj = 0u; jj < KB; jj++) {
                    let e = exp2(s[r][jj] - mt);
                    s[r][jj] = e;
                    ls += e;
                }
                l[r] = l[r] * alpha + ls;
                for (var c = 0u; c < D4; c++) {
                    acc[r][c] *= alpha;
                }
            }
            for (var jj = 0u; jj < KB; jj++) {
                for (var c = 0u; c < D4; c++) {
                    let vv = value4(k0 + j0 + jj, (j0 + jj) * D4 + c, c);
                    for (var r = 0u; r < QB; r++) {
                        acc[r][c] = fma(vec4<f32>(s[r][jj]), vv, acc[r][c]);
                    }
                }
            }
        }
    }
    for (var r = 0u; r < QB; r++) {
        let i = q0 + r * WG + lid;
        if (i < p.lq) {
            // Every row sees key 0 (causal included), so l ≥ 1 here.
            let inv = 1.0 / l[r];
            let base = p.o_off + (b * p.lq + i) * hd + h * D;
            for (var c = 0u; c < D4; c++) {
                let y = acc[r][c] * inv;
                for (var t = 0u; t < 4u; t++) {
                    if (c * 4u + t < D) {
                        o[base + c * 4u + t] = y[t];
                    }
                }
            }
        }
    }
}
