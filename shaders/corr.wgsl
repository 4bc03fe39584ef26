// RAFT's correlation pyramid (princeton-vl/RAFT core/corr.py, CorrBlock) after its all-pairs GEMM
// (ops::matmul::linear): the volume is rows of query pixels, each row one h×w plane over the
// second frame's 1/8 grid. A chunk of rows is bound at a time (volumes beyond one binding are
// built and read chunk by chunk).
//
// corr_pool:   F.avg_pool2d(corr, 2, stride=2) on each row's plane (floor on odd sides), summed
//              in ATen's order ((x00 + x01) + x10) + x11, then / 4.
// corr_lookup: the (2r+1)² bilinear samples around each query pixel's coords1 / 2^level, as
//              bilinear_sampler + F.grid_sample(align_corners=True, zeros) compute them: the
//              window is meshgrid(dy, dx) added as (x, y), so in sample k = a·(2r+1) + b the
//              OUTER index a offsets x and the inner b offsets y. Written to channel
//              level·(2r+1)² + k of the (levels·(2r+1)², H, W) lookup.

struct Params {
    n: u32,       // work items in this dispatch
    h: u32,       // plane rows (pool: input plane; lookup: this level's plane)
    w: u32,
    x_off: u32,
    c_off: u32,
    y_off: u32,
    row0: u32,    // lookup: query pixel of this chunk's first row
    hw1: u32,     // lookup: query pixels per frame (coords and output plane size)
    level: u32,
    radius: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> coords: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(256)
fn corr_pool(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * WG + lid;
    if (i >= p.n) {
        return;
    }
    let oh = p.h / 2u;
    let ow = p.w / 2u;
    let plane = oh * ow;
    let r = i / plane;
    let o = i % plane;
    let base = p.x_off + r * p.h * p.w + (o / ow) * 2u * p.w + (o % ow) * 2u;
    var s = x[base] + x[base + 1u];
    s = s + x[base + p.w];
    s = s + x[base + p.w + 1u];
    y[p.y_off + i] = s / 4.0;
}

fn tap(row: u32, iy: f32, ix: f32) -> f32 {
    let inside = iy >= 0.0 && iy < f32(p.h) && ix >= 0.0 && ix < f32(p.w);
    let idx = select(0u, u32(iy) * p.w + u32(ix), inside);
    return select(0.0, x[p.x_off + row * p.h * p.w + idx], inside);
}

@compute @workgroup_size(256)
fn corr_lookup(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * WG + lid;
    if (i >= p.n) {
        return;
    }
    let side = 2u * p.radius + 1u;
    let taps = side * side;
    let row = i / taps;
    let k = i % taps;
    let pixel = p.row0 + row;
    let div = f32(1u << p.level);
    let r = f32(p.radius);
    // centroid_lvl + delta_lvl, then bilinear_sampler's normalisation and grid_sample's
    // unnormalisation ((g + 1)·((size − 1)/2)), each rounded as torch rounds it.
    let cx = coords[p.c_off + pixel] / div + (f32(k / side) - r);
    let cy = coords[p.c_off + p.hw1 + pixel] / div + (f32(k % side) - r);
    let wm1 = f32(p.w - 1u);
    let hm1 = f32(p.h - 1u);
    let gx = (2.0 * cx) / wm1 - 1.0;
    let gy = (2.0 * cy) / hm1 - 1.0;
    let ix = (gx + 1.0) * (wm1 / 2.0);
    let iy = (gy + 1.0) * (hm1 / 2.0);
    let x0 = floor(ix);
    let y0 = floor(iy);
    let we = ix - x0;
    let ea = 1.0 - we;
    let n = iy - y0;
    let s = 1.0 - n;
    let v = tap(row, y0, x0) * (s * ea) + tap(row, y0, x0 + 1.0) * (s * we) + tap(row, y0 + 1.0, x0) * (n * ea)
        + tap(row, y0 + 1.0, x0 + 1.0) * (n * we);
    y[p.y_off + (p.level * taps + k) * p.hw1 + pixel] = v;
}
