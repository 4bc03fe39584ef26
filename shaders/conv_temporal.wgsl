// Temporal convolution: Conv3d with kernel (3,1,1), padding (1,0,0) over frames — each pixel
// mixes its own channels at frames f-1, f, f+1, zero outside the clip. Weight [Cout, Cin, 3,
// 1, 1] (f32 or f16), f32 accumulation. Strides make it layout-agnostic: the engine's folded
// (B·F, C, H·W) layout and diffusers' (B, C, F, H·W) both work without a permute.
//
// Tiling as conv2d.wgsl: TM pixels of one (batch, frame) × TN output channels per invocation,
// channels shared by the workgroup so weight loads are uniform, and so is the frame-edge test.

struct Params {
    b: u32,
    f: u32,
    cin: u32,
    cout: u32,
    s: u32,        // pixels per frame
    xs_b: u32,
    xs_f: u32,
    xs_c: u32,
    ys_b: u32,
    ys_f: u32,
    ys_c: u32,
    x_off: u32,
    w_off: u32,
    b_off: u32,
    y_off: u32,
    has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TM: u32 = {{TM}}u;
const TN: u32 = {{TN}}u;
const WG: u32 = {{WG}}u;


@compute @workgroup_size({{WG}})
fn conv_temporal(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let m_tiles = (p.s + WG * TM - 1u) / (WG * TM);
    let n_tiles = (p.cout + TN - 1u) / TN;
    let g = wg_linear(wid, nwg);
    if (g >= p.b * p.f * m_tiles * n_tiles) {
        return;
    }
    let co0 = (g % n_tiles) * TN;
    let rest = g / n_tiles;
    let mt = rest % m_tiles;
    let bf = rest / m_tiles;
    let fi = bf % p.f;
    let bi = bf / p.f;
    let s0 = mt * WG * TM + lid * TM;
    var acc: array<f32, TM * TN>;
    for (var t = 0u; t < TM * TN; t++) {
        acc[t] = 0.0;
    }
    for (var dt = 0u; dt < 3u; dt++) {
        let ff = i32(fi) + i32(dt) - 1;
        if (ff < 0 || ff >= i32(p.f)) {
            continue;
        }
        var xbase = p.x_off + bi * p.xs_b + u32(ff) * p.xs_f;
        for (var ci = 0u; ci < p.cin; ci++) {
            var xv: array<f32, TM>;
            for (var i = 0u; i < TM; i++) {
                xv[i] = x[xbase + min(s0 + i, p.s - 1u)];
            }
            for (var j = 0u; j < TN; j++) {
                let wv = load_w((min(co0 + j, p.cout - 1u) * p.cin + ci) * 3u + dt);
                for (var i = 0u; i < TM; i++) {
                    acc[i * TN + j] = fma(xv[i], wv, acc[i * TN + j]);
                }
            }
            xbase += p.xs_c;
        }
    }
    let ybase = p.y_off + bi * p.ys_b + fi * p.ys_f;
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
            let s = s0 + i;
            if (s < p.s) {
                y[ybase + co * p.ys_c + s] = acc[i * TN + j] + b;
            }
        }
    }
}

