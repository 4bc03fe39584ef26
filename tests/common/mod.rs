//! Shared test harness: one device per test binary (poison mode on), seeded random inputs,
//! relative L2 error against plain CPU references that accumulate in f64.
#![allow(dead_code)]

pub mod fixtures;
pub mod reference;

use std::sync::{Arc, OnceLock};
use t2v::{Gpu, Tensor};

pub fn gpu() -> Arc<Gpu> {
    static GPU: OnceLock<Arc<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| {
        let g = Gpu::from_env().unwrap_or_else(|e| panic!("tests need a GPU adapter (lavapipe in CI): {e}"));
        g.set_poison(true);
        g
    })
    .clone()
}

/// SplitMix64 → uniform and Box–Muller normals; deterministic per seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn normal(&mut self) -> f32 {
        let u1 = (self.uniform() as f64).max(1e-12);
        let u2 = self.uniform() as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
    pub fn normals(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * scale).collect()
    }
}

/// ‖got − want‖₂ / ‖want‖₂; NaN anywhere in `got` (an unwritten, poisoned element) gives +∞.
pub fn rel_l2(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let mut num = 0.0f64;
    let mut den = 0.0f64;
    for (g, w) in got.iter().zip(want) {
        if !g.is_finite() {
            return f64::INFINITY;
        }
        num += (*g as f64 - w) * (*g as f64 - w);
        den += w * w;
    }
    (num / den.max(1e-300)).sqrt()
}

#[track_caller]
pub fn assert_close(name: &str, got: &[f32], want: &[f64], tol: f64) {
    let e = rel_l2(got, want);
    assert!(e <= tol, "{name}: relative L2 error {e:.3e} > {tol:.1e}");
}

pub fn upload(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_f32(&gpu(), shape, data).expect("upload")
}

/// Rounds through f16 the way the device stores f16 weights.
pub fn round_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
}
