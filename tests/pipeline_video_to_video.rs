//! Video-to-video against diffusers' `VideoToVideoSDPipeline` on the tiny pipeline
//! (tests/fixtures/v2v, made by tools/reference/v2v_fixtures.py): the input PNG folder resized
//! with PIL's bicubic resize, the video processor's pixels, the VAE encoder path with the
//! posterior sample (the generator's first draw), the strength cut of the timesteps, add_noise
//! (the second draw), and the whole run for DDIM at strength 0.5 and DPM-Solver++ at 0.8, both
//! with guidance (Euler at 0.7 without guidance runs through the CLI test), the upscale chain's
//! two stages, the video-to-video memory plan, and the stochastic schedulers (`euler-a`,
//! `dpm++-sde`, tests/fixtures/v2v/stochastic) whose step noise continues the seed's stream.
//!
//! Bounds: pixels exactly (PIL's integer resize, then the same f32 ops); the encoded latents
//! and the noised start within relative L2 1e-4 (the per-module bound: a VAE encoder's f32
//! rounding); final latents and frames as the fidelity sweep (tests/pipeline_sweep.rs):
//! `max(1e-4, 10 · ref_err)` relative L2 and `max(1/255, 10 · ref_err)` max |Δ|, with `ref_err`
//! diffusers' own float32-vs-float64 difference on the same case (the float64 run gets the same
//! float32 noise).

mod common;
use common::fixtures::{dump_at, fixtures};
use common::{gpu, rel_l2};
use t2v::latents::randn::TorchGenerator;
use t2v::pipelines::{strength_start, GenerateParams, NoProgress, TextToVideo};
use t2v::schedulers::SchedulerKind;
use t2v::video::read_video;
use t2v::weights::Placement;
use t2v::DType;

const MODULE_TOL: f64 = 1e-4;
const LATENT_FLOOR: f64 = 1e-4;
const FRAME_FLOOR: f64 = 1.0 / 255.0;
const FACTOR: f64 = 10.0;

#[derive(serde::Deserialize)]
struct RefErr {
    latents_rel_l2: f64,
    frames_max_abs: f64,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    scheduler: String,
    num_inference_steps: usize,
    strength: f64,
    guidance_scale: f32,
    seed: u64,
    prompt: String,
    height: usize,
    width: usize,
    num_frames: usize,
    timesteps: Vec<f32>,
    file: String,
    ref_err: RefErr,
}

fn cases() -> Vec<Case> {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("v2v/cases.json")).unwrap()).unwrap()
}

fn params(c: &Case) -> GenerateParams {
    GenerateParams {
        prompt: c.prompt.clone(),
        negative_prompt: String::new(),
        num_frames: c.num_frames,
        height: c.height,
        width: c.width,
        num_inference_steps: c.num_inference_steps,
        guidance_scale: c.guidance_scale,
        seed: c.seed,
        scheduler: Some(SchedulerKind::from_class_name(&c.scheduler).unwrap()),
        ..GenerateParams::default()
    }
}

#[test]
fn strength_cuts_the_schedule_as_get_timesteps() {
    // int(steps · strength) in f64, as Python: int(10 · 0.7) = 7 (f32 would give 6).
    assert_eq!(strength_start(10, 0.7), 3);
    assert_eq!(strength_start(50, 0.6), 20);
    assert_eq!(strength_start(3, 1.0), 0);
    assert_eq!(strength_start(3, 0.0), 3);
    assert_eq!(strength_start(4, 0.49), 3);
    let pipe = TextToVideo::from_dir(&gpu(), &fixtures().join("tiny-t2v"), Placement { matrices: DType::F32 }).unwrap();
    for c in cases() {
        let mut s = pipe.scheduler(Some(SchedulerKind::from_class_name(&c.scheduler).unwrap())).unwrap();
        s.set_timesteps(c.num_inference_steps).unwrap();
        let first = strength_start(c.num_inference_steps, c.strength);
        assert_eq!(&s.timesteps()[first..], &c.timesteps[..], "{}: kept timesteps", c.name);
    }
    // A strength that keeps no step is refused with the fix, as is one outside [0, 1].
    let c = &cases()[0];
    let video = read_video(&fixtures().join("v2v/input")).unwrap().resized(c.height, c.width);
    let e = pipe.check_video(&GenerateParams { num_inference_steps: 2, ..params(c) }, 0.4, &video).unwrap_err().to_string();
    assert!(e.contains("keeps no denoising step") && e.contains("--strength"), "{e}");
    let e = pipe.check_video(&params(c), 1.5, &video).unwrap_err().to_string();
    assert!(e.contains("between 0 and 1"), "{e}");
    let e = pipe.check_video(&params(c), 0.5, &read_video(&fixtures().join("v2v/input")).unwrap()).unwrap_err().to_string();
    assert!(e.contains("36x24") && e.contains("48x32"), "wrong size: {e}");
}

