// Channel-to-space rearrangements of the Wan 2.2 VAE decoder, frames first (F, C, H, W): the
// DupUp3D shortcut of its residual up blocks (channels repeated, then spread over frames and
// pixels) and the unpatchify after conv_out (p×p pixel patches folded out of the channels).
// One dispatch writes output channels c_lo.. of one output frame; its input is the window of
// one input frame starting at channel src_lo. Pure copies: bit-exact.

struct ShuffleParams {
    n: u32,        // output elements in this dispatch
    c_lo: u32,     // first output channel
    oh: u32,       // output frame height and width
    ow: u32,
    fs: u32,       // pixels per input pixel along each axis (DupUp f_s; unpatchify p)
    f: u32,        // channel group size: f_t·f_s² (DupUp) or p² (unpatchify)
    rep: u32,      // DupUp: each input channel's repeats (out·f / in); unpatchify: 1
    it: u32,       // DupUp: this output frame's position within its group of f_t
    src_lo: u32,   // first input channel the window holds
    x_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> u: ShuffleParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// The input element for output element i, given the sub-position j within the channel group.
fn shuffle_src(i: u32, j: u32) -> u32 {
    let ox = i % u.ow;
    let r = i / u.ow;
    let oy = r % u.oh;
    let o = u.c_lo + r / u.oh;
    let c = (o * u.f + j) / u.rep - u.src_lo;
    let h = u.oh / u.fs;
    let w = u.ow / u.fs;
    return u.x_off + (c * h + oy / u.fs) * w + ox / u.fs;
}

// DupUp3D: repeat_interleave(rep, channels) viewed as (out, f_t, f_s, f_s) and spread as
// (frame·f_t + it, y·f_s + ih, x·f_s + iw): sub-position j = (it·f_s + ih)·f_s + iw.
@compute @workgroup_size(256)
fn dup_up(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= u.n) {
        return;
    }
    let ox = i % u.ow;
    let oy = (i / u.ow) % u.oh;
    let j = (u.it * u.fs + oy % u.fs) * u.fs + ox % u.fs;
    y[u.y_off + i] = x[shuffle_src(i, j)];
}

// diffusers' unpatchify: channel c·p² + pw·p + ph goes to pixel (y·p + ph, x·p + pw) — the
// w-offset is the slower one.
@compute @workgroup_size(256)
fn unpatchify_frames(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= u.n) {
        return;
    }
    let ox = i % u.ow;
    let oy = (i / u.ow) % u.oh;
    let j = (ox % u.fs) * u.fs + oy % u.fs;
    y[u.y_off + i] = x[shuffle_src(i, j)];
}
