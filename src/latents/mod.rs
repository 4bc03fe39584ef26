//! Initial latents: the noise diffusers draws before the first denoising step.

pub mod randn;
