//! Sinusoidal timestep embedding against diffusers' get_timestep_embedding, reproduced with
//! torch's f32 roundings: the frequency table and t·freq are rounded to f32 exactly as torch's
//! f32 tensor ops round them, and only sin/cos are taken in f64.

mod common;
use common::*;
use t2v::ops::embedding::TimestepEmbedding;

/// diffusers' get_timestep_embedding(t, dim, flip_sin_to_cos, downscale_freq_shift, scale=1,
/// max_period=10000) with torch's f32 roundings.
fn cpu_embedding(ts: &[f32], dim: usize, flip: bool, shift: f32) -> Vec<f64> {
    let half = dim / 2;
    // -math.log(max_period) * arange(half, f32) / (half - shift): a Python float times an f32
    // tensor is an f32 multiply by the scalar rounded to f32; the division likewise.
    let scale = -(10000f64.ln()) as f32;
    let denom = (half as f64 - shift as f64) as f32;
    let freqs: Vec<f32> = (0..half).map(|i| (((scale * i as f32) / denom) as f64).exp() as f32).collect();
    let mut out = Vec::with_capacity(ts.len() * dim);
    for &t in ts {
        let args: Vec<f64> = freqs.iter().map(|&f| (t * f) as f64).collect(); // f32 product
        let sin = args.iter().map(|a| a.sin());
        let cos = args.iter().map(|a| a.cos());
        if flip {
            out.extend(cos.chain(sin));
        } else {
            out.extend(sin.chain(cos));
        }
        if dim % 2 == 1 {
            out.push(0.0);
        }
    }
    out
}

const TIMESTEPS: [f32; 8] = [0.0, 1.0, 21.0, 500.0, 981.0, 999.0, 0.5, 767.25];

// After exact Cody–Waite reduction the polynomials are within ~1 ulp of sin/cos, so each value
// is off by ≲ 1.2e-7 absolute; relative L2 lands near 1e-7. The bound 1e-6 sits well below what
// WGSL's own sin/cos (2^-11 absolute on [−π, π]) or an f32-rounded reduction at 1000 rad
// (~3e-5 absolute) would give, so either regression fails.
const TOL: f64 = 1e-6;

fn check(dim: usize, flip: bool, shift: f32) {
    let g = gpu();
    let emb = TimestepEmbedding::new(&g, dim, flip, shift).unwrap();
    assert_eq!(emb.dim(), dim);
    let y = emb.forward(&upload(&[TIMESTEPS.len()], &TIMESTEPS)).unwrap();
    assert_eq!(y.shape(), &[TIMESTEPS.len(), dim]);
    let got = y.to_f32().unwrap();
    let want = cpu_embedding(&TIMESTEPS, dim, flip, shift);
    let name = format!("timestep_embedding dim={dim} flip={flip} shift={shift}");
    assert_close(&name, &got, &want, TOL);
    let worst = got.iter().zip(&want).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
    assert!(worst < 5e-7, "{name}: max abs error {worst:.2e}");
}

#[test]
fn timestep_embedding_unet3d() {
    check(320, true, 0.0); // UNet3DConditionModel time_proj
}

#[test]
fn timestep_embedding_variants() {
    check(321, true, 0.0); // odd: one zero column at the end
    check(7, false, 1.0); // [sin | cos], downscale_freq_shift = 1 (diffusers' default)
    check(1280, false, 0.0);
    check(2, true, 0.0);
}

#[test]
fn timestep_embedding_dim_one_is_padding() {
    let g = gpu();
    let y = TimestepEmbedding::new(&g, 1, true, 0.0).unwrap().forward(&upload(&[3], &[0.0, 5.0, 999.0])).unwrap();
    assert_eq!(y.to_f32().unwrap(), vec![0.0; 3]);
}

#[test]
fn timestep_embedding_rejects_bad_inputs() {
    let g = gpu();
    let emb = TimestepEmbedding::new(&g, 8, true, 0.0).unwrap();
    let e = emb.forward(&upload(&[2, 1], &[1.0, 2.0])).unwrap_err().to_string();
    assert!(e.contains("timesteps must be f32 [B]") && e.contains("[2, 1]"), "{e}");
    let e = TimestepEmbedding::new(&g, 0, true, 0.0).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("at least 1"), "{e}");
    let e = TimestepEmbedding::new(&g, 8, true, 4.0).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("divides by zero"), "{e}");
}
