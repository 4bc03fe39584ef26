// Conv2d as an implicit GEMM (no im2col buffer): output pixels are the GEMM rows, output
// channels the columns, K = Cin·KS·KS is walked directly over the input with zero padding.
// Weights stay in PyTorch's [Cout, Cin, KS, KS] layout, f32 or f16; accumulation in f32.
//
// Same tiling idea as matmul.wgsl: an invocation owns TM output pixels × TN output channels,
// and all invocations of a workgroup share the TN channels, so weight loads are
// workgroup-uniform (broadcast) and only input pixels are gathered per lane.

struct Params {
    n: u32,        // images in this dispatch
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    oh: u32,
    ow: u32,
    stride: u32,
    pad: u32,      // rows of zeros above (pad_x: columns on the left)
    x_off: u32,
    w_off: u32,
    b_off: u32,
    y_off: u32,
    has_bias: u32,
    // An image too large for one binding is done in channel chunks: this dispatch reads input
    // channels ci0..ci0+cin of the weight's cin_total, and adds to y when accumulate is set.
    cin_total: u32,
    ci0: u32,
    accumulate: u32,
    pad_x: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const KH: u32 = {{KH}}u;
const KW: u32 = {{KW}}u;
const WG: u32 = {{WG}}u;


// One tile of the implicit GEMM: output pixels r0..r0+TM × output channels co0..co0+TN, whichever
// tiling placed it (the two entry points differ only in where a lane's tile starts).
fn conv_tile(r0: u32, co0: u32, rows: u32, pixels: u32) {
    let plane = p.h * p.w;

    // Per owned pixel: its image's input base and its top-left input tap (negative = padding).
    var xb: array<u32, TM>;
    var iy0: array<i32, TM>;
    var ix0: array<i32, TM>;
    for (var i = 0u; i < TM; i++) {
        let r = min(r0 + i, rows - 1u);
        let px = r % pixels;
        xb[i] = p.x_off + (r / pixels) * p.cin * plane;
        iy0[i] = i32((px / p.ow) * p.stride) - i32(p.pad);
        ix0[i] = i32((px % p.ow) * p.stride) - i32(p.pad_x);
    }
    var acc: array<f32, TM * TN>;
    for (var t = 0u; t < TM * TN; t++) {
        acc[t] = 0.0;
    }
    let kk = p.cin_total * KH * KW;
    for (var ci = 0u; ci < p.cin; ci++) {
        let cbase = ci * plane;
        for (var ky = 0u; ky < KH; ky++) {
            for (var kx = 0u; kx < KW; kx++) {
                var xv: array<f32, TM>;
                for (var i = 0u; i < TM; i++) {
                    let iy = iy0[i] + i32(ky);
                    let ix = ix0[i] + i32(kx);
                    let inside = iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
                    // Padding taps read a valid address and are zeroed, keeping loads in range.
                    let idx = select(0u, u32(iy) * p.w + u32(ix), inside);
                    xv[i] = select(0.0, x[xb[i] + cbase + idx], inside);
                }
                let kidx = (p.ci0 + ci) * KH * KW + ky * KW + kx;
                for (var j = 0u; j < TN; j++) {
                    let wv = load_w(min(co0 + j, p.cout - 1u) * kk + kidx);
                    for (var i = 0u; i < TM; i++) {
                        acc[i * TN + j] = fma(xv[i], wv, acc[i * TN + j]);
                    }
                }
            }
        }
    }
    store_tile(r0, co0, rows, pixels, &acc);
}

fn store_tile(r0: u32, co0: u32, rows: u32, pixels: u32, acc: ptr<function, array<f32, TM * TN>>) {
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
                let img = r / pixels;
                let at = p.y_off + (img * p.cout + co) * pixels + r % pixels;
                var prev = 0.0;
                if (p.accumulate != 0u) {
                    prev = y[at];
                }
                y[at] = prev + (*acc)[i * TN + j] + b;
            }
        }
    }
}

@compute @workgroup_size({{WG}})
fn conv2d(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // GEMM rows run over all pixels of all images, so small late-UNet images (9×5 latents)
    // still fill whole tiles.
    let pixels = p.oh * p.ow;
    let rows = p.n * pixels;
    let m_tiles = (rows + WG * TM - 1u) / (WG * TM);
    let n_tiles = (p.cout + TN - 1u) / TN;
    let g = wg_linear(wid, nwg);
    if (g >= m_tiles * n_tiles) {
        return;
    }
    let co0 = (g % n_tiles) * TN;
    let r0 = (g / n_tiles) * WG * TM + lid * TM;
    conv_tile(r0, co0, rows, pixels);
}

