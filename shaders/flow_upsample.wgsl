// RAFT's convex upsampling (princeton-vl/RAFT core/raft.py RAFT.upsample_flow): each output pixel
// (8y + dy, 8x + dx) is a softmax-weighted (over 9) sum of 8·flow over the 3×3 neighbourhood of
// (y, x) (F.unfold, zero padding), the weights from mask channels k·64 + dy·8 + dx, k = ky·3 + kx.
// One invocation per output pixel writes both flow channels.

struct Params {
    n: u32,       // output pixels (8H × 8W) of one image
    h: u32,
    w: u32,
    f_off: u32,
    m_off: u32,
    y_off: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> flow: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn convex_upsample(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * WG + lid;
    if (i >= p.n) {
        return;
    }
    let ow = 8u * p.w;
    let oy = i / ow;
    let ox = i % ow;
    let py = oy / 8u;
    let px = ox / 8u;
    let hw = p.h * p.w;
    let sub = (oy % 8u) * 8u + ox % 8u;
    let pix = py * p.w + px;
    var m: array<f32, 9>;
    var mx = -3.4e38;
    for (var k = 0u; k < 9u; k++) {
        m[k] = mask[p.m_off + (k * 64u + sub) * hw + pix];
        mx = max(mx, m[k]);
    }
    var sum = 0.0;
    for (var k = 0u; k < 9u; k++) {
        m[k] = exp(m[k] - mx);
        sum = sum + m[k];
    }
    let inv = 1.0 / sum;
    for (var c = 0u; c < 2u; c++) {
        var acc = 0.0;
        for (var k = 0u; k < 9u; k++) {
            let yy = i32(py) + i32(k / 3u) - 1;
            let xx = i32(px) + i32(k % 3u) - 1;
            let inside = yy >= 0 && yy < i32(p.h) && xx >= 0 && xx < i32(p.w);
            let idx = select(0u, u32(yy) * p.w + u32(xx), inside);
            let f = select(0.0, 8.0 * flow[p.f_off + c * hw + idx], inside);
            acc = acc + (m[k] * inv) * f;
        }
        y[p.y_off + c * p.n + i] = acc;
    }
}
