// Causal 3-D convolution (Wan VAE's WanCausalConv3d), stride 1, as an implicit GEMM: output
// pixels of one frame are the GEMM rows, output channels the columns, K = Cin·KT·KS·KS walked
// directly over the input (no im2col buffer — the 4 GB intermediates that broke other ports).
// Weights in PyTorch's [Cout, Cin, KT, KS, KS] layout, f32 or f16; accumulation in f32.
//
// Time is causal and handled by the host: a dispatch computes ONE output frame, and its KT
// temporal taps are bound as separate windows (x0, x1, x2), each one input frame that may live
// in the conv's cache tensor or in the new frames — so [cache ‖ new] is never concatenated,
// and a frame too large for one binding only needs its channel chunk bound. A tap whose bit is
// clear in `taps` is the causal zero padding. Space: zero padding KS/2 on every side.
//
// Tiling as conv2d.wgsl: an invocation owns TM pixels × TN output channels and the workgroup
// shares the TN channels, so weight loads are workgroup-uniform and only pixels are gathered.

struct Params {
    cin: u32,      // input channels read by this dispatch (a chunk of cin_total)
    h: u32,
    w: u32,
    cout: u32,     // output channels written by this dispatch
    x0_off: u32,   // element shift of each tap's window
    x1_off: u32,
    x2_off: u32,
    taps: u32,     // bit t: tap t reads a frame (else zeros)
    w_off: u32,
    b_off: u32,
    y_off: u32,
    has_bias: u32,
    cin_total: u32,
    ci0: u32,
    accumulate: u32,
    clamp_unit: u32, // clamp the finished output to [-1, 1] (the decoder's last conv)
}

@group(0) @binding(0) var<uniform> p: Params;
// Taps 0 and 1 may read cached frames stored as f16 (T0_F16 / T1_F16): natively with
// SHADER_F16, else as u32 pairs through unpack2x16float. Tap 2 is always a new (f32) frame.
#if T0_F16
#if SHADER_F16
@group(0) @binding(1) var<storage, read> x0: array<f16>;
#else
@group(0) @binding(1) var<storage, read> x0: array<u32>;
#endif
#else
@group(0) @binding(1) var<storage, read> x0: array<f32>;
#endif
#if T1_F16
#if SHADER_F16
@group(0) @binding(5) var<storage, read> x1: array<f16>;
#else
@group(0) @binding(5) var<storage, read> x1: array<u32>;
#endif
#else
@group(0) @binding(5) var<storage, read> x1: array<f32>;
#endif
@group(0) @binding(6) var<storage, read> x2: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const KS: u32 = {{KS}}u;
const KT: u32 = {{KT}}u;
const WG: u32 = {{WG}}u;

// `t` is uniform across the workgroup, so the branch costs no divergence.
fn load_x(t: u32, i: u32) -> f32 {
    if (t == 0u) {
#if T0_F16
#if SHADER_F16
        return f32(x0[p.x0_off + i]);
#else
        let e = p.x0_off + i;
        return unpack2x16float(x0[e >> 1u])[e & 1u];
#endif
#else
        return x0[p.x0_off + i];
#endif
    } else if (t == 1u) {
#if T1_F16
#if SHADER_F16
        return f32(x1[p.x1_off + i]);
#else
        let e = p.x1_off + i;
        return unpack2x16float(x1[e >> 1u])[e & 1u];
#endif
#else
        return x1[p.x1_off + i];
#endif
    }
    return x2[p.x2_off + i];
}

@compute @workgroup_size({{WG}})
fn conv3d(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let rows = p.h * p.w;
    let m_tiles = (rows + WG * TM - 1u) / (WG * TM);
    let n_tiles = (p.cout + TN - 1u) / TN;
    let g = wg_linear(wid, nwg);
    if (g >= m_tiles * n_tiles) {
        return;
    }
    let co0 = (g % n_tiles) * TN;
    let r0 = (g / n_tiles) * WG * TM + lid * TM;
    let pad = i32(KS / 2u);

    var iy0: array<i32, TM>;
    var ix0: array<i32, TM>;
    for (var i = 0u; i < TM; i++) {
        let r = min(r0 + i, rows - 1u);
        iy0[i] = i32(r / p.w) - pad;
        ix0[i] = i32(r % p.w) - pad;
    }
    var acc: array<f32, TM * TN>;
    for (var t = 0u; t < TM * TN; t++) {
        acc[t] = 0.0;
    }
    let kvol = KT * KS * KS;
    let wrow = p.cin_total * kvol;
    for (var dt = 0u; dt < KT; dt++) {
        if ((p.taps & (1u << dt)) == 0u) {
            continue;
        }
        for (var ci = 0u; ci < p.cin; ci++) {
            let cbase = ci * rows;
            let kbase = (p.ci0 + ci) * kvol + dt * KS * KS;
            for (var ky = 0u; ky < KS; ky++) {
                for (var kx = 0u; kx < KS; kx++) {
                    var xv: array<f32, TM>;
                    for (var i = 0u; i < TM; i++) {
                        let iy = iy0[i] + i32(ky);
                        let ix = ix0[i] + i32(kx);
                        let inside = iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
                        // Padding taps read a valid address and are zeroed.
                        let idx = select(0u, u32(iy) * p.w + u32(ix), inside);
                        xv[i] = select(0.0, load_x(dt, cbase + idx), inside);
                    }
                    let kidx = kbase + ky * KS + kx;
                    for (var j = 0u; j < TN; j++) {
                        let wv = load_w(min(co0 + j, p.cout - 1u) * wrow + kidx);
                        for (var i = 0u; i < TM; i++) {
                            acc[i * TN + j] = fma(xv[i], wv, acc[i * TN + j]);
                        }
                    }
                }
            }
        }
    }
    for (var j = 0u; j < TN; j++) {
        let co = co0 + j;
        if (co >= p.cout) {
            break;
        }
        var b = 0.0;
        if (p.has_bias != 0u) {
            b = bias[p.b_off + co];
        }
        for (var i = 0u; i < TM; i++) {
            let r = r0 + i;
            if (r < rows) {
                let at = p.y_off + co * rows + r;
                var prev = 0.0;
                if (p.accumulate != 0u) {
                    prev = y[at];
                }
                var v = prev + acc[i * TN + j] + b;
                if (p.clamp_unit != 0u) {
                    v = clamp(v, -1.0, 1.0);
                }
                y[at] = v;
            }
        }
    }
}

// cache_store: writes f32 frames (x2) into an f16 cache buffer seen as u32 words (two halves
// each), elements d0..d0+n of the binding. Words shared with a neighbouring frame keep that
// frame's half, so frames need no even sizes or offsets. One invocation per word.
@group(0) @binding(7) var<storage, read_write> cache_words: array<u32>;

@compute @workgroup_size(256)
fn cache_store(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let wi = wg_linear(wid, nwg) * 256u + lid;
    // Reused fields: cin = words, h = first word, w = d0, cout = n.
    if (wi >= p.cin) {
        return;
    }
    let word = p.h + wi;
    var v = unpack2x16float(cache_words[word]);
    for (var k = 0u; k < 2u; k++) {
        let e = 2u * word + k;
        if (e >= p.w && e < p.w + p.cout) {
            v[k] = x2[p.x2_off + e - p.w];
        }
    }
    cache_words[word] = pack2x16float(v);
}
