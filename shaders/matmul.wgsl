// Linear layer: C[M,N] = A[M,K] · W[N,K]ᵀ (+ bias[N]), W in PyTorch's [out, in] layout, f32 or
// f16, accumulation always f32.
//
// Register tiling: each invocation owns TM rows × TN columns of C. All 64 invocations of a
// workgroup share the same TN columns, so every W load has a workgroup-uniform address: one
// broadcast load feeds the whole workgroup (a scalar load on CPU-SIMD drivers like lavapipe, a
// broadcast from L1 / the scalar cache on GPUs), while A is read once per row. With VEC4 the
// inner loop reads A and W as vec4 along K: per 4 k-steps TM + TN vector loads feed 4·TM·TN FMAs.
// Measured outcome and limits: BENCHMARKS.md.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    a_off: u32,
    w_off: u32,
    bias_off: u32,
    c_off: u32,
    has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> a: array<f32>;
#endif
#if W_F16
#if W_U32
#if VEC4
@group(0) @binding(2) var<storage, read> w: array<vec2<u32>>;
#else
@group(0) @binding(2) var<storage, read> w: array<u32>;
#endif
#else
#if VEC4
@group(0) @binding(2) var<storage, read> w: array<vec4<f16>>;
#else
@group(0) @binding(2) var<storage, read> w: array<f16>;
#endif
#endif
#else
#if VEC4
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
#else
@group(0) @binding(2) var<storage, read> w: array<f32>;
#endif
#endif
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const WG: u32 = {{WG}}u;

#if VEC4
// i indexes vec4 groups of W (w_off is in elements and a multiple of 4 here).
fn load_w(i: u32) -> vec4<f32> {
#if W_F16
#if W_U32
    let v = w[p.w_off / 4u + i];
    return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));
#else
    return vec4<f32>(w[p.w_off / 4u + i]);
#endif
#else
    return w[p.w_off / 4u + i];
#endif
}
#else
fn load_w(i: u32) -> f32 {
#if W_F16
#if W_U32
    let e = p.w_off + i;
    return unpack2x16float(w[e >> 1u])[e & 1u];
#else
    return f32(w[p.w_off + i]);
#endif
#else
    return w[p.w_off + i];
#endif
}
#endif

// One tile of C: rows m0..m0+TM × columns n0..n0+TN — the row tiling's, and the column
// tiling's when K is not a multiple of 4.
fn matmul_tile(m0: u32, n0: u32) {
    var acc: array<f32, TM * TN>;
    for (var t = 0u; t < TM * TN; t++) {
        acc[t] = 0.0;
    }
#if VEC4
    let k4 = p.k / 4u;
    var arow: array<u32, TM>;
    for (var i = 0u; i < TM; i++) {
        // Rows past M read row M-1 (kept in range, never stored).
        arow[i] = p.a_off / 4u + min(m0 + i, p.m - 1u) * k4;
    }
    for (var kk = 0u; kk < k4; kk++) {
        var av: array<vec4<f32>, TM>;
        for (var i = 0u; i < TM; i++) {
            av[i] = a[arow[i] + kk];
        }
        for (var j = 0u; j < TN; j++) {
            let wv = load_w(min(n0 + j, p.n - 1u) * k4 + kk);
            for (var i = 0u; i < TM; i++) {
                acc[i * TN + j] = fma(av[i].x, wv.x, fma(av[i].y, wv.y, fma(av[i].z, wv.z, fma(av[i].w, wv.w, acc[i * TN + j]))));
            }
        }
    }
#else
    var arow: array<u32, TM>;
    for (var i = 0u; i < TM; i++) {
        arow[i] = p.a_off + min(m0 + i, p.m - 1u) * p.k;
    }
    for (var kk = 0u; kk < p.k; kk++) {
        var av: array<f32, TM>;
        for (var i = 0u; i < TM; i++) {
            av[i] = a[arow[i] + kk];
        }
        for (var j = 0u; j < TN; j++) {
            let wv = load_w(min(n0 + j, p.n - 1u) * p.k + kk);
            for (var i = 0u; i < TM; i++) {
                acc[i * TN + j] = fma(av[i], wv, acc[i * TN + j]);
            }
        }
    }
#endif
    store_tile(m0, n0, &acc);
}

