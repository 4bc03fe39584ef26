// Prelude prepended to every kernel file by the pipeline cache.
#if SHADER_F16
enable f16;
#endif

// Dispatches larger than 65,535 workgroups are split into a 2-D grid; kernels rebuild the
// linear workgroup index here and skip the tail beyond the real count.
fn wg_linear(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Exact-GELU needs erf, which WGSL lacks. Rational approximation (W. J. Cody style, erfc for
// |x| >= 0.5 via exp); max relative error ~1.2e-7 in f32, well under the kernels' 1e-5 bound.
fn erf_f32(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
        t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
        t * (-0.82215223 + t * 0.17087277)))))))));
    // Small |x|: the series is more accurate than 1 - erfc where erfc ≈ 1.
    if (z < 0.5) {
        let z2 = x * x;
        return x * (1.1283791671 + z2 * (-0.3761263890 + z2 * (0.1128379167 + z2 * (-0.0268661706 +
            z2 * (0.0052239776 + z2 * (-0.0008548327))))));
    }
    return select(r - 1.0, 1.0 - r, x >= 0.0);
}

fn gelu_erf(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_f32(x * 0.7071067811865476));
}

fn silu(x: f32) -> f32 {
    return x / (1.0 + exp(-x));
}
