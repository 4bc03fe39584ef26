//! The one denoising loop every pipeline runs: per step the scheduler's model input, the
//! network once per prompt (classifier-free guidance as separate passes: batch items never
//! interact, so the prediction is the same as diffusers' batch of two, with half the
//! activations), the guidance combination, the scheduler step, one flush — then cancellation,
//! progress and the observer (tests' step-by-step checks, `t2v serve`'s checkpoints).
//!
//! What differs between pipelines is behind [`Denoiser`]: the network (UNet3D, UNet2D with
//! cross-frame attention, Wan's transformer, or one of two experts), what it prepares once per
//! video (text context, per-step time embeddings) and the guidance scale of a step.

use super::{Checkpoint, Progress};
use crate::error::Result;
use crate::ops::elementwise::lincomb2;
use crate::schedulers::Scheduler;
use crate::tensor::Tensor;
use crate::Gpu;
use std::sync::Arc;
use std::ops::Range;

/// A pipeline's network as the loop sees it, with everything it needs prepared for the steps
/// it will be asked about.
pub trait Denoiser {
    /// The model output for `input` (the scheduler's model input) at step `step` of the
    /// schedule, conditioned on prompt row `row` (with guidance: 0 negative, 1 positive).
    fn predict(&self, input: &Tensor, step: usize, row: usize) -> Result<Tensor>;
    /// The guidance scale of step `step`, or None for a single unguided pass.
    fn guidance(&self, step: usize) -> Option<f32>;
}

/// One step on `x`: model input, prediction(s), guidance, the scheduler update, one flush.
pub fn step(den: &dyn Denoiser, sched: &mut dyn Scheduler, i: usize, x: &Tensor) -> Result<Tensor> {
    let input = sched.scale_model_input(x, i)?;
    let noise = match den.guidance(i) {
        Some(g) => {
            let uncond = den.predict(&input, i, 0)?;
            let text = den.predict(&input, i, 1)?;
            // uncond + g·(text − uncond) = (1−g)·uncond + g·text
            lincomb2(&uncond, 1.0 - g, &text, g)?
        }
        None => den.predict(&input, i, 0)?,
    };
    drop(input);
    let out = sched.step(&noise, i, x)?;
    x.gpu().flush()?;
    Ok(out)
}

/// The loop over `steps` (indices into the scheduler's timesteps) from `latents`. Before each
/// step it checks for cancellation; after each it hands the step index, the latents and the
/// scheduler to `observe` (an error there stops the loop) and ticks `progress`.
pub fn denoise_loop(
    den: &dyn Denoiser,
    sched: &mut dyn Scheduler,
    mut latents: Tensor,
    steps: Range<usize>,
    progress: &mut dyn Progress,
    observe: &mut dyn FnMut(usize, &Tensor, &dyn Scheduler) -> Result<()>,
) -> Result<Tensor> {
    for i in steps {
        progress.check_cancelled()?;
        latents = step(den, sched, i, &latents)?;
        observe(i, &latents, &*sched)?;
        progress.tick();
    }
    Ok(latents)
}

/// The guidance rule of the diffusers pipelines t2v follows: guided iff the scale is above 1
/// and there is a negative row to guide with.
pub fn guidance(scale: f32, rows: usize) -> Option<f32> {
    (scale > 1.0 && rows == 2).then_some(scale)
}

/// `sched` set to `steps` steps, and where its loop starts: step 0 from `noise` (the seed's
/// initial latents), or a checkpoint's next step from its latents with the scheduler's history
/// put back (`t2v serve` resuming a job; the loop then computes exactly what the uninterrupted
/// one would have).
pub fn start(
    gpu: &Arc<Gpu>,
    sched: &mut dyn Scheduler,
    steps: usize,
    latent_shape: &[usize],
    resume: Option<Checkpoint>,
    noise: impl FnOnce(&dyn Scheduler) -> Result<Tensor>,
) -> Result<(usize, Tensor)> {
    sched.set_timesteps(steps)?;
    match resume {
        None => Ok((0, noise(&*sched)?)),
        Some(c) => {
            let n = sched.timesteps().len();
            let latents = c.restore(gpu, latent_shape, n, sched)?;
            Ok((c.next_step, latents))
        }
    }
}
