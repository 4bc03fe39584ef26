//! Initial latents: the noise diffusers draws before the first denoising step.

pub mod randn;

use crate::error::{Error, Result};
use randn::TorchGenerator;

/// The dtype diffusers draws its initial noise in: the pipeline's `torch_dtype`. t2v computes in
/// float32 whatever the weights are stored in, so float32 (a float32 pipeline's noise) is the
/// default; float16 / bfloat16 reproduce the noise of a `torch_dtype=torch.float16` /
/// `torch.bfloat16` pipeline for the same seed. The streams agree (up to rounding) whenever
/// 16 divides the number of latent elements and differ in the last 16 elements otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoiseDtype {
    #[default]
    Float32,
    Float16,
    Bfloat16,
}

impl NoiseDtype {
    pub const NAMES: &'static str = "float32, float16, bfloat16";

    pub fn parse(s: &str) -> Result<NoiseDtype> {
        match s.to_lowercase().trim_start_matches("torch.") {
            "float32" | "f32" | "fp32" => Ok(NoiseDtype::Float32),
            "float16" | "f16" | "fp16" | "half" => Ok(NoiseDtype::Float16),
            "bfloat16" | "bf16" => Ok(NoiseDtype::Bfloat16),
            _ => Err(Error::Other(format!("noise_dtype '{s}' is not one of {}", Self::NAMES))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NoiseDtype::Float32 => "float32",
            NoiseDtype::Float16 => "float16",
            NoiseDtype::Bfloat16 => "bfloat16",
        }
    }

    /// `torch.randn(n, generator=manual_seed(seed), dtype=self)`, as f32 values.
    pub fn randn(self, seed: u64, n: usize) -> Vec<f32> {
        let mut gen = TorchGenerator::new(seed);
        match self {
            NoiseDtype::Float32 => gen.randn(n),
            NoiseDtype::Float16 => gen.randn_f16(n).iter().map(|h| h.to_f32()).collect(),
            NoiseDtype::Bfloat16 => gen.randn_bf16(n).iter().map(|h| h.to_f32()).collect(),
        }
    }
}
