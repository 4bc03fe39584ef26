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
                y[at] = prev + acc[i * TN + j] + b;
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
    conv_tile(r0, co0, rows, pixels);
}