#[test]
fn every_case_matches_diffusers() {
    let t0 = std::time::Instant::now();
    let g = gpu();
    let pipe = TextToVideo::from_dir(&g, &fixtures().join("tiny-t2v"), Placement { matrices: DType::F32 }).unwrap();
    let source = read_video(&fixtures().join("v2v/input")).unwrap();
    assert_eq!((source.frames, source.height, source.width), (3, 24, 36));
    let mut report = Vec::new();
    // The Euler case runs end to end through the command line (tests/cli_video_to_video.rs),
    // against the same diffusers frames; its strength cut is checked above.
    for c in cases().into_iter().filter(|c| !c.name.starts_with("euler")) {
        let d = dump_at(&fixtures().join(&c.file), &c.name);
        let p = params(&c);
        let video = source.resized(c.height, c.width);
        // The video processor's pixels: PIL's resize then /255, 2x − 1, exactly.
        let pixels: Vec<f32> = (0..video.frames).flat_map(|i| video.frame_pixels(i)).collect();
        let want = d.want("pixels");
        let worst = pixels.iter().zip(want).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max);
        assert_eq!(worst, 0.0, "{}: pixels differ from diffusers' video processor by {worst}", c.name);

        // Encoder path: moments → posterior sample with the generator's first draw → × 0.18215.
        let mut gen = TorchGenerator::new(c.seed);
        let init = pipe.encode_video(&video, &mut gen, &mut NoProgress).unwrap();
        let e_init = rel_l2(&init, d.want("init_latents"));
        assert!(e_init <= MODULE_TOL, "{}: encoded latents relative L2 {e_init:.2e}", c.name);
        // add_noise at the first kept timestep with the second draw.
        let mut sched = pipe.scheduler(p.scheduler).unwrap();
        sched.set_timesteps(p.num_inference_steps).unwrap();
        let first = strength_start(p.num_inference_steps, c.strength);
        let start = pipe.start_latents(&init, video.frames, sched.as_ref(), first, &mut gen).unwrap();
        // diffusers noises the (F, 4, h, w) batch, then permutes to (1, 4, F, h, w): compare in
        // its layout.
        let (s, hw) = (start.to_f32().unwrap(), start.numel() / (4 * video.frames));
        let frames_first: Vec<f32> = (0..video.frames).flat_map(|f| (0..4).flat_map(move |ch| (0..hw).map(move |k| (ch, f, k)))).map(|(ch, f, k)| s[(ch * video.frames + f) * hw + k]).collect();
        assert_eq!(d.get("start_latents").0, [video.frames, 4, c.height / 8, c.width / 8]);
        let e_start = rel_l2(&frames_first, d.want("start_latents"));
        assert!(e_start <= MODULE_TOL, "{}: noised start latents relative L2 {e_start:.2e}", c.name);

        // End to end, through the public entry point.
        let embeds = pipe.encode_prompt(&p, &mut NoProgress).unwrap();
        let latents = pipe.denoise_video(&p, c.strength, &video, &embeds, &mut NoProgress, &mut |_, _| Ok(())).unwrap();
        let e_lat = rel_l2(&latents.to_f32().unwrap(), d.want("latents"));
        let frames = pipe.decode(&latents, &mut NoProgress).unwrap();
        let e_fr = frames.data.iter().zip(d.want("frames")).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max);
        let (lat_bound, fr_bound) = (LATENT_FLOOR.max(FACTOR * c.ref_err.latents_rel_l2), FRAME_FLOOR.max(FACTOR * c.ref_err.frames_max_abs));
        report.push(format!(
            "{:<16} encoded {e_init:.1e}  start {e_start:.1e}  latents {e_lat:.1e} (bound {lat_bound:.1e})  frames max {:.3}/255 (bound {:.2}/255)",
            c.name,
            e_fr * 255.0,
            fr_bound * 255.0
        ));
        assert!(e_lat <= lat_bound && e_fr <= fr_bound, "{}: latents {e_lat:.2e} (≤ {lat_bound:.1e}), frames {e_fr:.2e} (≤ {fr_bound:.1e})", c.name);
    }
    eprintln!("{}\n({:.1} s)", report.join("\n"), t0.elapsed().as_secs_f64());
}

