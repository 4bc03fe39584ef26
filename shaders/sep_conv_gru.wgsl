// RAFT's SepConvGRU gates (princeton-vl/RAFT core/update.py) after its convolutions. convz and
// convr run as one conv (their weights stacked: zr holds C channels of z's pre-activation, then
// C of r's, per image):
//   gru_reset:  r⊙h with r = σ(r_pre) — the h half of convq's input.
//   gru_update: h' = (1 − z)⊙h + z⊙q with z = σ(z_pre), q = tanh(q_pre).

struct Params {
    n: u32,       // elements of h in this dispatch (images × C × pixels)
    cs: u32,      // C × pixels of one image
    zr_off: u32,
    h_off: u32,
    q_off: u32,
    y_off: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> zr: array<f32>;
@group(0) @binding(2) var<storage, read> h: array<f32>;
@group(0) @binding(3) var<storage, read> q: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;

fn zr_at(i: u32) -> u32 {
    return p.zr_off + (i / p.cs) * 2u * p.cs + i % p.cs;
}

@compute @workgroup_size(256)
fn gru_reset(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * WG + lid;
    if (i < p.n) {
        y[p.y_off + i] = sigmoid_f32(zr[zr_at(i) + p.cs]) * h[p.h_off + i];
    }
}

@compute @workgroup_size(256)
fn gru_update(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * WG + lid;
    if (i < p.n) {
        let z = sigmoid_f32(zr[zr_at(i)]);
        let qv = tanh_f32(q[p.q_off + i]);
        y[p.y_off + i] = (1.0 - z) * h[p.h_off + i] + z * qv;
    }
}
