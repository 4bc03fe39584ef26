// Wan's patch embedding input and output layout (diffusers' WanTransformer3DModel): a video
// (B, C, F, H, W) to rows of patches and back. `pt, ph, pw` is the patch, (F', H', W') the
// post-patch grid, C channels. One invocation per output element; pure bandwidth.

struct Params {
    n: u32,     // output elements
    c: u32,
    ff: u32,    // F', H', W'
    hh: u32,
    ww: u32,
    pt: u32,
    ph: u32,
    pw: u32,
    x_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> pp: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// (B, C, F, H, W) → tokens (B, F'·H'·W', C·pt·ph·pw): Conv3d(kernel = stride = patch)'s input
// patches in its weight's (c, t, h, w) order, so the conv is a linear layer on each row.
@compute @workgroup_size(256)
fn patchify(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= pp.n) {
        return;
    }
    let psz = pp.pt * pp.ph * pp.pw;
    let width = pp.c * psz;
    let tokens = pp.ff * pp.hh * pp.ww;
    let j = i % width;
    let r = i / width;
    let tok = r % tokens;
    let b = r / tokens;
    let ch = j / psz;
    let dw = j % pp.pw;
    let dh = (j / pp.pw) % pp.ph;
    let dt = (j / (pp.pw * pp.ph)) % pp.pt;
    let w = (tok % pp.ww) * pp.pw + dw;
    let h = ((tok / pp.ww) % pp.hh) * pp.ph + dh;
    let f = (tok / (pp.ww * pp.hh)) * pp.pt + dt;
    let hi = pp.hh * pp.ph;
    let wi = pp.ww * pp.pw;
    let fi = pp.ff * pp.pt;
    y[pp.y_off + i] = x[pp.x_off + (((b * pp.c + ch) * fi + f) * hi + h) * wi + w];
}

// tokens (B, F'·H'·W', pt·ph·pw·C) → (B, C, F, H, W): proj_out's rows back to a video. Unlike the
// patch embedding's input, channel is the fastest index of a row: ((t·ph + h)·pw + w)·C + c.
@compute @workgroup_size(256)
fn unpatchify(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= pp.n) {
        return;
    }
    let hi = pp.hh * pp.ph;
    let wi = pp.ww * pp.pw;
    let fi = pp.ff * pp.pt;
    let w = i % wi;
    let h = (i / wi) % hi;
    let f = (i / (wi * hi)) % fi;
    let bc = i / (wi * hi * fi);
    let ch = bc % pp.c;
    let b = bc / pp.c;
    let tok = ((f / pp.pt) * pp.hh + h / pp.ph) * pp.ww + w / pp.pw;
    let j = (((f % pp.pt) * pp.ph + h % pp.ph) * pp.pw + w % pp.pw) * pp.c + ch;
    let width = pp.c * pp.pt * pp.ph * pp.pw;
    y[pp.y_off + i] = x[pp.x_off + (b * pp.ff * pp.hh * pp.ww + tok) * width + j];
}
