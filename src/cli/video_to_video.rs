//! `t2v generate --init-video VIDEO` (video-to-video) and `--upscale [MODEL]` (text-to-video,
//! then video-to-video on its frames: the Zeroscope card's 576w → XL workflow).
//!
//! The chain keeps one model on the device at a time: both runs are planned before anything
//! loads (the chain needs the larger of the two peaks, not their sum), the first pipeline is
//! dropped and its buffers released before the second loads.

use super::generate::{Bars, GenerateArgs};
use super::settings::Settings;
use super::setup::{self, Model};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use t2v::gpu::AdapterSelector;
use t2v::pipelines::{plan_video_to_video, Family, Frames, GenerateParams, MemoryPlan, ModelConfigs, TextToVideo};
use t2v::video::{read_video, InputVideo};
use t2v::weights::Placement;
use t2v::{Error, Gpu};

/// diffusers' `VideoToVideoSDPipeline` default.
const DEFAULT_STRENGTH: f64 = 0.6;

#[allow(clippy::too_many_arguments)]
pub fn run(
    args: &GenerateArgs,
    sel: &AdapterSelector,
    gpu: &Arc<Gpu>,
    s: &Settings,
    dir: Option<PathBuf>,
    configs: &ModelConfigs,
    params: GenerateParams,
    placement: Placement,
    fps: u32,
) -> t2v::Result<()> {
    let strength = args.strength.unwrap_or(DEFAULT_STRENGTH);
    if !(0.0..=1.0).contains(&strength) {
        return Err(Error::Other(format!("--strength {strength}: must be between 0 and 1 (Zeroscope XL's card: 0.66–0.85)")));
    }
    let t0 = Instant::now();
    let frames = if let Some(path) = &args.init_video {
        if args.upscale.is_some() {
            return Err(Error::Other("--init-video and --upscale: choose one (--upscale makes its own input video)".into()));
        }
        let mut video = read_video(path)?;
        if let Some(n) = args.num_frames {
            if n > video.frames {
                return Err(Error::Other(format!("--num-frames {n}: {} has only {} frames", path.display(), video.frames)));
            }
            video = video.truncated(n);
        }
        let mut p = GenerateParams { num_frames: video.frames, ..params };
        if args.keep_size {
            // diffusers' own behaviour: the frames as they are; the VAE floors odd sizes.
            let f = configs.vae.scale_factor();
            if video.height < f || video.width < f {
                return Err(Error::Other(format!("--keep-size: {} is {}x{}, smaller than one latent ({f}x{f} pixels)", path.display(), video.width, video.height)));
            }
            (p.height, p.width) = (video.height - video.height % f, video.width - video.width % f);
            if (p.height, p.width) != (video.height, video.width) {
                eprintln!("frames {}x{} give a {}x{} video (the VAE floors to multiples of {f}, as in diffusers)", video.width, video.height, p.width, p.height);
            }
        } else {
            if (video.height, video.width) != (p.height, p.width) {
                eprintln!("resizing {} frames {}x{} → {}x{} (PIL bicubic)", video.frames, video.width, video.height, p.width, p.height);
            }
            video = video.resized(p.height, p.width);
        }
        let memory = plan_video_to_video(&Gpu::planner(sel)?, configs, &p, strength, (video.height, video.width), placement)?;
        setup::show_plan(&format!(" (video-to-video, strength {strength})"), &memory.report(), args.dry_run);
        if args.dry_run {
            return Ok(());
        }
        setup::refuse_unless_fits(gpu, &memory, SHRINK)?;
        let dir = dir.ok_or_else(|| Error::Other("no model folder".into()))?;
        run_v2v(gpu, &dir, placement, &memory, &p, strength, &video)?
    } else {
        let up = args.upscale.clone().unwrap_or_else(|| "zeroscope-xl".into());
        let upscaler = Model::choose(&up, None, gpu, !args.dry_run)?;
        let Family::TextToVideo(configs2) = &upscaler.family else {
            return Err(Error::Other(format!("--upscale {up}: a {} model has no video-to-video in t2v (ModelScope/Zeroscope models do)", upscaler.family.name())));
        };
        let (h2, w2) = match &args.upscale_size {
            Some(sz) => parse_size(sz)?,
            None => (upscaler.defaults.height, upscaler.defaults.width),
        };
        let p2 = GenerateParams { height: h2, width: w2, ..params.clone() };
        let plan1 = Family::TextToVideo(configs.clone()).plan(&Gpu::planner(sel)?, &params, placement)?;
        let plan2 = plan_video_to_video(&Gpu::planner(sel)?, configs2, &p2, strength, (h2, w2), placement)?;
        let report = format!(
            "1. text-to-video {}x{} × {} frames ({}): {}\n2. video-to-video {}x{} ({up}, strength {strength}): {}\nchain peak (one model at a time): {}",
            params.width,
            params.height,
            params.num_frames,
            s.model,
            plan1.report(),
            w2,
            h2,
            plan2.report(),
            t2v::error::Bytes(plan1.peak.max(plan2.peak))
        );
        setup::show_plan("", &report, args.dry_run);
        if args.dry_run {
            return Ok(());
        }
        setup::refuse_unless_fits(gpu, &plan1, SHRINK)?;
        setup::refuse_unless_fits(gpu, &plan2, SHRINK)?;
        let dir = dir.ok_or_else(|| Error::Other("no model folder".into()))?;
        let first = {
            let mut pipe = TextToVideo::from_dir(gpu, &dir, placement)?;
            pipe.use_plan(&plan1)?;
            let mut bars = Bars::new();
            let f = pipe.generate(&params, &mut bars)?;
            bars.finish();
            f
        };
        // The first pipeline is gone: give its weights' and activations' buffers back before
        // the second model loads, so the chain needs max(peak₁, peak₂), not the sum.
        gpu.clear_schedule();
        gpu.trim();
        eprintln!("text-to-video done ({}x{} × {}); upscaling with {up}", first.width, first.height, first.frames);
        // The frames as PIL images (diffusers' output_type="pil"), resized like the card does.
        let video = InputVideo::from_pipeline_frames(&first.data, first.frames, first.height, first.width).resized(h2, w2);
        run_v2v(gpu, upscaler.dir()?, placement, &plan2, &p2, strength, &video)?
    };
    setup::write_video(gpu, &s.output, &frames, fps, t0)
}

