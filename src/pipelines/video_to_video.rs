//! diffusers' `VideoToVideoSDPipeline.__call__` (Zeroscope XL's upscaling pipeline), step for
//! step, on the same [`TextToVideo`] components and denoising loop:
//! 1. frames → the video processor's (F, 3, H, W) in [-1, 1] ([`InputVideo::frame_pixels`]);
//! 2. every frame VAE-encoded (one at a time here; diffusers batches them, which changes no
//!    value) and `latent_dist.sample(generator)`: mean + exp(½·clamp(logvar, −30, 20))·ε with ε
//!    the generator's **first** `randn` draw, over all frames at once in (F, 4, h, w) order; ×
//!    `scaling_factor`;
//! 3. `get_timesteps`: the last `int(steps · strength)` timesteps are kept (`set_begin_index`);
//! 4. `add_noise(init, ε′, first kept timestep)` with ε′ the generator's **second** draw, also
//!    in (F, 4, h, w) order, then (F, 4, h, w) → (1, 4, F, h, w);
//! 5. the text-to-video loop from that index ([`TextToVideo::denoise_from`]) and decode.
//!
//! Both draws are float32 `torch.randn` on a CPU generator seeded with the run's seed
//! (diffusers' `generator=torch.Generator().manual_seed(seed)`).

use super::{Frames, GenerateParams, Progress, TextToVideo};
use crate::error::{Error, Result};
use crate::latents::randn::TorchGenerator;
use crate::schedulers::Scheduler;
use crate::tensor::Tensor;
use crate::video::InputVideo;

/// diffusers' `get_timesteps`: the index of the first timestep video-to-video runs, i.e.
/// `steps − min(int(steps · strength), steps)`. `strength` is f64 as Python's float is:
/// `int(10 · 0.7)` is 7 in f64 but would be 6 in f32.
pub fn strength_start(num_inference_steps: usize, strength: f64) -> usize {
    let init = ((num_inference_steps as f64 * strength) as usize).min(num_inference_steps);
    num_inference_steps - init
}

impl TextToVideo {
    /// Checks a video-to-video run: the frames must be the run's size and frame count, and the
    /// strength must leave at least one step.
    pub fn check_video(&self, p: &GenerateParams, strength: f64, video: &InputVideo) -> Result<()> {
        self.check(p)?;
        if !(0.0..=1.0).contains(&strength) {
            return Err(Error::Other(format!("strength: {strength} must be between 0 and 1 (the Zeroscope XL card suggests 0.66–0.85)")));
        }
        if strength_start(p.num_inference_steps, strength) == p.num_inference_steps {
            return Err(Error::Other(format!(
                "strength: {strength} × {} steps keeps no denoising step (int({}·{strength}) = 0); raise --strength or --num-inference-steps",
                p.num_inference_steps, p.num_inference_steps
            )));
        }
        if video.frames == 0 {
            return Err(Error::Other("init video: it has no frames".into()));
        }
        // diffusers takes the frames at their own size (VideoToVideoSDPipeline's VideoProcessor
        // does not resize): the encoder's stride-2 convolutions floor every level, so frames of
        // H × W give latents ⌊H/s⌋ × ⌊W/s⌋ and a video of s·⌊H/s⌋ × s·⌊W/s⌋, the run's size.
        let s = self.vae_scale_factor();
        let crop = |n: usize| n - n % s;
        if video.frames != p.num_frames || (crop(video.height), crop(video.width)) != (p.height, p.width) || video.height < s || video.width < s {
            return Err(Error::Other(format!(
                "init video: {} frames of {}x{} do not match the run's {} frames of {}x{} (frames of {}x{} up to {}x{} give that size; resize the frames first)",
                video.frames,
                video.width,
                video.height,
                p.num_frames,
                p.width,
                p.height,
                p.width,
                p.height,
                p.width + s - 1,
                p.height + s - 1
            )));
        }
        Ok(())
    }