// The transposed tiling (see matmul.wgsl's matmul_cols): a lane owns TN output channels and
// the workgroup shares TM output pixels, so the input taps — and their padding tests — are
// workgroup-uniform and each lane walks its own weight rows along K.
@compute @workgroup_size({{WG}})
fn conv2d_cols(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let pixels = p.oh * p.ow;
    let rows = p.n * pixels;
    let m_tiles = (rows + TM - 1u) / TM;
    let n_tiles = (p.cout + WG * TN - 1u) / (WG * TN);
    let g = wg_linear(wid, nwg);
    if (g >= m_tiles * n_tiles) {
        return;
    }
    let co0 = (g % n_tiles) * WG * TN + lid * TN;
    let r0 = (g / n_tiles) * TM;
#if CH_PAIRS
    conv_cols_tile(r0, co0, rows, pixels);
#else
    conv_tile(r0, co0, rows, pixels);
#endif
}

#if CH_PAIRS
// The column tiling's own inner loop for f16 weights, shaped for how lavapipe compiles it (see
// matmul_cols_tile): input channels go in pairs, so a lane's KH·KW taps of two channels are KH·KW
// consecutive u32s of its weight row — natively gathered 32-bit loads, each reused by all TM
// pixels — and each uniform tap position and padding test serves both channels. CH_PAIRS: f16
// weights read as u32s, an even cin, ci0 and cin_total (the wrapper checks; others take
// conv_tile).
const KK = KH * KW;

// Tap t = (ky, kx) of input channels c0/plane and the next, for every owned pixel and channel.
// Pixel i's tap reads base[i] + ky·w + kx where bit t of inside[i] is set, else zero.
fn pair_tap(ky: u32, kx: u32, c0: u32, base: ptr<function, array<i32, TM>>, inside: ptr<function, array<u32, TM>>, wv: ptr<function, array<array<u32, KK>, TN>>, s: ptr<function, array<f32, TM * TN>>) {
    let plane = p.h * p.w;
    let t = ky * KW + kx;
    let t1 = KK + t;
    let off = i32(ky * p.w + kx);
    var w0: array<f32, TN>;
    var w1: array<f32, TN>;
    for (var j = 0u; j < TN; j++) {
        w0[j] = unpack2x16float((*wv)[j][t / 2u])[t % 2u];
        w1[j] = unpack2x16float((*wv)[j][t1 / 2u])[t1 % 2u];
    }
    for (var i = 0u; i < TM; i++) {
        let ok = ((*inside)[i] & (1u << t)) != 0u;
        let a = select(0u, u32((*base)[i] + off), ok) + c0;
        let x0 = select(0.0, x[a], ok);
        let x1 = select(0.0, x[a + plane], ok);
        for (var j = 0u; j < TN; j++) {
            (*s)[i * TN + j] = fma(x1, w1[j], fma(x0, w0[j], (*s)[i * TN + j]));
        }
    }
}

