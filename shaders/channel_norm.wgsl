// Wan's WanRMS_norm: an L2 normalisation over channels, per pixel (and frame), as torch's
// F.normalize(x, dim=1) · √C · γ — y = x / max(‖x‖₂, 1e-12) · scale · γ[c], optional SiLU.
// No mean, no additive eps: the only guard is the clamp of the norm. Sums are f32.
//
// channel_norm: one invocation per pixel of whole images (all C channels in one window): a
//               pass for Σx², a pass to write.
// channel_sumsq + channel_scale: for an image larger than one storage binding — Σx² is
//               accumulated over channel chunks into ss[pixel], then each chunk is scaled.

struct Params {
    count: u32,      // work items in this dispatch (pixels, or elements for channel_scale)
    c: u32,          // channels in this dispatch
    s: u32,          // pixels per channel plane
    x_off: u32,
    y_off: u32,
    g_off: u32,      // gamma shift, already including the chunk's first channel
    ss_off: u32,
    accumulate: u32, // channel_sumsq: add to ss instead of overwriting
    silu: u32,
    scale: f32,      // √C of the full channel count, rounded to f32 as torch does
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> ss: array<f32>;

fn finish(v: f32, denom: f32, c: u32) -> f32 {
    var r = (v / denom) * p.scale * gamma[p.g_off + c];
    if (p.silu != 0u) {
        r = silu(r);
    }
    return r;
}

@compute @workgroup_size(256)
fn channel_norm(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= p.count) {
        return;
    }
    let base = (i / p.s) * p.c * p.s + i % p.s;
    var sum = 0.0;
    for (var c = 0u; c < p.c; c++) {
        let v = x[p.x_off + base + c * p.s];
        sum = fma(v, v, sum);
    }
    let denom = max(sqrt(sum), 1e-12);
    for (var c = 0u; c < p.c; c++) {
        let at = base + c * p.s;
        y[p.y_off + at] = finish(x[p.x_off + at], denom, c);
    }
}

@compute @workgroup_size(256)
fn channel_sumsq(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= p.count) {
        return;
    }
    var sum = 0.0;
    if (p.accumulate != 0u) {
        sum = ss[p.ss_off + i];
    }
    for (var c = 0u; c < p.c; c++) {
        let v = x[p.x_off + i + c * p.s];
        sum = fma(v, v, sum);
    }
    ss[p.ss_off + i] = sum;
}

@compute @workgroup_size(256)
fn channel_scale(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= p.count) {
        return;
    }
    let denom = max(sqrt(ss[p.ss_off + i % p.s]), 1e-12);
    y[p.y_off + i] = finish(x[p.x_off + i], denom, i / p.s);
}
