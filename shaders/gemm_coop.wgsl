// GEMM-shaped work on matrix units (cooperative matrices): C[M,N] = A[M,K] · W[N,K]ᵀ (+ bias),
// with W in PyTorch's [out, in] layout. One kernel, three ways to read A and write C:
// - LINEAR:   A is [M, K] row-major; C is [M, N] row-major.
// - CONV2D:   implicit GEMM of a KS×KS convolution: rows are output pixels of all images,
//             K = Cin·KS·KS is gathered from the input with zero padding; C is NCHW (with an
//             optional accumulate for input-channel chunks).
// - TEMPORAL: Conv3d (3,1,1) over frames: rows are (batch, frame, pixel), K = Cin·3 with zero
//             frames outside the clip; input and output addressed by (batch, frame, channel)
//             strides, so both frame layouts work.
//
// Tiling (for GPUs): a workgroup is WM×WN subgroups and owns a BM×BN block of C; each subgroup
// owns TM×TN coop tiles of S×S (register reuse: TM + TN tile loads feed TM·TN multiply-adds).
// K advances in BK-deep slabs staged in workgroup memory as f16 — this is where f32 activations
// become f16; accumulation stays f32. Edges are zero-padded while staging, and results go out
// through a per-subgroup f32 scratch tile so bias, layout and bounds are handled in plain code.
// S (8 or 16) is the adapter's coop size; SG the subgroup size the workgroup is sized for.
enable wgpu_cooperative_matrix;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    a_off: u32,
    w_off: u32,       // element offset of W[0][0] (conv chunks point it at their first channel)
    w_stride: u32,    // elements between rows of W
    b_off: u32,
    c_off: u32,
    has_bias: u32,
    accumulate: u32,  // C += result (conv2d input-channel chunks after the first)
    // CONV2D: images' geometry. TEMPORAL: g0..g2 = input strides (batch, frame, channel),
    // g3..g5 = output strides, g6 = frames, g7 = pixels per frame.
    g0: u32,
    g1: u32,
    g2: u32,
    g3: u32,
    g4: u32,
    g5: u32,
    g6: u32,
    g7: u32,
    g8: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
#if W_F16
@group(0) @binding(2) var<storage, read> wt: array<f16>;
#else
@group(0) @binding(2) var<storage, read> wt: array<f32>;
#endif
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const S: u32 = {{S}}u;
const SG: u32 = {{SG}}u;
const WM: u32 = 2u;
const WN: u32 = 2u;
const TM: u32 = 2u;
const TN: u32 = 2u;
const NSG: u32 = WM * WN;
const WG: u32 = NSG * SG;
const BM: u32 = WM * TM * S;
const BN: u32 = WN * TN * S;
const BK: u32 = 2u * S;

var<workgroup> ta: array<f16, BM * BK>;   // A slab, row-major [BM][BK]
var<workgroup> tb: array<f16, BN * BK>;   // W slab [BN][BK]: B = Wᵀ read column-major
var<workgroup> tc: array<f32, NSG * S * S>;

#if LINEAR
fn load_a(row: u32, kk: u32) -> f32 {
    return a[p.a_off + row * p.k + kk];
}

fn store_c(row: u32, col: u32, v: f32) {
    c[p.c_off + row * p.n + col] = v;
}
#endif

#if CONV2D
// g0 = cin, g1 = h, g2 = w, g3 = oh, g4 = ow, g5 = stride, g6 = pad
fn load_a(row: u32, kk: u32) -> f32 {
    let pixels = p.g3 * p.g4;
    let img = row / pixels;
    let px = row % pixels;
    let ci = kk / ({{KS}}u * {{KS}}u);
    let r = kk % ({{KS}}u * {{KS}}u);
    let iy = i32((px / p.g4) * p.g5 + r / {{KS}}u) - i32(p.g6);
    let ix = i32((px % p.g4) * p.g5 + r % {{KS}}u) - i32(p.g6);
    if (iy < 0 || iy >= i32(p.g1) || ix < 0 || ix >= i32(p.g2)) {
        return 0.0;
    }
    return a[p.a_off + ((img * p.g0 + ci) * p.g1 + u32(iy)) * p.g2 + u32(ix)];
}

fn store_c(row: u32, col: u32, v: f32) {
    let pixels = p.g3 * p.g4;
    let at = p.c_off + ((row / pixels) * p.n + col) * pixels + row % pixels;
    var prev = 0.0;
    if (p.accumulate != 0u) {
        prev = c[at];
    }
    c[at] = prev + v;
}
#endif

#if TEMPORAL
fn load_a(row: u32, kk: u32) -> f32 {
    let px = row % p.g7;
    let bf = row / p.g7;
    let ff = i32(bf % p.g6) + i32(kk % 3u) - 1;
    if (ff < 0 || ff >= i32(p.g6)) {
        return 0.0;
    }
    return a[p.a_off + (bf / p.g6) * p.g0 + u32(ff) * p.g1 + (kk / 3u) * p.g2 + px];
}

