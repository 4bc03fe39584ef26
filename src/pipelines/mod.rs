//! Pipelines: prompt → tokens → text embedding → denoising loop → latents → VAE → frames.

mod progress;
mod text_to_video;

pub use progress::{NoProgress, Progress};
pub use text_to_video::{Frames, GenerateParams, TextToVideo};