    /// Steps 1–2: the video's latents (F, 4, h, w), host-side, scaled by `scaling_factor`. The
    /// VAE encodes one frame at a time, so its full-resolution activations exist for a single
    /// frame; the moments are read back once (this is before the loop, not inside a step).
    pub fn encode_video(&self, video: &InputVideo, gen: &mut TorchGenerator, progress: &mut dyn Progress) -> Result<Vec<f32>> {
        let (h, w) = (video.height, video.width);
        progress.stage("encoding video", video.frames);
        let mut mean = Vec::new();
        let mut logvar = Vec::new();
        for i in 0..video.frames {
            let x = Tensor::from_f32(&self.gpu, &[1, 3, h, w], &video.frame_pixels(i))?;
            let m = self.vae.encode_moments(&x)?;
            drop(x);
            let half = m.numel() / 2;
            let v = m.to_f32()?;
            mean.extend_from_slice(&v[..half]);
            logvar.extend_from_slice(&v[half..]);
            progress.tick();
        }
        // latent_dist.sample(generator): one randn over the whole (F, 4, h, w) batch.
        let eps = gen.randn(mean.len());
        let sf = self.vae.config.scaling_factor;
        Ok(mean
            .iter()
            .zip(&logvar)
            .zip(&eps)
            .map(|((&m, &lv), &e)| {
                let std = (0.5 * lv.clamp(-30.0, 20.0)).exp();
                sf * (m + std * e)
            })
            .collect())
    }

    /// Steps 3–4: the noised start latents (1, 4, F, h, w) at timestep index `first` of `sched`
    /// (already `set_timesteps`), from `init` (F, 4, h, w) and the generator's next draw.
    pub fn start_latents(&self, init: &[f32], frames: usize, sched: &dyn Scheduler, first: usize, gen: &mut TorchGenerator) -> Result<Tensor> {
        let c = self.unet.config.in_channels;
        let hw = init.len() / (frames * c).max(1);
        if init.len() != frames * c * hw {
            return Err(Error::Other(format!("video latents: {} values are not {frames} frames × {c} channels", init.len())));
        }
        let noise = gen.randn(init.len());
        // (F, C, h, w) → (C, F, h, w): the add is elementwise, so permute both on the host.
        let to_channels_first = |v: &[f32]| {
            let mut out = vec![0f32; v.len()];
            for f in 0..frames {
                for ch in 0..c {
                    out[(ch * frames + f) * hw..][..hw].copy_from_slice(&v[(f * c + ch) * hw..][..hw]);
                }
            }
            out
        };
        let shape = [1, c, frames, 1, hw];
        let init_t = Tensor::from_f32(&self.gpu, &shape, &to_channels_first(init))?;
        let noise_t = Tensor::from_f32(&self.gpu, &shape, &to_channels_first(&noise))?;
        sched.add_noise(&init_t, &noise_t, first)
    }

    /// Steps 1–5 up to the final latents (1, 4, F, h, w); `observe` sees the latents after each
    /// step (its index into the whole schedule).
    pub fn denoise_video(
        &self,
        p: &GenerateParams,
        strength: f64,
        video: &InputVideo,
        embeds: &Tensor,
        progress: &mut dyn Progress,
        observe: &mut dyn FnMut(usize, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let mut gen = TorchGenerator::new(p.seed);
        let init = self.encode_video(video, &mut gen, progress)?;
        let mut sched = self.scheduler_of(p)?;
        sched.set_timesteps(p.num_inference_steps)?;
        let first = strength_start(p.num_inference_steps, strength);
        let s = self.vae_scale_factor();
        let start = self.start_latents(&init, video.frames, sched.as_ref(), first, &mut gen)?;
        // diffusers draws the VAE posterior's sample, then add_noise's noise, then each
        // stochastic step's noise (dpm++-sde, euler-a) from the one generator, each step's in
        // the (F, C, h, w) layout VideoToVideoSDPipeline steps in.
        sched.set_generator(crate::schedulers::StepNoise::new(gen, p.noise_dtype).frames_first());
        let start = start.reshape(&[1, self.unet.config.in_channels, video.frames, p.height / s, p.width / s])?;
        self.denoise_from(p, embeds, sched.as_mut(), start, first, progress, &mut |i, latents, _| observe(i, latents))
    }

    /// `VideoToVideoSDPipeline(prompt, video, strength, …)`: `video` must already be at the
    /// run's size (see [`InputVideo::resized`]) with `p.num_frames` frames.
    pub fn video_to_video(&self, p: &GenerateParams, strength: f64, video: &InputVideo, progress: &mut dyn Progress) -> Result<Frames> {
        self.check_video(p, strength, video)?;
        if let Some(s) = &self.schedule {
            self.gpu.install_schedule(s)?;
        }
        progress.stage("encoding prompt", 1);
        let embeds = self.encode_prompt(p, progress)?;
        progress.tick();
        let latents = self.denoise_video(p, strength, video, &embeds, progress, &mut |_, _| Ok(()))?;
        self.decode(&latents, progress)
    }
}
