// Conv weights in PyTorch's layout, f32 or f16, read one element at a time: natively as f16,
// or with W_U32 as u32 pairs through unpack2x16float (no shader-f16, or the column tilings).
// Prepended to the conv kernels, whose Params must have a `w_off` field (element shift of the
// weight window).

#if W_F16
#if W_U32
@group(0) @binding(2) var<storage, read> wt: array<u32>;
#else
@group(0) @binding(2) var<storage, read> wt: array<f16>;
#endif
#else
@group(0) @binding(2) var<storage, read> wt: array<f32>;
#endif

fn load_w(i: u32) -> f32 {
#if W_F16
#if W_U32
    let e = p.w_off + i;
    return unpack2x16float(wt[e >> 1u])[e & 1u];
#else
    return f32(wt[p.w_off + i]);
#endif
#else
    return wt[p.w_off + i];
#endif
}
