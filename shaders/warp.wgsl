// torch's grid_sample(x, grid, mode="nearest", padding_mode="reflection", align_corners=False)
// on (N, C, H, W) planes with a grid (N, Ho, Wo, 2) of normalised (x, y) in [-1, 1]: the
// Text2Video-Zero motion-field warp. One invocation per output element.

struct WarpParams {
    n: u32,        // output elements in this dispatch
    c: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    x_off: u32,
    g_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> u: WarpParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> grid: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// GridSampler.h `reflect_coordinates(in, -1, 2·size − 1)` then `clip_coordinates`: the
// coordinate folded into [-0.5, size − 0.5] (mirror at the outer pixel edges), then clamped
// to the pixel centres [0, size − 1].
fn reflect_clip(coord: f32, size: u32) -> f32 {
    let lo = -0.5;
    let span = f32(size);
    let a = abs(coord - lo);
    let flips = floor(a / span);
    let extra = a - flips * span; // fmod of a non-negative value
    var r = extra + lo;
    if (u32(flips) % 2u != 0u) {
        r = span - extra + lo;
    }
    return clamp(r, 0.0, f32(size - 1u));
}

// align_corners=False: -1 and 1 are the outer edges of the border pixels.
fn source_index(g: f32, size: u32) -> u32 {
    let coord = ((g + 1.0) * f32(size) - 1.0) / 2.0;
    // nearbyint: round half to even, as WGSL's round().
    return u32(round(reflect_clip(coord, size)));
}

@compute @workgroup_size(256)
fn grid_sample_nearest_reflection(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= u.n) {
        return;
    }
    let ox = i % u.ow;
    let r = i / u.ow;
    let oy = r % u.oh;
    let plane = r / u.oh; // image · C + channel
    let img = plane / u.c;
    let g = u.g_off + ((img * u.oh + oy) * u.ow + ox) * 2u;
    let ix = source_index(grid[g], u.w);
    let iy = source_index(grid[g + 1u], u.h);
    y[u.y_off + i] = x[u.x_off + (plane * u.h + iy) * u.w + ix];
}
