// Scaled dot-product attention on matrix units (cooperative matrices): both products, Q·Kᵀ and
// P·V, are S×S coop multiply-adds on f16 tiles with f32 accumulation; the online softmax between
// them runs in plain f32 code. Same contract as attention.wgsl: Q/K/V/O in diffusers' [B, L, H·D]
// layout, scores scaled by scale·log2(e) (folded into q) so the softmax is exp2, optional causal
// mask (key j visible to query i iff j ≤ i), scores never stored beyond one S×S tile.
//
// A workgroup is NSG subgroups and owns NSG·S query rows of one (batch, head); each subgroup owns
// S rows. Per step, S keys of K and V are staged in workgroup memory as f16 (shared by all
// subgroups). Each subgroup then: scores = Q·Kᵀ (DP/S multiply-adds into one C tile) → its
// scratch; one lane per row updates the running max and sum and writes P = exp2(s − m) as f16;
// the output rows (f32, in workgroup memory: a coop tile cannot be scaled per row) are rescaled
// by exp2(m_old − m_new); O += P·V one S-wide column block at a time. D is padded to DP, a
// multiple of S, with zeros. NSG is chosen by the wrapper to fit the workgroup memory limit.
enable wgpu_cooperative_matrix;

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
    scale: f32,
    causal: u32,
    d4: u32,          // unused here (attention.wgsl's); the wrappers share one parameter block
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

const S: u32 = {{S}}u;
const D: u32 = {{D}}u;
const DP: u32 = (D + S - 1u) / S * S;
const NSG: u32 = {{NSG}}u;
const SG: u32 = {{SG}}u;
const WG: u32 = NSG * SG;
const MASKED: f32 = -3.0e38;
const M_INIT: f32 = -1.0e30;

var<workgroup> kt: array<f16, S * DP>;     // keys × channels
var<workgroup> vt: array<f16, S * DP>;
var<workgroup> qs: array<f16, NSG * S * DP>;
var<workgroup> os: array<f32, NSG * S * DP>;
var<workgroup> ss: array<f32, NSG * S * S>;
var<workgroup> ps: array<f16, NSG * S * S>;
var<workgroup> row_m: array<f32, NSG * S>;
var<workgroup> row_l: array<f32, NSG * S>;
var<workgroup> row_a: array<f32, NSG * S>;

@compute @workgroup_size({{WG}})
fn attention_coop(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) sgs: u32,
) {
    // Coop operations need uniform control flow: the grid's tail repeats the last group and
    // stores nothing instead of returning.
    let g_real = wg_linear(wid, nwg);
    let g = min(g_real, p.n_groups - 1u);
    let live = g_real == g;
    let qt = g % p.q_tiles;
    let bh = g / p.q_tiles;
    let h = bh % p.heads;
    let b = bh / p.heads;
    let hd = p.heads * D;
    let q0 = qt * NSG * S;
    // Extra subgroups (a device running smaller subgroups than SG) mirror a real one's rows.
    let me = sid % NSG;
    let owner = sid < NSG && live;
    let qbase = me * S * DP;
    let sbase = me * S * S;

    for (var e = lid; e < NSG * S * DP; e += WG) {
        let r = e / DP;
        let d = e % DP;
        let row = q0 + r;
        var x = 0.0;
        if (row < p.lq && d < D) {
            x = q[p.q_off + (b * p.lq + row) * hd + h * D + d] * p.scale;
        }
        qs[e] = f16(x);
        os[e] = 0.0;
    }
    for (var r = lid; r < NSG * S; r += WG) {
        row_m[r] = M_INIT;
        row_l[r] = 0.0;
    }
    let ld_s = S;
    let ld_d = DP;
    for (var k0 = 0u; k0 < p.lk; k0 += S) {
        workgroupBarrier();
        for (var e = lid; e < S * DP; e += WG) {
            let key = k0 + e / DP;
            let d = e % DP;
            var kv = 0.0;
            var vv = 0.0;
            if (key < p.lk && d < D) {
                let at = (b * p.lk + key) * hd + h * D + d;
                kv = k[p.k_off + at];
                vv = v[p.v_off + at];
            }
            kt[e] = f16(kv);
            vt[e] = f16(vv);
        }
        for (var e = lid; e < NSG * S * S; e += WG) {
            ss[e] = 0.0;
        }
        workgroupBarrier();
        // scores (S × S) = Q rows · K tileᵀ, over DP/S channel blocks
        var sc = coopLoadT<coop_mat{{S}}x{{S}}<f32, C>>(&ss[sbase], ld_s);
        for (var c = 0u; c < DP; c += S) {
            let qa = qbase + c;
            let a = coopLoadT<coop_mat{{S}}x{{S}}<f16, A>>(&qs[qa], ld_d);
            let kb = coopLoad<coop_mat{{S}}x{{S}}<f16, B>>(&kt[c], ld_d);
            let acc = sc;
            sc = coopMultiplyAdd(a, kb, acc);
        }
        let scores = sc;
        workgroupBarrier();
        coopStoreT(scores, &ss[sbase], ld_s);
        workgroupBarrier();
        // online softmax, one lane per row
        for (var r = lane; r < S; r += sgs) {
            let qi = q0 + me * S + r;
            var mx = row_m[me * S + r];
            for (var j = 0u; j < S; j++) {
                let key = k0 + j;
                var s = ss[sbase + r * S + j];
                if (key >= p.lk || (p.causal != 0u && key > qi)) {
                    s = MASKED;
                }
                ss[sbase + r * S + j] = s;
                mx = max(mx, s);
            }
            let alpha = exp2(row_m[me * S + r] - mx);
            var sum = 0.0;
            for (var j = 0u; j < S; j++) {
                let pj = exp2(ss[sbase + r * S + j] - mx);
                sum += pj;
                ps[sbase + r * S + j] = f16(pj);
            }
            row_m[me * S + r] = mx;
            row_l[me * S + r] = row_l[me * S + r] * alpha + sum;
            row_a[me * S + r] = alpha;
        }
        workgroupBarrier();
        for (var e = lane; e < S * DP; e += sgs) {
            os[qbase + e] *= row_a[me * S + e / DP];
        }
        workgroupBarrier();
        // O (S × DP) += P (S × S keys) · V tile (keys × DP), one S-wide column block at a time
        let pa = coopLoadT<coop_mat{{S}}x{{S}}<f16, A>>(&ps[sbase], ld_s);
        for (var c = 0u; c < DP; c += S) {
            let oc = qbase + c;
            let acc = coopLoadT<coop_mat{{S}}x{{S}}<f32, C>>(&os[oc], ld_d);
            let vb = coopLoadT<coop_mat{{S}}x{{S}}<f16, B>>(&vt[c], ld_d);
            let res = coopMultiplyAdd(pa, vb, acc);
            coopStoreT(res, &os[oc], ld_d);
        }
    }
    workgroupBarrier();
    if (owner) {
        for (var e = lane; e < S * D; e += sgs) {
            let r = e / D;
            let d = e % D;
            let row = q0 + me * S + r;
            if (row < p.lq) {
                o[p.o_off + (b * p.lq + row) * hd + h * D + d] = os[qbase + r * DP + d] / row_l[me * S + r];
            }
        }
    }
}