fn run_v2v(
    gpu: &Arc<Gpu>,
    dir: &std::path::Path,
    placement: Placement,
    memory: &MemoryPlan,
    p: &GenerateParams,
    strength: f64,
    video: &InputVideo,
) -> t2v::Result<Frames> {
    let mut pipe = TextToVideo::from_dir(gpu, dir, placement)?;
    pipe.use_plan(memory)?;
    let mut bars = Bars::new();
    let frames = pipe.video_to_video(p, strength, video, &mut bars)?;
    bars.finish();
    Ok(frames)
}

const SHRINK: &str = "use fewer frames (--num-frames), a smaller size, or --guidance-scale 1";

/// "WIDTHxHEIGHT" → (height, width), multiples of 8 as diffusers requires.
fn parse_size(s: &str) -> t2v::Result<(usize, usize)> {
    let bad = || Error::Other(format!("--upscale-size '{s}': give WIDTHxHEIGHT in pixels, multiples of 8, e.g. 1024x576"));
    let (w, h) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let (w, h): (usize, usize) = (w.trim().parse().map_err(|_| bad())?, h.trim().parse().map_err(|_| bad())?);
    if w == 0 || h == 0 || w % 8 != 0 || h % 8 != 0 || w > 4096 || h > 4096 {
        return Err(bad());
    }
    Ok((h, w))
}
