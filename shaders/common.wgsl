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

fn sigmoid_f32(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// tanh without overflow (exp(2|x|) = inf gives ±1) and without cancellation near 0: below
// |x| = 1 the odd Taylor series at x/8 (< 1/8: the x⁹ term is < 2e-10 of it) and three doublings
// tanh(2u) = 2t/(1 + t²), a few ulps; above, 1 − 2/(exp(2|x|) + 1).
fn tanh_f32(x: f32) -> f32 {
    let z = abs(x);
    var t: f32;
    if (z < 1.0) {
        let u = z * 0.125;
        let u2 = u * u;
        t = u * (1.0 + u2 * (-0.33333333333 + u2 * (0.13333333333 + u2 * -0.05396825397)));
        for (var i = 0; i < 3; i++) {
            t = 2.0 * t / (1.0 + t * t);
        }
    } else {
        t = 1.0 - 2.0 / (exp(2.0 * z) + 1.0);
    }
    return select(-t, t, x >= 0.0);
}