fn store_tile(m0: u32, n0: u32, acc: ptr<function, array<f32, TM * TN>>) {
    for (var i = 0u; i < TM; i++) {
        let row = m0 + i;
        if (row >= p.m) {
            break;
        }
        for (var j = 0u; j < TN; j++) {
            let col = n0 + j;
            if (col < p.n) {
                var v = (*acc)[i * TN + j];
                if (p.has_bias != 0u) {
                    v += bias[p.bias_off + col];
                }
                c[p.c_off + row * p.n + col] = v;
            }
        }
    }
}

@compute @workgroup_size({{WG}})
fn matmul(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n_tiles = (p.n + TN - 1u) / TN;
    let m_tiles = (p.m + WG * TM - 1u) / (WG * TM);
    let g = wg_linear(wid, nwg);
    if (g >= n_tiles * m_tiles) {
        return;
    }
    // Consecutive workgroups walk N first so they reuse the same rows of A from cache.
    let n0 = (g % n_tiles) * TN;
    let m0 = (g / n_tiles) * WG * TM + lid * TM;
    matmul_tile(m0, n0);
}

// The transposed tiling, for CPU-SIMD drivers (lavapipe): an invocation owns TN consecutive
// columns of C and the whole workgroup shares TM rows, so it is A whose loads are
// workgroup-uniform (one scalar load broadcast to the vector) while each lane walks its own W
// rows along K. Lanes of one SIMD vector then never idle on a short M (a GEMV keeps every lane
// busy). Which tiling runs is chosen by shape per adapter class (src/ops/tiles.rs).
@compute @workgroup_size({{WG}})
fn matmul_cols(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n_tiles = (p.n + WG * TN - 1u) / (WG * TN);
    let m_tiles = (p.m + TM - 1u) / TM;
    let g = wg_linear(wid, nwg);
    if (g >= n_tiles * m_tiles) {
        return;
    }
    let n0 = (g % n_tiles) * WG * TN + lid * TN;
    let m0 = (g / n_tiles) * TM;
#if VEC4
    matmul_cols_tile(m0, n0);
#else
    matmul_tile(m0, n0);
#endif
}

#if VEC4
// The column tiling's own inner loop, shaped for how lavapipe compiles it (BENCHMARKS.md "A GEMM
// for CPU drivers"): a per-lane load is a gather, so each lane's TN vec4s of W are loaded once
// per step (f16 pairs as u32, which x86 gathers natively; 16-bit lanes are loaded one by one)
// and reused by all TM rows, whose uniform A loads feed TN columns each. 1.5× the shared tile
// body on this driver at the UNet's shapes.
fn matmul_cols_tile(m0: u32, n0: u32) {
    var acc: array<f32, TM * TN>;
    for (var t = 0u; t < TM * TN; t++) {
        acc[t] = 0.0;
    }
    let k4 = p.k / 4u;
    var wrow: array<u32, TN>;
    for (var j = 0u; j < TN; j++) {
        // Columns past N read column N-1 (kept in range, never stored).
        wrow[j] = min(n0 + j, p.n - 1u) * k4;
    }
    var arow: array<u32, TM>;
    for (var i = 0u; i < TM; i++) {
        arow[i] = p.a_off / 4u + min(m0 + i, p.m - 1u) * k4;
    }
    for (var kk = 0u; kk < k4; kk++) {
        var wv: array<vec4<f32>, TN>;
        for (var j = 0u; j < TN; j++) {
            wv[j] = load_w(wrow[j] + kk);
        }
        for (var i = 0u; i < TM; i++) {
            let av = a[arow[i] + kk];
            for (var j = 0u; j < TN; j++) {
                acc[i * TN + j] = fma(av.x, wv[j].x, fma(av.y, wv[j].y, fma(av.z, wv[j].z, fma(av.w, wv[j].w, acc[i * TN + j]))));
            }
        }
    }
    store_tile(m0, n0, &acc);
}
#endif