fn store_c(row: u32, col: u32, v: f32) {
    let px = row % p.g7;
    let bf = row / p.g7;
    c[p.c_off + (bf / p.g6) * p.g3 + (bf % p.g6) * p.g4 + col * p.g5 + px] = v;
}
#endif

fn load_w(col: u32, kk: u32) -> f32 {
    return f32(wt[p.w_off + col * p.w_stride + kk]);
}

// One S×S result tile out through the subgroup's scratch: bias, bounds and layout in plain code.
fn emit(r: coop_mat{{S}}x{{S}}<f32, C>, scratch: u32, row0: u32, col0: u32, owner: bool, lane: u32, sgs: u32) {
    workgroupBarrier();
    let stride = S;
    coopStoreT(r, &tc[scratch], stride);
    workgroupBarrier();
    if (owner) {
        for (var e = lane; e < S * S; e += sgs) {
            let row = row0 + e / S;
            let col = col0 + e % S;
            if (row < p.m && col < p.n) {
                var v = tc[scratch + e];
                if (p.has_bias != 0u) {
                    v += bias[p.b_off + col];
                }
                store_c(row, col, v);
            }
        }
    }
}

@compute @workgroup_size({{WG}})
fn gemm_coop(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) sgs: u32,
) {
    let n_tiles = (p.n + BN - 1u) / BN;
    let m_tiles = (p.m + BM - 1u) / BM;
    // Coop operations need uniform control flow, so the tail of a 2-D grid recomputes the
    // last block instead of returning, and stores nothing.
    let g_real = wg_linear(wid, nwg);
    let g = min(g_real, n_tiles * m_tiles - 1u);
    let m0 = (g / n_tiles) * BM;
    let n0 = (g % n_tiles) * BN;
    // A device whose subgroups are smaller than SG runs more of them: the extra ones repeat a
    // real subgroup's tiles (same values) and store nothing.
    let me = sid % NSG;
    let owner = sid < NSG && g_real == g;
    let sm = me / WN;
    let sn = me % WN;
    let scratch = me * S * S;

    for (var i = lid; i < NSG * S * S; i += WG) {
        tc[i] = 0.0;
    }
    workgroupBarrier();
    let s_stride = S;
    let zero = coopLoadT<coop_mat{{S}}x{{S}}<f32, C>>(&tc[scratch], s_stride);
    var acc00 = zero;
    var acc01 = zero;
    var acc10 = zero;
    var acc11 = zero;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        workgroupBarrier();
        for (var e = lid; e < BM * BK; e += WG) {
            let row = m0 + e / BK;
            let kk = k0 + e % BK;
            var v = 0.0;
            if (row < p.m && kk < p.k) {
                v = load_a(row, kk);
            }
            ta[e] = f16(v);
        }
        for (var e = lid; e < BN * BK; e += WG) {
            let col = n0 + e / BK;
            let kk = k0 + e % BK;
            var v = 0.0;
            if (col < p.n && kk < p.k) {
                v = load_w(col, kk);
            }
            tb[e] = f16(v);
        }
        workgroupBarrier();
        for (var ks = 0u; ks < BK; ks += S) {
            // naga 30's SPIR-V writer needs every coopLoad operand bound to a let.
            let oa0 = (sm * TM * S) * BK + ks;
            let oa1 = oa0 + S * BK;
            let ob0 = (sn * TN * S) * BK + ks;
            let ob1 = ob0 + S * BK;
            let kst = BK;
            let a0 = coopLoadT<coop_mat{{S}}x{{S}}<f16, A>>(&ta[oa0], kst);
            let a1 = coopLoadT<coop_mat{{S}}x{{S}}<f16, A>>(&ta[oa1], kst);
            let b0 = coopLoad<coop_mat{{S}}x{{S}}<f16, B>>(&tb[ob0], kst);
            let b1 = coopLoad<coop_mat{{S}}x{{S}}<f16, B>>(&tb[ob1], kst);
            let c00 = acc00;
            let c01 = acc01;
            let c10 = acc10;
            let c11 = acc11;
            acc00 = coopMultiplyAdd(a0, b0, c00);
            acc01 = coopMultiplyAdd(a0, b1, c01);
            acc10 = coopMultiplyAdd(a1, b0, c10);
            acc11 = coopMultiplyAdd(a1, b1, c11);
        }
    }
    let r00 = acc00;
    let r01 = acc01;
    let r10 = acc10;
    let r11 = acc11;
    let row0 = m0 + sm * TM * S;
    let col0 = n0 + sn * TN * S;
    emit(r00, scratch, row0, col0, owner, lane, sgs);
    emit(r01, scratch, row0, col0 + S, owner, lane, sgs);
    emit(r10, scratch, row0 + S, col0, owner, lane, sgs);
    emit(r11, scratch, row0 + S, col0 + S, owner, lane, sgs);
}
