// Sinusoidal timestep embedding as diffusers' get_timestep_embedding: one invocation per output
// element. The frequency table comes from the host (rounded exactly as torch computes it); the
// argument t·freq is rounded to f32 as torch does, then reduced and evaluated here because WGSL's
// sin/cos only promise 2^-11 absolute error on [−π, π] and are worse beyond, while arguments
// reach ~1000 rad (t up to 999 at the lowest frequency, 1.0).

struct Params {
    n: u32,      // output elements: B × dim
    dim: u32,
    half: u32,
    t_off: u32,
    f_off: u32,
    o_off: u32,
    flip: u32,   // 1: [cos | sin] (flip_sin_to_cos), 0: [sin | cos]
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> t: array<f32>;
@group(0) @binding(2) var<storage, read> freqs: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;

// π/2 in three parts (Cephes' sinf split, doubled): the first two have few enough significant
// bits that k·PIO2_1 and k·PIO2_2 are exact for |k| < 2^13, so the reduction is exact whether or
// not the driver fuses them, and the third carries the remaining bits.
const PIO2_1: f32 = 1.5703125;
const PIO2_2: f32 = 4.837512969970703125e-4;
const PIO2_3: f32 = 7.54978995489188216e-8;
const TWO_OVER_PI: f32 = 0.636619772367581343;

// (sin a, cos a) with ~1 ulp error for |a| < 8192: Cody–Waite reduction to [−π/4, π/4] and
// Cephes' sinf/cosf minimax polynomials. `a` only ever enters as an fma addend or a multiplicand,
// so a driver that contracts mul+add cannot fold a's own product rounding away.
fn sin_cos(a: f32) -> vec2<f32> {
    let k = round(a * TWO_OVER_PI);
    var r = fma(-k, PIO2_1, a);
    r = fma(-k, PIO2_2, r);
    r = fma(-k, PIO2_3, r);
    let z = r * r;
    let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
    let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
    switch (i32(k) & 3) {
        case 0: { return vec2<f32>(s, c); }
        case 1: { return vec2<f32>(c, -s); }
        case 2: { return vec2<f32>(-s, -c); }
        default: { return vec2<f32>(-c, s); }
    }
}

@compute @workgroup_size(64)
fn timestep_embedding(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = wg_linear(wid, nwg) * 64u + lid;
    if (i >= p.n) {
        return;
    }
    let row = i / p.dim;
    let col = i - row * p.dim;
    // Odd dims end in one zero column (torch pads after the concatenation).
    if (col >= 2u * p.half) {
        o[p.o_off + i] = 0.0;
        return;
    }
    let first = col < p.half;
    let j = select(col - p.half, col, first);
    let sc = sin_cos(t[p.t_off + row] * freqs[p.f_off + j]);
    let want_cos = first == (p.flip != 0u);
    o[p.o_off + i] = select(sc.x, sc.y, want_cos);
}