/// The `--upscale` chain's two stages against diffusers' chain (tests/fixtures/v2v/chain.safetensors):
/// text-to-video frames rounded to u8 as `output_type="pil"` does, then video-to-video at twice
/// the size on diffusers' own u8 frames, so the second stage is compared on identical input.
#[test]
fn upscale_chain_stages_match_diffusers() {
    let g = gpu();
    let pipe = TextToVideo::from_dir(&g, &fixtures().join("tiny-t2v"), Placement { matrices: DType::F32 }).unwrap();
    let d = dump_at(&fixtures().join("v2v/chain.safetensors"), "chain");
    let p = GenerateParams {
        prompt: "A lion walking in the jungle".into(),
        num_frames: 2,
        height: 32,
        width: 48,
        num_inference_steps: 3,
        guidance_scale: 1.0,
        seed: 3,
        scheduler: Some(SchedulerKind::DpmSolverMultistep),
        ..GenerateParams::default()
    };
    let first = pipe.generate(&p, &mut NoProgress).unwrap();
    let ours = t2v::video::InputVideo::from_pipeline_frames(&first.data, 2, 32, 48);
    let want: Vec<u8> = d.want("first").iter().map(|&v| v as u8).collect();
    let flipped = ours.rgb.iter().zip(&want).filter(|(a, b)| a != b).count();
    let worst = ours.rgb.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
    eprintln!("chain stage 1: {flipped} of {} u8 values differ (max {worst})", want.len());
    assert!(worst <= 1, "stage 1 frames differ from diffusers' by {worst} levels");
    let theirs = t2v::video::InputVideo { rgb: want, frames: 2, height: 32, width: 48, fps: None }.resized(64, 96);
    let p2 = GenerateParams { height: 64, width: 96, ..p };
    let up = pipe.video_to_video(&p2, 0.7, &theirs, &mut NoProgress).unwrap();
    let e = up.data.iter().zip(d.want("frames")).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max);
    eprintln!("chain stage 2 on diffusers' stage-1 frames: max |Δ| {:.3}/255", e * 255.0);
    assert!(e <= FRAME_FLOOR, "stage 2 differs by {:.3}/255", e * 255.0);
}

/// The video-to-video plan is the allocator's own count: a real run from the plan's buffers
/// allocates nothing else and reaches exactly the planned peak.
#[test]
fn video_to_video_plan_equals_the_measured_peak() {
    use t2v::gpu::AdapterSelector;
    use t2v::pipelines::{folder_configs, plan_video_to_video};
    let sel = AdapterSelector::from_env();
    let dir = fixtures().join("tiny-t2v");
    let c = &cases()[2]; // Euler, no guidance: the cheapest case
    let p = params(c);
    let placement = Placement { matrices: DType::F16 };
    let planned =
        plan_video_to_video(&t2v::Gpu::planner(&sel).unwrap(), &folder_configs(&dir).unwrap(), &p, c.strength, (c.height, c.width), placement).unwrap();
    let g = t2v::Gpu::new(&sel).unwrap();
    let mut pipe = TextToVideo::from_dir(&g, &dir, placement).unwrap();
    pipe.use_plan(&planned).unwrap();
    let video = read_video(&fixtures().join("v2v/input")).unwrap().resized(c.height, c.width);
    pipe.video_to_video(&p, c.strength, &video, &mut NoProgress).unwrap();
    assert_eq!(g.schedule_divergence(), None, "the real run allocated differently from the plan");
    assert_eq!(planned.peak, g.memory().peak_allocated, "planned {}", planned.report());
    assert!(planned.stages.iter().any(|(s, _)| s.contains("video encoding")), "{}", planned.report());
}