fn conv_cols_tile(r0: u32, co0: u32, rows: u32, pixels: u32) {
    let plane = p.h * p.w;
    // Per owned pixel, once for all channels: its top-left tap's input offset and a bit per tap
    // that lies inside the image.
    var base: array<i32, TM>;
    var inside: array<u32, TM>;
    for (var i = 0u; i < TM; i++) {
        let r = min(r0 + i, rows - 1u);
        let px = r % pixels;
        let iy0 = i32((px / p.ow) * p.stride) - i32(p.pad);
        let ix0 = i32((px % p.ow) * p.stride) - i32(p.pad_x);
        base[i] = i32(p.x_off + (r / pixels) * p.cin * plane) + iy0 * i32(p.w) + ix0;
        var cols = 0u;
        for (var kx = 0u; kx < KW; kx++) {
            let ix = ix0 + i32(kx);
            cols |= select(0u, 1u << kx, ix >= 0 && ix < i32(p.w));
        }
        var bits = 0u;
        for (var ky = 0u; ky < KH; ky++) {
            let iy = iy0 + i32(ky);
            bits |= select(0u, cols << (ky * KW), iy >= 0 && iy < i32(p.h));
        }
        inside[i] = bits;
    }
    var acc: array<f32, TM * TN>;
    for (var t = 0u; t < TM * TN; t++) {
        acc[t] = 0.0;
    }
    // Each lane's weight rows in u32 units, at input channel ci0 (even, so a pair starts on a u32).
    var wrow: array<u32, TN>;
    for (var j = 0u; j < TN; j++) {
        wrow[j] = (p.w_off + min(co0 + j, p.cout - 1u) * p.cin_total * KK + p.ci0 * KK) / 2u;
    }
    for (var ci = 0u; ci < p.cin; ci += 2u) {
        // Taps of channels ci and ci+1 for each owned output channel: halves 0..KK are ci's.
        var wv: array<array<u32, KK>, TN>;
        for (var j = 0u; j < TN; j++) {
            for (var t = 0u; t < KK; t++) {
                wv[j][t] = wt[wrow[j] + ci / 2u * KK + t];
            }
        }
        let c0 = ci * plane;
        // The taps are written out (KH×KW is 3×3 or 1×1 here): as a loop, lavapipe keeps it
        // rolled and indexes wv at run time, through memory. They add into a copy of the
        // accumulators local to the iteration, so only its final copy-back is a loop-carried
        // write (lavapipe blends each such write with the loop's lane mask).
        var s = acc;
#if K3
        pair_tap(0u, 0u, c0, &base, &inside, &wv, &s);
        pair_tap(0u, 1u, c0, &base, &inside, &wv, &s);
        pair_tap(0u, 2u, c0, &base, &inside, &wv, &s);
        pair_tap(1u, 0u, c0, &base, &inside, &wv, &s);
        pair_tap(1u, 1u, c0, &base, &inside, &wv, &s);
        pair_tap(1u, 2u, c0, &base, &inside, &wv, &s);
        pair_tap(2u, 0u, c0, &base, &inside, &wv, &s);
        pair_tap(2u, 1u, c0, &base, &inside, &wv, &s);
        pair_tap(2u, 2u, c0, &base, &inside, &wv, &s);
#else
        pair_tap(0u, 0u, c0, &base, &inside, &wv, &s);
#endif
        acc = s;
    }
    store_tile(r0, co0, rows, pixels, &acc);
}
#endif

#if BLOCKS
// The column tiling over 2-D blocks of BY×BX output pixels of one image (stride 1, 3×3, f16
// weights in channel pairs): the block's (BY+2)×(BX+2) input patch is loaded once per channel
// and every tap reads it from registers, where conv_cols_tile loads each tap of each pixel —
// 9 uniform loads per pixel, each a bounds-checked scalar load on lavapipe, become
// (BY+2)(BX+2)/(BY·BX). The wrapper picks BY, BX for the image (ops::conv2d::block_shape).
const BY: u32 = {{BY}}u;
const BX: u32 = {{BX}}u;
const PY: u32 = BY + 2u;
const PX: u32 = BX + 2u;

// Tap (ky, kx) of both channels for every pixel of the block, from the patches.
fn block_tap(ky: u32, kx: u32, x0: ptr<function, array<f32, PY * PX>>, x1: ptr<function, array<f32, PY * PX>>, wv: ptr<function, array<array<u32, KK>, TN>>, s: ptr<function, array<f32, TM * TN>>) {
    let t = ky * 3u + kx;
    let t1 = KK + t;
    var w0: array<f32, TN>;
    var w1: array<f32, TN>;
    for (var j = 0u; j < TN; j++) {
        w0[j] = unpack2x16float((*wv)[j][t / 2u])[t % 2u];
        w1[j] = unpack2x16float((*wv)[j][t1 / 2u])[t1 % 2u];
    }
    for (var qy = 0u; qy < BY; qy++) {
        for (var qx = 0u; qx < BX; qx++) {
            let e = (qy + ky) * PX + qx + kx;
            let i = qy * BX + qx;
            for (var j = 0u; j < TN; j++) {
                (*s)[i * TN + j] = fma((*x1)[e], w1[j], fma((*x0)[e], w0[j], (*s)[i * TN + j]));
            }
        }
    }
}

