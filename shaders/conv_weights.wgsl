// Conv weights in PyTorch's layout, f32 or f16, read one element at a time: natively with
// SHADER_F16, else as u32 pairs through unpack2x16float. Prepended to the conv kernels, whose
// Params must have a `w_off` field (element shift of the weight window).

#if W_F16
#if SHADER_F16
@group(0) @binding(2) var<storage, read> wt: array<f16>;
#else
@group(0) @binding(2) var<storage, read> wt: array<u32>;
#endif
#else
@group(0) @binding(2) var<storage, read> wt: array<f32>;
#endif

fn load_w(i: u32) -> f32 {
#if W_F16
#if SHADER_F16
    return f32(wt[p.w_off + i]);
#else
    let e = p.w_off + i;
    return unpack2x16float(wt[e >> 1u])[e & 1u];
#endif
#else
    return wt[p.w_off + i];
#endif
}
