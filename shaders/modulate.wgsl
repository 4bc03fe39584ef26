// Wan's gated residual, diffusers' WanTransformerBlock `x = x + a · gate` with one gate vector
// of C channels per batch item (scale_shift_table + timestep_proj, chunk 2 or 5), written into x
// in place: the residual stream is never copied. x and a are [rows, C]; rows of batch item b are
// b·per_batch .. (b+1)·per_batch − 1. One invocation per element; pure bandwidth.

struct Params {
    n: u32,          // elements in this dispatch (whole rows)
    c: u32,          // channels
    row0: u32,       // global row of this dispatch's first row
    per_batch: u32,  // rows per batch item
    x_off: u32,
    a_off: u32,
    g_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> gate: array<f32>;

@compute @workgroup_size(256)
fn gated_add(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    let row = i / p.c;
    let ch = i - row * p.c;
    let batch = (p.row0 + row) / p.per_batch;
    x[p.x_off + i] = x[p.x_off + i] + a[p.a_off + i] * gate[p.g_off + batch * p.c + ch];
}
