// Nearest-neighbour upsampling of (N, C, H, W) planes (Upsample2D before its conv).

struct UpParams {
    n: u32,        // output elements in this dispatch
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    sy: f32,       // h / oh, rounded to f32 as torch computes it
    sx: f32,
    x_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> u: UpParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// torch 'nearest': src = min(floor(dst · (in / out)), in − 1) with the scale in f32.
@compute @workgroup_size(256)
fn upsample_nearest(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= u.n) {
        return;
    }
    let ox = i % u.ow;
    let r = i / u.ow;
    let oy = r % u.oh;
    let plane = r / u.oh;
    let iy = min(u32(floor(f32(oy) * u.sy)), u.h - 1u);
    let ix = min(u32(floor(f32(ox) * u.sx)), u.w - 1u);
    y[u.y_off + i] = x[u.x_off + (plane * u.h + iy) * u.w + ix];
}