#[derive(serde::Deserialize)]
struct StochasticCase {
    name: String,
    /// "text-to-video" for the TextToVideoSDPipeline cases (frames only); absent: video-to-video.
    #[serde(default)]
    pipeline: Option<String>,
    t2v_scheduler: String,
    num_inference_steps: usize,
    #[serde(default)]
    strength: f64,
    guidance_scale: f32,
    seed: u64,
    prompt: String,
    height: usize,
    width: usize,
    num_frames: usize,
    file: String,
    #[serde(default)]
    ref_err: Option<RefErr>,
    /// DDIM's η (tests/fixtures/v2v/eta.json); 0 for the stochastic schedulers.
    #[serde(default)]
    eta: f32,
}

/// Schedulers whose steps draw noise (`euler-a`, `dpm++-sde`, DDIM with `eta` > 0) end to end against diffusers
/// (tests/fixtures/v2v/stochastic): their noise continues the seed's torch stream after the
/// posterior sample and add_noise's noise, as the pipeline's one generator does in diffusers.
/// Same bounds as above.
#[test]
fn stochastic_schedulers_match_diffusers() {
    let g = gpu();
    let pipe = TextToVideo::from_dir(&g, &fixtures().join("tiny-t2v"), Placement { matrices: DType::F32 }).unwrap();
    let source = read_video(&fixtures().join("v2v/input")).unwrap();
    // The stochastic schedulers, then DDIM with the pipelines' eta > 0 (its σ_t·z per step).
    let read = |f: &str| -> Vec<StochasticCase> { serde_json::from_str(&std::fs::read_to_string(fixtures().join("v2v").join(f)).unwrap()).unwrap() };
    let cases: Vec<StochasticCase> = read("stochastic.json").into_iter().chain(read("eta.json")).collect();
    let mut report = Vec::new();
    for c in cases {
        let d = dump_at(&fixtures().join(&c.file), &c.name);
        let kind: SchedulerKind = c.t2v_scheduler.parse().unwrap();
        let p = GenerateParams {
            prompt: c.prompt.clone(),
            negative_prompt: String::new(),
            num_frames: c.num_frames,
            height: c.height,
            width: c.width,
            num_inference_steps: c.num_inference_steps,
            guidance_scale: c.guidance_scale,
            seed: c.seed,
            scheduler: Some(kind),
            eta: c.eta,
            ..GenerateParams::default()
        };
        assert!(pipe.scheduler_of(&p).unwrap().is_stochastic(), "{}", c.name);
        if c.pipeline.as_deref() == Some("text-to-video") {
            // TextToVideoSDPipeline: initial latents, then each step's noise, frames first.
            // Frames within the sweep's floor (1/255).
            let frames = pipe.generate(&p, &mut NoProgress).unwrap();
            let e_fr = frames.data.iter().zip(d.want("frames")).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max);
            report.push(format!("{:<20} text-to-video frames max {:.4}/255", c.name, e_fr * 255.0));
            assert!(e_fr <= FRAME_FLOOR, "{}: frames differ from diffusers by {:.3}/255", c.name, e_fr * 255.0);
            continue;
        }
        let ref_err = c.ref_err.as_ref().expect("video-to-video cases record diffusers' f32-vs-f64 error");
        let video = source.resized(c.height, c.width);
        let embeds = pipe.encode_prompt(&p, &mut NoProgress).unwrap();
        let latents = pipe.denoise_video(&p, c.strength, &video, &embeds, &mut NoProgress, &mut |_, _| Ok(())).unwrap();
        let e_lat = rel_l2(&latents.to_f32().unwrap(), d.want("latents"));
        let frames = pipe.decode(&latents, &mut NoProgress).unwrap();
        let e_fr = frames.data.iter().zip(d.want("frames")).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max);
        let (lat_bound, fr_bound) = (LATENT_FLOOR.max(FACTOR * ref_err.latents_rel_l2), FRAME_FLOOR.max(FACTOR * ref_err.frames_max_abs));
        report.push(format!("{:<20} latents {e_lat:.1e} (bound {lat_bound:.1e})  frames max {:.3}/255", c.name, e_fr * 255.0));
        assert!(e_lat <= lat_bound && e_fr <= fr_bound, "{}: latents {e_lat:.2e} (≤ {lat_bound:.1e}), frames {e_fr:.2e} (≤ {fr_bound:.1e})", c.name);
    }
    eprintln!("{}", report.join("\n"));
}

