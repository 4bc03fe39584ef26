//! t2v: text-to-video diffusion with hand-written WGSL kernels on wgpu.
//!
//! Layers, bottom up: [`gpu`] (device, pool, kernels cache, recorder) → [`tensor`] →
//! [`ops`] (one wrapper per WGSL kernel family). See ARCHITECTURE.md.

pub mod bench;
pub mod config;
pub mod error;
pub mod eval;
pub mod gpu;
pub mod inspect;
pub mod latents;
pub mod models;
pub mod nn;
pub mod ops;
pub mod pipelines;
pub mod schedulers;
pub mod tensor;
pub mod tokenizer;
pub mod video;
pub mod weights;

pub use error::{Error, Result};
pub use gpu::Gpu;
pub use tensor::{DType, Tensor};
