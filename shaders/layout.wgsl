// Data movement: a strided 4-D copy — the permutes between (B,C,F,H,W), (B·F,C,H,W) and
// (B·H·W,F,C), channel concat and slices are all this one kernel with different strides.
// One invocation per output element; pure bandwidth.

struct Params {
    n: u32,        // elements in this dispatch
    d1: u32,       // box dims 1..3 (dim 0 is implied by n)
    d2: u32,
    d3: u32,
    is0: u32,      // input strides of the four box dims
    is1: u32,
    is2: u32,
    is3: u32,
    os0: u32,      // output strides of the four box dims
    os1: u32,
    os2: u32,
    os3: u32,
    x_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn copy4d(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    let i3 = i % p.d3;
    let r2 = i / p.d3;
    let i2 = r2 % p.d2;
    let r1 = r2 / p.d2;
    let i1 = r1 % p.d1;
    let i0 = r1 / p.d1;
    y[p.y_off + i0 * p.os0 + i1 * p.os1 + i2 * p.os2 + i3 * p.os3] = x[p.x_off + i0 * p.is0 + i1 * p.is1 + i2 * p.is2 + i3 * p.is3];
}
