//! The whole text-to-video pipeline against diffusers' TextToVideoSDPipeline on the tiny model:
//! same prompt, seed 0, 3 frames at 48×32, 2 DDIM steps, guidance 9 (fixture
//! `pipeline.text_to_video`). Intermediate tensors are held to f32 bounds (relative L2 ≤ 1e-4);
//! the final frames to within 2/255 of diffusers' frames.

mod common;
use common::fixtures::{dump, fixtures};
use common::{assert_close, gpu};
use t2v::pipelines::{GenerateParams, NoProgress, TextToVideo};
use t2v::weights::Placement;
use t2v::DType;

#[test]
fn matches_diffusers_end_to_end() {
    let d = dump("pipeline.text_to_video");
    let meta = |k: &str| d.meta[k].trim_matches('"').to_string();
    let mut pipe = TextToVideo::from_dir(&gpu(), &fixtures().join("tiny-t2v"), Placement { matrices: DType::F32 }).unwrap();
    let p = GenerateParams {
        prompt: meta("prompt"),
        negative_prompt: String::new(),
        num_frames: d.meta_usize("num_frames"),
        height: d.meta_usize("height"),
        width: d.meta_usize("width"),
        num_inference_steps: d.meta_usize("num_inference_steps"),
        guidance_scale: meta("guidance_scale").parse().unwrap(),
        seed: d.meta_usize("seed") as u64,
        scheduler: None,
        clip_skip: 0,
        noise_dtype: Default::default(),
        flow_shift: None,
        scheduler_config: Default::default(),
        max_sequence_length: None,
        eta: 0.0,
        guidance_scale_2: None,
    };
    let mut sched = pipe.scheduler(None).unwrap();
    sched.set_timesteps(p.num_inference_steps).unwrap();
    let want_t: Vec<f32> = serde_json::from_str::<Vec<i64>>(&d.meta["timesteps"]).unwrap().iter().map(|&t| t as f32).collect();
    assert_eq!(sched.timesteps(), &want_t[..]);

    let embeds = pipe.encode_prompt(&p, &mut NoProgress).unwrap();
    d.check("prompt_embeds", &embeds, 1e-4);
    // torch.randn on a CPU generator: reproduced bit for bit.
    d.check("init_latents", &pipe.initial_latents(&p, sched.init_noise_sigma()).unwrap(), 1e-7);

    let latents = pipe
        .denoise_observed(&p, &embeds, &mut NoProgress, &mut |i, l| {
            d.check(&format!("latents.step{i}"), l, 1e-4);
            Ok(())
        })
        .unwrap();
    let frames = pipe.decode(&latents, &mut NoProgress).unwrap();
    let (shape, want) = d.get("frames");
    assert_eq!(shape, &vec![1, frames.frames, frames.height, frames.width, 3]);
    let max_err = frames.data.iter().zip(want).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
    assert!(max_err <= 2.0 / 255.0, "frames differ from diffusers by up to {max_err:.5} (> 2/255)");
    assert_close("frames", &frames.data, want, 1e-4);

    // Every UNet block streamed from host memory (uploaded per forward, one ahead): the same
    // denoising, held to diffusers' latents at the same bound.
    let all: Vec<String> = pipe.unet.units().into_iter().map(|u| u.0).collect();
    pipe.unet.set_streamed(&all).unwrap();
    assert!(pipe.unet.down_blocks.iter().all(|u| u.is_streamed()) && pipe.unet.mid_block.is_streamed());
    let streamed = pipe
        .denoise_observed(&p, &embeds, &mut NoProgress, &mut |i, l| {
            d.check(&format!("latents.step{i}"), l, 1e-4);
            Ok(())
        })
        .unwrap();
    let frames = pipe.decode(&streamed, &mut NoProgress).unwrap();
    assert_close("frames (blocks streamed)", &frames.data, want, 1e-4);
}
