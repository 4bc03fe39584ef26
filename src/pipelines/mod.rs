//! Pipelines, one file per diffusers pipeline: prompt → tokens → text embedding → denoising
//! loop → latents → VAE → frames. `text_to_video` is TextToVideoSDPipeline (ModelScope,
//! Zeroscope), `text_to_video_zero` TextToVideoZeroPipeline (Stable Diffusion 1.x).

mod checkpoint;
pub mod denoise;
mod family;
mod plan;
mod frames;
mod progress;
pub mod prompt;
mod text_to_video;
pub mod text_to_video_zero;
mod video_to_video;
pub mod wan;

pub use checkpoint::{Checkpoint, SavedState};
pub use denoise::Denoiser;
pub use family::{Defaults, Family, PipelineClass, VideoPipeline};
pub use plan::{folder_configs, modelscope_configs, placeholder_run, placeholder_run_video, plan, plan_streaming, plan_video_to_video, within_budget, MemoryPlan, ModelConfigs, StreamPlan};
pub use progress::{NoProgress, Progress};
pub use frames::Frames;
pub use text_to_video::{GenerateParams, TextToVideo};
pub use text_to_video_zero::{plan_zero, sd15_configs, sd_folder_configs, TextToVideoZero, ZeroConfigs, ZeroParams};
pub use video_to_video::strength_start;
pub use wan::{plan_wan, plan_wan_streaming, wan_builtin_configs, wan_folder_configs, wan_units, WanConfigs, WanPipeline};

/// A diffusers pipeline folder has the five components both pipelines load; `what` names the
/// pipeline in the error.
pub(crate) fn require_components(dir: &std::path::Path, what: &str) -> crate::error::Result<()> {
    for sub in ["tokenizer", "text_encoder", "unet", "vae", "scheduler"] {
        if !dir.join(sub).is_dir() {
            return Err(crate::error::Error::Other(format!("{}: not a {what} pipeline folder (no {sub}/)", dir.display())));
        }
    }
    Ok(())
}
