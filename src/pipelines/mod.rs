//! Pipelines: prompt → tokens → text embedding → denoising loop → latents → VAE → frames.

mod plan;
mod progress;
mod text_to_video;
mod video_to_video;

pub use plan::{folder_configs, modelscope_configs, placeholder_run, placeholder_run_video, plan, plan_video_to_video, MemoryPlan, ModelConfigs};
pub use progress::{NoProgress, Progress};
pub use text_to_video::{Frames, GenerateParams, TextToVideo};
pub use video_to_video::strength_start;
