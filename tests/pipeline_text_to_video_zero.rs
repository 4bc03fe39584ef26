//! Text2Video-Zero end to end against diffusers' TextToVideoZeroPipeline on the tiny SD model
//! (tests/fixtures/tiny-sd; cases and references in tests/fixtures/zero, made by
//! tools/reference/zero_fixtures.py): two settings of scheduler (SD's shipped PNDM, DDIM),
//! guidance, t0/t1, motion and frames (one a chunk with frame_ids); two with scheduler options
//! given as diffusers' `from_config(config, **options)` and t2v's `scheduler_config` (PNDM with
//! its PRK warm-up; DDIM with trailing spacing, zero-terminal-SNR betas and x̂₀ clipping at
//! 1.5; DDIM with eta 0.8, whose per-step noise comes from the pipeline's generator around the
//! forward diffusion's); and a long video in chunks
//! by diffusers' documented recipe. Every intermediate
//! (first loops, warp, forward diffusion, final latents) and the frames are compared.
//!
//! Bound, stated from f32 rounding as tests/pipeline_sweep.rs does: diffusers also ran every
//! case in float64 (same float32 noise); t2v's latents must be within max(1e-4, 10 × diffusers'
//! own f32-vs-f64 relative L2) and its frames within max(1/255, 10 × diffusers' own max abs
//! error) of diffusers' float32 result. Also here: PNDM against diffusers, the named model's
//! memory plan without weights, and `t2v generate --pipeline text2video-zero`.

mod common;
use common::fixtures::{dump_at, fixtures};
use common::{gpu, rel_l2};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use t2v::gpu::AdapterSelector;
use t2v::pipelines::{plan_zero, sd15_configs, GenerateParams, NoProgress, TextToVideoZero, ZeroParams};
use t2v::schedulers::{self, SchedulerConfig, SchedulerKind};
use t2v::weights::Placement;
use t2v::{DType, Gpu};

/// The two cases, then three with options (zero/options.json).
fn cases() -> Vec<Value> {
    let read = |f: &str| -> Vec<Value> { serde_json::from_str(&std::fs::read_to_string(fixtures().join("zero").join(f)).unwrap()).unwrap() };
    read("cases.json").into_iter().chain(read("options.json")).collect()
}

fn params(c: &Value) -> ZeroParams {
    let u = |k: &str| c[k].as_u64().unwrap() as usize;
    ZeroParams {
        common: GenerateParams {
            prompt: c["prompt"].as_str().unwrap().into(),
            negative_prompt: String::new(),
            num_frames: u("video_length"),
            height: u("height"),
            width: u("width"),
            num_inference_steps: u("num_inference_steps"),
            guidance_scale: c["guidance_scale"].as_f64().unwrap() as f32,
            seed: c["seed"].as_u64().unwrap(),
            scheduler: Some(c["scheduler"].as_str().unwrap().parse::<SchedulerKind>().unwrap()),
            scheduler_config: c["scheduler_config"].as_object().cloned().unwrap_or_default(),
            eta: c["eta"].as_f64().unwrap_or(0.0) as f32,
            ..GenerateParams::default()
        },
        t0: u("t0"),
        t1: u("t1"),
        motion_field_strength_x: c["motion_field_strength_x"].as_f64().unwrap(),
        motion_field_strength_y: c["motion_field_strength_y"].as_f64().unwrap(),
        frame_ids: c["frame_ids"].as_array().map(|a| a.iter().map(|v| v.as_u64().unwrap() as usize).collect()),
    }
}

fn bounds(c: &Value) -> (f64, f64) {
    let e = &c["ref_err"];
    (1e-4f64.max(10.0 * e["latents_rel_l2"].as_f64().unwrap()), (1.0 / 255.0f64).max(10.0 * e["frames_max_abs"].as_f64().unwrap()))
}

fn max_abs(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).map(|(g, w)| if g.is_finite() { (*g as f64 - w).abs() } else { f64::INFINITY }).fold(0.0, f64::max)
}

