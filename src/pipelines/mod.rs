//! Pipelines: prompt → tokens → text embedding → denoising loop → latents → VAE → frames.

mod checkpoint;
mod plan;
mod progress;
mod text_to_video;

pub use checkpoint::Checkpoint;
pub use plan::{folder_configs, modelscope_configs, placeholder_run, plan, MemoryPlan, ModelConfigs};
pub use progress::{NoProgress, Progress};
pub use text_to_video::{Frames, GenerateParams, TextToVideo};
