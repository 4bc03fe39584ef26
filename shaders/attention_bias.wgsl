// Attention with a T5-style relative-position bias and a key-length mask (UMT5's encoder
// self-attention): O = softmax(Q·Kᵀ·scale + bias[bucket(j − i), h] [keys j ≥ len(b) masked]) · V,
// Q/K/V/O in [B, L, H·D] (H blocks of D channels per token), online softmax so the Lq×Lk scores
// (and the H×Lq×Lk bias) never exist in memory.
//
// The bias is looked up inside the kernel from two small tables: `bucket` (one entry per offset
// j − i, from −(Lq−1) to Lk−1, computed on the host exactly as transformers does in f32) and
// `table` = relative_attention_bias.weight, [buckets, H]. Both hold exact small integers or the
// weights as f32. Key lengths are one f32 per batch row (the attention mask of a right-padded
// prompt is a prefix of ones); masked keys get a score far below any real one, so their weight
// is exactly 0, as torch's finfo.min additive mask gives. Padded query rows are computed like
// the others (over the valid keys) and later discarded by the caller.
//
// Layout and loop structure follow shaders/attention.wgsl's `attention` entry: one query row per
// invocation, TK keys of K and V staged in workgroup memory, 4 keys per online-softmax step,
// scores carrying log2(e) so the softmax is exp2.

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
    scale: f32,     // softmax scale × log2(e), folded into q
    b0: u32,        // batch index of this dispatch's first row (into key_len)
    table_off: u32,
    bucket_off: u32,
    len_off: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<storage, read> table: array<f32>;
@group(0) @binding(6) var<storage, read> bucket: array<f32>;
@group(0) @binding(7) var<storage, read> key_len: array<f32>;

const D: u32 = {{D}}u;
const D4: u32 = (D + 3u) / 4u;
const WG: u32 = {{WG}}u;
const TK: u32 = {{TK}}u;
const MASKED: f32 = -3.0e38;
const M_INIT: f32 = -1.0e30;
const LOG2E: f32 = 1.4426950408889634;

var<workgroup> ks: array<vec4<f32>, TK * D4>;
var<workgroup> vs: array<vec4<f32>, TK * D4>;

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

// Bias (× log2 e) of key j for query row i of head h; j ≤ Lk − 1 + 3 may be a padding key of
// the last step (clamped, masked anyway).
fn bias(i: u32, j: u32, h: u32) -> f32 {
    let off = min(j, p.lk - 1u) + p.lq - 1u - i;
    return table[p.table_off + u32(bucket[p.bucket_off + off]) * p.heads + h] * LOG2E;
}

@compute @workgroup_size({{WG}})
fn attention_bias(
    @builtin(local_invocation_index) lid: u32,
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
    let i_raw = tile * WG + lid;
    // Rows past Lq compute on row Lq−1 (keeps every load in range) and are never stored.
    let i = min(i_raw, p.lq - 1u);
    let kv_row0 = b * p.lk;
    let q_base = p.q_off + (b * p.lq + i) * hd + h * D;
    var qr: array<vec4<f32>, D4>;
    var acc: array<vec4<f32>, D4>;
    for (var c = 0u; c < D4; c++) {
        qr[c] = load4(0u, q_base, c) * p.scale;
        acc[c] = vec4<f32>(0.0);
    }
    var m = M_INIT;
    var l = 0.0;
    let lim = min(p.lk, u32(key_len[p.len_off + p.b0 + b]));
    for (var k0 = 0u; k0 < lim; k0 += TK) {
        let staged = (min(TK, lim - k0) + 3u) / 4u * 4u;
        workgroupBarrier();
        for (var e = lid; e < staged * D4; e += WG) {
            let row = (kv_row0 + min(k0 + e / D4, p.lk - 1u)) * hd + h * D;
            ks[e] = load4(1u, p.k_off + row, e % D4);
            vs[e] = load4(2u, p.v_off + row, e % D4);
        }
        workgroupBarrier();
        for (var j = 0u; j < min(TK, lim - k0); j += 4u) {
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
            let key = k0 + j;
            s += vec4<f32>(bias(i, key, h), bias(i, key + 1u, h), bias(i, key + 2u, h), bias(i, key + 3u, h));
            s = select(s, vec4<f32>(MASKED), vec4<u32>(key) + vec4<u32>(0u, 1u, 2u, 3u) >= vec4<u32>(lim));
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
    if (i_raw < p.lq) {
        // The host guarantees len ≥ 1, so l ≥ 1 here.
        let inv = 1.0 / l;
        let base = p.o_off + (b * p.lq + i_raw) * hd + h * D;
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