#[test]
fn matches_diffusers_end_to_end() {
    let pipe = TextToVideoZero::from_dir(&gpu(), &fixtures().join("tiny-sd"), Placement { matrices: DType::F32 }).unwrap();
    let mut worst = (0.0f64, 0.0f64);
    for c in cases() {
        let name = c["name"].as_str().unwrap();
        let d = dump_at(&fixtures().join(c["file"].as_str().unwrap()), name);
        let p = params(&c);
        let (lat_tol, frame_tol) = bounds(&c);
        let t = std::time::Instant::now();
        let embeds = pipe.encode_prompt(&p, &mut NoProgress).unwrap();
        let mut got: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
        let latents = pipe
            .denoise_observed(&p, &embeds, &mut NoProgress, &mut |stage, x| {
                got.insert(stage, x.to_f32()?);
                Ok(())
            })
            .unwrap();
        // The first stage that differs is named (the intermediates are in run order).
        for stage in t2v::pipelines::text_to_video_zero::STAGES {
            let e = rel_l2(&got[stage], d.want(stage));
            assert!(e <= lat_tol, "{name}: {stage} relative L2 {e:.3e} > {lat_tol:.1e}");
        }
        let frames = pipe.decode(&latents, &mut NoProgress).unwrap();
        let (lat_e, fr_e) = (rel_l2(&got["latents"], d.want("latents")), max_abs(&frames.data, d.want("frames")));
        eprintln!(
            "{name}: latents rel L2 {lat_e:.2e} (bound {lat_tol:.1e}), frames max {:.4}/255 (bound {:.3}/255), {:.1} s",
            fr_e * 255.0,
            frame_tol * 255.0,
            t.elapsed().as_secs_f64()
        );
        assert!(fr_e <= frame_tol, "{name}: frames differ by {:.4}/255 > {:.3}/255", fr_e * 255.0, frame_tol * 255.0);
        worst = (worst.0.max(lat_e), worst.1.max(fr_e));
    }
    eprintln!("worst: latents {:.2e}, frames {:.4}/255", worst.0, worst.1 * 255.0);
}

/// A long video by diffusers' documented recipe (chunks of `chunk_size` frames sharing frame 0,
/// re-seeded per chunk): `generate_long` against the frames of that loop.
#[test]
fn long_video_in_chunks_matches_diffusers() {
    let c = &serde_json::from_str::<Vec<Value>>(&std::fs::read_to_string(fixtures().join("zero/chunked.json")).unwrap()).unwrap()[0];
    let pipe = TextToVideoZero::from_dir(&gpu(), &fixtures().join("tiny-sd"), Placement { matrices: DType::F32 }).unwrap();
    let frames = pipe.generate_long(&params(c), c["chunk_size"].as_u64().unwrap() as usize, &mut NoProgress).unwrap();
    let d = dump_at(&fixtures().join(c["file"].as_str().unwrap()), "chunked");
    assert_eq!(frames.frames, c["video_length"].as_u64().unwrap() as usize);
    let tol = (1.0 / 255.0f64).max(10.0 * c["ref_err"]["frames_max_abs"].as_f64().unwrap());
    let e = max_abs(&frames.data, d.want("frames"));
    eprintln!("chunked: frames max {:.4}/255 (bound {:.3}/255)", e * 255.0, tol * 255.0);
    assert!(e <= tol, "chunked video differs by {:.4}/255", e * 255.0);
}

#[test]
fn pndm_matches_diffusers() {
    let cfg = SchedulerConfig::from_file(&fixtures().join("tiny-sd/scheduler/scheduler_config.json")).unwrap();
    let side: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("zero/pndm.json")).unwrap()).unwrap();
    for (n, want) in side["timesteps"].as_object().unwrap() {
        let mut s = schedulers::from_config(&cfg, None).unwrap();
        assert_eq!(s.kind(), SchedulerKind::Pndm);
        s.set_timesteps(n.parse().unwrap()).unwrap();
        let want: Vec<f32> = want.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(s.timesteps(), &want[..], "{n} steps");
    }
    let d = dump_at(&fixtures().join("zero/pndm.safetensors"), "pndm");
    let mut s = schedulers::from_config(&cfg, None).unwrap();
    s.set_timesteps(6).unwrap();
    let mut x = d.input("sample");
    for i in 0..s.timesteps().len() {
        x = s.step(&d.input(&format!("eps.{i}")), i, &x).unwrap();
        d.check(&format!("prev.{i}"), &x, 1e-6);
    }
}