#[derive(serde::Deserialize)]
struct OddCase {
    name: String,
    scheduler: String,
    num_inference_steps: usize,
    strength: f64,
    guidance_scale: f32,
    seed: u64,
    prompt: String,
    video_height: usize,
    video_width: usize,
    height: usize,
    width: usize,
    num_frames: usize,
    input: String,
    file: String,
    ref_err: RefErr,
}

/// Frames whose size is not a multiple of 8, taken as they are (diffusers' VideoProcessor does not
/// resize them; `t2v generate --keep-size`): the VAE encoder floors each stride-2 level, so
/// 53x38 frames give 6×4 latents and a 48x32 video (tests/fixtures/v2v/odd). Same bounds as the
/// other cases; the second case's run is also served from its memory plan, which must be exact.
#[test]
fn odd_frame_sizes_match_diffusers() {
    use t2v::gpu::AdapterSelector;
    use t2v::pipelines::{folder_configs, plan_video_to_video};
    let cases: Vec<OddCase> = serde_json::from_str(&std::fs::read_to_string(fixtures().join("v2v/odd.json")).unwrap()).unwrap();
    let sel = AdapterSelector::from_env();
    let dir = fixtures().join("tiny-t2v");
    for (i, c) in cases.iter().enumerate() {
        let d = dump_at(&fixtures().join(&c.file), &c.name);
        let video = read_video(&fixtures().join(&c.input)).unwrap();
        assert_eq!((video.frames, video.height, video.width), (c.num_frames, c.video_height, c.video_width));
        let p = GenerateParams {
            prompt: c.prompt.clone(),
            num_frames: c.num_frames,
            height: c.height,
            width: c.width,
            num_inference_steps: c.num_inference_steps,
            guidance_scale: c.guidance_scale,
            seed: c.seed,
            scheduler: Some(SchedulerKind::from_class_name(&c.scheduler).unwrap()),
            ..GenerateParams::default()
        };
        let placement = Placement { matrices: DType::F32 };
        let g = t2v::Gpu::new(&sel).unwrap();
        let mut pipe = TextToVideo::from_dir(&g, &dir, placement).unwrap();
        // The run's size must be the cropped one: 8 pixels more is another latent row.
        let e = pipe.check_video(&GenerateParams { height: c.height + 8, ..p.clone() }, c.strength, &video).unwrap_err().to_string();
        assert!(e.contains("resize the frames first"), "{e}");
        let planned = (i == 1).then(|| {
            let planner = t2v::Gpu::planner(&sel).unwrap();
            let planned = plan_video_to_video(&planner, &folder_configs(&dir).unwrap(), &p, c.strength, (video.height, video.width), placement).unwrap();
            pipe.use_plan(&planned).unwrap();
            planned
        });
        let embeds = pipe.encode_prompt(&p, &mut NoProgress).unwrap();
        let latents = pipe.denoise_video(&p, c.strength, &video, &embeds, &mut NoProgress, &mut |_, _| Ok(())).unwrap();
        let e_lat = rel_l2(&latents.to_f32().unwrap(), d.want("latents"));
        let frames = pipe.decode(&latents, &mut NoProgress).unwrap();
        assert_eq!((frames.height, frames.width), (c.height, c.width));
        let e_fr = frames.data.iter().zip(d.want("frames")).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max);
        let (lat_bound, fr_bound) = (LATENT_FLOOR.max(FACTOR * c.ref_err.latents_rel_l2), FRAME_FLOOR.max(FACTOR * c.ref_err.frames_max_abs));
        eprintln!("{}: {}x{} → {}x{}: latents {e_lat:.1e} (bound {lat_bound:.1e}), frames max {:.3}/255", c.name, c.video_width, c.video_height, c.width, c.height, e_fr * 255.0);
        assert!(e_lat <= lat_bound && e_fr <= fr_bound, "{}: latents {e_lat:.2e} (≤ {lat_bound:.1e}), frames {e_fr:.2e} (≤ {fr_bound:.1e})", c.name);
        if let Some(planned) = planned {
            drop((latents, embeds, frames));
            assert_eq!(g.schedule_divergence(), None, "the real run allocated differently from the plan");
            assert_eq!(planned.peak, g.memory().peak_allocated, "planned {}", planned.report());
        }
    }
}