// The same convolution as one GEMM whose rows are (batch, frame, pixel) — for frames with few
// pixels (the UNet's deep levels: 5×9 at 576×320), where a tile per frame would leave most of a
// workgroup idle. Each row has its own frame, so the frame-edge test is a per-row mask (an
// out-of-clip frame contributes fma(0, w, acc) = acc); the sum runs in the same order (frame
// offset, then channel) as the per-frame kernel. One tile: rows r0..r0+TM × output channels
// co0..co0+TN, whichever tiling placed it (the two entry points differ only in where a lane's
// tile starts).
fn across_frames_tile(r0: u32, co0: u32, rows: u32) {
    var bi: array<u32, TM>;
    var fi: array<u32, TM>;
    var si: array<u32, TM>;
    for (var i = 0u; i < TM; i++) {
        let r = min(r0 + i, rows - 1u);
        si[i] = r % p.s;
        let bf = r / p.s;
        fi[i] = bf % p.f;
        bi[i] = bf / p.f;
    }
    var acc: array<f32, TM * TN>;
    for (var t = 0u; t < TM * TN; t++) {
        acc[t] = 0.0;
    }
    for (var dt = 0u; dt < 3u; dt++) {
        var base: array<u32, TM>;
        var inside: array<bool, TM>;
        for (var i = 0u; i < TM; i++) {
            let ff = i32(fi[i]) + i32(dt) - 1;
            inside[i] = ff >= 0 && ff < i32(p.f);
            base[i] = p.x_off + bi[i] * p.xs_b + u32(clamp(ff, 0, i32(p.f) - 1)) * p.xs_f + si[i];
        }
        for (var ci = 0u; ci < p.cin; ci++) {
            var xv: array<f32, TM>;
            for (var i = 0u; i < TM; i++) {
                xv[i] = select(0.0, x[base[i] + ci * p.xs_c], inside[i]);
            }
            for (var j = 0u; j < TN; j++) {
                let wv = load_w((min(co0 + j, p.cout - 1u) * p.cin + ci) * 3u + dt);
                for (var i = 0u; i < TM; i++) {
                    acc[i * TN + j] = fma(xv[i], wv, acc[i * TN + j]);
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
            if (r0 + i < rows) {
                y[p.y_off + bi[i] * p.ys_b + fi[i] * p.ys_f + co * p.ys_c + si[i]] = acc[i * TN + j] + b;
            }
        }
    }
}

@compute @workgroup_size({{WG}})
fn conv_temporal_rows(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let rows = p.b * p.f * p.s;
    let m_tiles = (rows + WG * TM - 1u) / (WG * TM);
    let n_tiles = (p.cout + TN - 1u) / TN;
    let g = wg_linear(wid, nwg);
    if (g >= m_tiles * n_tiles) {
        return;
    }
    let co0 = (g % n_tiles) * TN;
    let r0 = (g / n_tiles) * WG * TM + lid * TM;
    across_frames_tile(r0, co0, rows);
}

// The across-frames GEMM in the transposed tiling (see matmul.wgsl's matmul_cols): a lane owns
// TN output channels and the workgroup shares TM (batch, frame, pixel) rows, so the input loads
// and the frame-edge tests are workgroup-uniform and each lane walks its own weight row.
@compute @workgroup_size({{WG}})
fn conv_temporal_rows_cols(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let rows = p.b * p.f * p.s;
    let m_tiles = (rows + TM - 1u) / TM;
    let n_tiles = (p.cout + WG * TN - 1u) / (WG * TN);
    let g = wg_linear(wid, nwg);
    if (g >= m_tiles * n_tiles) {
        return;
    }
    let co0 = (g % n_tiles) * WG * TN + lid * TN;
    let r0 = (g / n_tiles) * TM;
#if CH_PAIRS
    across_frames_cols_tile(r0, co0, rows);
#else
    across_frames_tile(r0, co0, rows);
#endif
}

#if CH_PAIRS
// The column tiling's own inner loop for f16 weights, as conv2d.wgsl's conv_cols_tile: input
// channels in pairs, so a lane's 3 frame taps of two channels are 3 consecutive u32s of its
// weight row (natively gathered, reused by all TM rows), and each row's tap position and
// frame-edge test serves both channels. CH_PAIRS: f16 weights read as u32s and an even cin
// and weight offset (the wrapper checks; others take across_frames_tile).
fn frame_tap(dt: u32, c0: u32, base: ptr<function, array<i32, TM>>, inside: ptr<function, array<u32, TM>>, wv: ptr<function, array<array<u32, 3>, TN>>, s: ptr<function, array<f32, TM * TN>>) {
    let t1 = 3u + dt;
    let off = i32(dt * p.xs_f + c0);
    var w0: array<f32, TN>;
    var w1: array<f32, TN>;
    for (var j = 0u; j < TN; j++) {
        w0[j] = unpack2x16float((*wv)[j][dt / 2u])[dt % 2u];
        w1[j] = unpack2x16float((*wv)[j][t1 / 2u])[t1 % 2u];
    }
    for (var i = 0u; i < TM; i++) {
        let ok = ((*inside)[i] & (1u << dt)) != 0u;
        let a = select(0u, u32((*base)[i] + off), ok);
        let x0 = select(0.0, x[a], ok);
        let x1 = select(0.0, x[a + p.xs_c], ok);
        for (var j = 0u; j < TN; j++) {
            (*s)[i * TN + j] = fma(x1, w1[j], fma(x0, w0[j], (*s)[i * TN + j]));
        }
    }
}

fn across_frames_cols_tile(r0: u32, co0: u32, rows: u32) {
    // Per row, once for all channels: its frame f-1's input offset and a bit per frame tap
    // inside the clip.
    var base: array<i32, TM>;
    var inside: array<u32, TM>;
    for (var i = 0u; i < TM; i++) {
        let r = min(r0 + i, rows - 1u);
        let bf = r / p.s;
        let fi = bf % p.f;
        base[i] = i32(p.x_off + (bf / p.f) * p.xs_b + fi * p.xs_f + r % p.s) - i32(p.xs_f);
        inside[i] = select(0u, 1u, fi > 0u) | 2u | select(0u, 4u, fi + 1u < p.f);
    }
    var acc: array<f32, TM * TN>;
    for (var t = 0u; t < TM * TN; t++) {
        acc[t] = 0.0;
    }
    var wrow: array<u32, TN>;
    for (var j = 0u; j < TN; j++) {
        wrow[j] = (p.w_off + min(co0 + j, p.cout - 1u) * p.cin * 3u) / 2u;
    }
    for (var ci = 0u; ci < p.cin; ci += 2u) {
        var wv: array<array<u32, 3>, TN>;
        for (var j = 0u; j < TN; j++) {
            for (var t = 0u; t < 3u; t++) {
                wv[j][t] = wt[wrow[j] + ci / 2u * 3u + t];
            }
        }
        // Taps written out and summed into an iteration-local copy, as in conv2d's
        // conv_cols_tile (a rolled tap loop indexes wv through memory; every loop-carried
        // write costs a lane-mask blend).
        var s = acc;
        frame_tap(0u, ci * p.xs_c, &base, &inside, &wv, &s);
        frame_tap(1u, ci * p.xs_c, &base, &inside, &wv, &s);
        frame_tap(2u, ci * p.xs_c, &base, &inside, &wv, &s);
        acc = s;
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
                let bf = r / p.s;
                y[p.y_off + (bf / p.f) * p.ys_b + (bf % p.f) * p.ys_f + co * p.ys_c + r % p.s] = acc[i * TN + j] + b;
            }
        }
    }
}
#endif