/// 512×512 × 8 frames with guidance on SD 1.5, f16 weights, planned from the shipped configs:
/// the brief's target is ≤ 4 GiB.
#[test]
fn sd15_plan_fits_4_gib_without_weights() {
    let planner = Gpu::planner(&AdapterSelector::from_env()).unwrap();
    let p = ZeroParams::default();
    let t = std::time::Instant::now();
    let plan = plan_zero(&planner, &sd15_configs().unwrap(), &p, Placement { matrices: DType::F16 }).unwrap();
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    eprintln!("SD 1.5 text2video-zero 512×512×8, guidance 7.5: {}\n({:.1} s)", plan.report(), t.elapsed().as_secs_f64());
    // UNet 860 M + VAE 84 M parameters in f16 (the text encoder is streamed layer by layer).
    assert!((1.6..2.0).contains(&gib(plan.weights)), "{}", plan.report());
    assert!(gib(plan.peak) <= 4.0, "{}", plan.report());
}

#[test]
fn plan_equals_the_measured_peak() {
    let sel = AdapterSelector::from_env();
    let dir = fixtures().join("tiny-sd");
    // small and quick: 2 frames of 24×16, 3 PNDM steps, guidance on
    let mut p = params(&cases()[0]);
    (p.common.num_frames, p.common.height, p.common.width, p.common.num_inference_steps, p.t0, p.t1) = (2, 16, 24, 3, 0, 1);
    let placement = Placement { matrices: DType::F16 };
    let configs = t2v::pipelines::sd_folder_configs(&dir).unwrap();
    let planned = plan_zero(&Gpu::planner(&sel).unwrap(), &configs, &p, placement).unwrap();
    let gpu = Gpu::new(&sel).unwrap();
    let mut pipe = TextToVideoZero::from_dir(&gpu, &dir, placement).unwrap();
    pipe.use_plan(&planned).unwrap();
    pipe.generate(&p, &mut NoProgress).unwrap();
    assert_eq!(gpu.schedule_divergence(), None, "the real run allocated differently from the plan");
    assert_eq!(planned.peak, gpu.memory().peak_allocated, "planned {}", planned.report());
}

/// `t2v generate` as a user runs it on an SD folder: the raw frames equal the library's, and
/// the named model plans without weights.
#[test]
fn cli_generate_text2video_zero() {
    let c = &cases()[1];
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-zero");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("frames.npy");
    let ids: Vec<String> = c["frame_ids"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    let s = |k: &str| c[k].to_string().trim_matches('"').to_string();
    let model = fixtures().join("tiny-sd");
    let args = [
        "generate", "--model", model.to_str().unwrap(), "--pipeline", "text2video-zero",
        "--prompt", &s("prompt"), "--seed", &s("seed"), "--video-length", &s("video_length"), "--height", &s("height"),
        "--width", &s("width"), "--num-inference-steps", &s("num_inference_steps"), "--guidance-scale", &s("guidance_scale"),
        "--scheduler", &s("scheduler"), "--t0", &s("t0"), "--t1", &s("t1"),
        "--motion-field-strength-x", &s("motion_field_strength_x"), "--motion-field-strength-y", &s("motion_field_strength_y"),
        "--frame-ids", &ids.join(","), "--f32-weights", "-o", out.to_str().unwrap(),
    ];
    let r = Command::new(env!("CARGO_BIN_EXE_t2v")).args(args).current_dir(&dir).env("HF_HUB_OFFLINE", "1").output().unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    assert!(r.status.success(), "{log}");
    assert!(log.contains("no safety checker"), "{log}");
    let bytes = std::fs::read(&out).unwrap();
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let got: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes[10 + header..]);
    let d = dump_at(&fixtures().join(c["file"].as_str().unwrap()), "cli");
    let e = max_abs(&got, d.want("frames"));
    assert!(e <= bounds(c).1, "CLI frames differ from diffusers by {:.4}/255", e * 255.0);

    let r = Command::new(env!("CARGO_BIN_EXE_t2v"))
        .args(["generate", "--model", "text2video-zero", "--dry-run", "--prompt", "a cat", "--num-inference-steps", "3"])
        .current_dir(&dir)
        .env("HF_HOME", dir.join("hf"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    assert!(r.status.success() && log.contains("peak") && log.contains("8 frames"), "{log}");
}