@compute @workgroup_size({{WG}})
fn conv2d_blocks(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let bys = (p.oh + BY - 1u) / BY;
    let bxs = (p.ow + BX - 1u) / BX;
    let m_tiles = p.n * bys * bxs;
    let n_tiles = (p.cout + WG * TN - 1u) / (WG * TN);
    let g = wg_linear(wid, nwg);
    if (g >= m_tiles * n_tiles) {
        return;
    }
    let co0 = (g % n_tiles) * WG * TN + lid * TN;
    let tile = g / n_tiles;
    let img = tile / (bys * bxs);
    let oy0 = (tile % (bys * bxs)) / bxs * BY;
    let ox0 = (tile % bxs) * BX;
    let plane = p.h * p.w;
    let xb = p.x_off + img * p.cin * plane;
    let iy0 = i32(oy0) - i32(p.pad);
    let ix0 = i32(ox0) - i32(p.pad_x);
    // Patch rows and columns inside the image, one bit each, and each patch element's offset.
    var rows_in = 0u;
    for (var py = 0u; py < PY; py++) {
        rows_in |= select(0u, 1u << py, iy0 + i32(py) >= 0 && iy0 + i32(py) < i32(p.h));
    }
    var cols_in = 0u;
    for (var px = 0u; px < PX; px++) {
        cols_in |= select(0u, 1u << px, ix0 + i32(px) >= 0 && ix0 + i32(px) < i32(p.w));
    }
    let corner = i32(xb) + iy0 * i32(p.w) + ix0;
    var acc: array<f32, TM * TN>;
    for (var t = 0u; t < TM * TN; t++) {
        acc[t] = 0.0;
    }
    var wrow: array<u32, TN>;
    for (var j = 0u; j < TN; j++) {
        wrow[j] = (p.w_off + min(co0 + j, p.cout - 1u) * p.cin_total * KK + p.ci0 * KK) / 2u;
    }
    for (var ci = 0u; ci < p.cin; ci += 2u) {
        var wv: array<array<u32, KK>, TN>;
        for (var j = 0u; j < TN; j++) {
            for (var t = 0u; t < KK; t++) {
                wv[j][t] = wt[wrow[j] + ci / 2u * KK + t];
            }
        }
        var x0: array<f32, PY * PX>;
        var x1: array<f32, PY * PX>;
        for (var py = 0u; py < PY; py++) {
            for (var px = 0u; px < PX; px++) {
                let ok = (rows_in & (1u << py)) != 0u && (cols_in & (1u << px)) != 0u;
                let a = select(0u, u32(corner + i32(py * p.w + px + ci * plane)), ok);
                x0[py * PX + px] = select(0.0, x[a], ok);
                x1[py * PX + px] = select(0.0, x[a + plane], ok);
            }
        }
        var s = acc;
        block_tap(0u, 0u, &x0, &x1, &wv, &s);
        block_tap(0u, 1u, &x0, &x1, &wv, &s);
        block_tap(0u, 2u, &x0, &x1, &wv, &s);
        block_tap(1u, 0u, &x0, &x1, &wv, &s);
        block_tap(1u, 1u, &x0, &x1, &wv, &s);
        block_tap(1u, 2u, &x0, &x1, &wv, &s);
        block_tap(2u, 0u, &x0, &x1, &wv, &s);
        block_tap(2u, 1u, &x0, &x1, &wv, &s);
        block_tap(2u, 2u, &x0, &x1, &wv, &s);
        acc = s;
    }
    let pixels = p.oh * p.ow;
    for (var j = 0u; j < TN; j++) {
        let co = co0 + j;
        if (co >= p.cout) {
            break;
        }
        var b = 0.0;
        if (p.has_bias != 0u) {
            b = bias[p.b_off + co];
        }
        for (var qy = 0u; qy < BY; qy++) {
            for (var qx = 0u; qx < BX; qx++) {
                let oy = oy0 + qy;
                let ox = ox0 + qx;
                if (oy < p.oh && ox < p.ow) {
                    let at = p.y_off + (img * p.cout + co) * pixels + oy * p.ow + ox;
                    var prev = 0.0;
                    if (p.accumulate != 0u) {
                        prev = y[at];
                    }
                    y[at] = prev + acc[(qy * BX + qx) * TN + j] + b;
                }
            }
        }
    }
}
#endif
