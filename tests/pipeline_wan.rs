//! `WanPipeline` end to end against diffusers (tests/fixtures/wan/cases.json, made by
//! tools/reference/wan_fixtures.py): nine runs of the tiny Wan 2.1 pipelines — non-square sizes,
//! odd patch grids, 1/5/9/13 frames and one diffusers rounds (6 → 5), guidance on and off, UniPC
//! and flow-matching Euler (the model's shift, and `from_config`'s shift 1), two transformer
//! shapes (the second stored in bfloat16), a prompt past 512 tokens; and three with scheduler
//! options off the defaults, given as diffusers' `from_config(config, **options)` and t2v's
//! `scheduler_config` (flow Euler with Karras sigmas; with exponential sigmas and
//! `shift_terminal`; UniPC bh1 with `final_sigmas_type: sigma_min`, `disable_corrector` and
//! `flow_shift` 5; DPM-Solver++ on the file's flow sigmas, and with heun, `sigma_min` and shift 5)
//! and one with `max_sequence_length` 16 (prompts cut and padded to 16 tokens).
//! Each stage is held to
//! diffusers: token ids and noise exactly, timesteps exactly, prompt embeddings at 1e-4, the
//! latents after every step and the frames within 10× diffusers' own f32-vs-f64 error (with the
//! fidelity sweep's floors: 1e-4 relative for latents, 1/255 for frames).

mod common;

use common::fixtures::{dump_at, fixtures};
use common::{gpu, rel_l2};
use serde_json::Value;
use t2v::pipelines::{Family, GenerateParams, NoProgress, VideoPipeline, WanPipeline};
use t2v::schedulers::SchedulerKind;
use t2v::weights::Placement;
use t2v::DType;

const LATENT_FLOOR: f64 = 1e-4;
const FRAME_FLOOR: f64 = 1.0 / 255.0;
const FACTOR: f64 = 10.0;

/// The nine cases, then the ones with options off the defaults (wan/options.json), then Wan 2.2
/// A14B's two experts (wan/experts.json: the boundary between steps and on a step, each expert's
/// guidance scale, guidance off, a low-noise scale below 1, flow Euler).
fn cases() -> Vec<Value> {
    let read = |f: &str| -> Vec<Value> { serde_json::from_str(&std::fs::read_to_string(fixtures().join("wan").join(f)).unwrap()).unwrap() };
    read("cases.json").into_iter().chain(read("options.json")).chain(read("experts.json")).chain(read("ti2v.json")).collect()
}

fn params(c: &Value) -> GenerateParams {
    let u = |k: &str| c[k].as_u64().unwrap() as usize;
    let scheduler = match c["scheduler"].as_str().unwrap() {
        "unipc" => SchedulerKind::UniPcMultistep,
        // DPM-Solver++ on the file's flow sigmas (diffusers' `from_config(unipc_config)`).
        "dpm++" => SchedulerKind::DpmSolverMultistep,
        // `--scheduler euler` on a flow model: flow-matching Euler with the model's shift.
        "euler" => SchedulerKind::EulerDiscrete,
        // diffusers' `FlowMatchEulerDiscreteScheduler.from_config(unipc_config)` takes its own
        // default shift (1), not the model's: t2v's `--scheduler euler --flow-shift 1`.
        "euler-default" => SchedulerKind::EulerDiscrete,
        s => panic!("unknown scheduler {s}"),
    };
    let flow_shift = (c["scheduler"] == "euler-default").then_some(1.0);
    GenerateParams {
        prompt: c["prompt"].as_str().unwrap().into(),
        negative_prompt: c["negative_prompt"].as_str().unwrap_or("").into(),
        num_frames: u("num_frames"),
        height: u("height"),
        width: u("width"),
        num_inference_steps: u("num_inference_steps"),
        guidance_scale: c["guidance_scale"].as_f64().unwrap() as f32,
        seed: c["seed"].as_u64().unwrap(),
        scheduler: Some(scheduler),
        flow_shift,
        scheduler_config: c["scheduler_config"].as_object().cloned().unwrap_or_default(),
        max_sequence_length: c["max_sequence_length"].as_u64().map(|n| n as usize),
        guidance_scale_2: c["guidance_scale_2"].as_f64().map(|g| g as f32),
        ..GenerateParams::default()
    }
}

/// The prompt embeddings diffusers passes on: the trimmed rows stored in the fixture, then
/// zeros to 512 rows.
fn padded(rows: &(Vec<usize>, Vec<f64>), len: usize) -> Vec<f64> {
    let mut v = rows.1.clone();
    v.resize(len, 0.0);
    v
}

#[test]
fn wan_pipeline_matches_diffusers_end_to_end() {
    let g = gpu();
    let mut worst: Option<(f64, String)> = None;
    println!("{:<28} {:>10} {:>9} {:>11} {:>9}", "case", "latents", "bound", "frames/255", "bound");
    for (k, c) in cases().into_iter().enumerate() {
        let name = c["name"].as_str().unwrap();
        let dir = fixtures().join("wan").join(c["model"].as_str().unwrap());
        let family = Family::of_folder(&dir, None).unwrap();
        let mut p = params(&c);
        family.adjust(&mut p);
        assert_eq!(p.num_frames, c["num_frames_used"].as_u64().unwrap() as usize, "{name}: diffusers' frame rounding");
        let mut pipe = WanPipeline::from_dir(&g, &dir, Placement { matrices: DType::F32 }).unwrap();
        // Every other case streams every transformer block from host memory (both experts'):
        // the weight-streaming path is held to diffusers too.
        if k % 2 == 1 {
            pipe.streamed = (0..pipe.transformer_config.num_layers).map(|i| format!("blocks.{i}")).collect();
        }
        pipe.check(&p).unwrap();
        let d = dump_at(&fixtures().join("wan").join(c["file"].as_str().unwrap()), name);

        // Schedule: integer timesteps (UniPC) or fractional ones (flow Euler), exactly.
        let mut sched = pipe.scheduler(&p).unwrap();
        sched.set_timesteps(p.num_inference_steps).unwrap();
        let want_t: Vec<f32> = d.want("timesteps").iter().map(|&t| t as f32).collect();
        if want_t.iter().all(|t| t.fract() == 0.0) {
            assert_eq!(sched.timesteps(), &want_t[..], "{name}: timesteps");
        } else {
            assert!(rel_l2(sched.timesteps(), d.want("timesteps")) < 1e-7, "{name}: timesteps {:?}", sched.timesteps());
        }

        // Prompt embeddings: [negative, positive] with guidance.
        let embeds = pipe.encode_prompt(&p, &mut NoProgress).unwrap();
        let rows = embeds.dim(0);
        let row_len = embeds.numel() / rows;
        let got = embeds.to_f32().unwrap();
        let want_pos = padded(d.get("prompt_embeds"), row_len);
        let e = rel_l2(&got[(rows - 1) * row_len..], &want_pos);
        assert!(e < 1e-4, "{name}: prompt embeddings rel L2 {e:.2e}");
        if rows == 2 {
            let e = rel_l2(&got[..row_len], &padded(d.get("negative_prompt_embeds"), row_len));
            assert!(e < 1e-4, "{name}: negative prompt embeddings rel L2 {e:.2e}");
        }

        // Denoising, step by step; the initial noise is torch's stream bit for bit.
        let (lat_bound, fr_bound) = {
            let r = &c["ref_err"];
            (LATENT_FLOOR.max(FACTOR * r["latents"]["rel_l2"].as_f64().unwrap()), FRAME_FLOOR.max(FACTOR * r["frames"]["max_abs"].as_f64().unwrap()))
        };
        let noise = p.noise_dtype.randn(p.seed, d.get("init_latents").1.len());
        assert!(noise.iter().zip(d.want("init_latents")).all(|(a, b)| *a as f64 == *b), "{name}: initial noise");
        let streamed_before = g.streamed_bytes();
        let mut steps = Vec::new();
        let latents = pipe
            .denoise_resumable(&p, &embeds, &mut NoProgress, None, &mut |i, l, _| {
                steps.push((i, l.to_f32()?));
                Ok(())
            })
            .unwrap();
        assert_eq!(steps.len(), p.num_inference_steps, "{name}: steps run");
        assert_eq!(g.streamed_bytes() > streamed_before, k % 2 == 1, "{name}: blocks streamed iff asked");
        for (i, l) in &steps {
            let e = rel_l2(l, d.want(&format!("latents.step{i}")));
            assert!(e <= lat_bound, "{name}: latents after step {i}: rel L2 {e:.2e} > {lat_bound:.1e}");
        }
        let lat_err = rel_l2(&latents.to_f32().unwrap(), d.want("latents"));

        // De-normalised and decoded: frames (F, H, W, 3) in [0, 1].
        let frames = pipe.decode(&latents, &mut NoProgress).unwrap();
        let (fshape, want_fr) = d.get("frames");
        assert_eq!(&[1, frames.frames, frames.height, frames.width, 3][..], &fshape[..], "{name}: frame shape");
        let fr_err = frames.data.iter().zip(want_fr).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
        println!("{name:<28} {lat_err:>10.2e} {lat_bound:>9.1e} {:>11.4} {:>9.3}", fr_err * 255.0, fr_bound * 255.0);
        let ratio = (lat_err / lat_bound).max(fr_err / fr_bound);
        if worst.as_ref().is_none_or(|(r, _)| ratio > *r) {
            worst = Some((ratio, format!("{name}: latents {lat_err:.2e} (bound {lat_bound:.1e}), frames {:.4}/255 (bound {:.3}/255)", fr_err * 255.0, fr_bound * 255.0)));
        }
        assert!(lat_err <= lat_bound, "{name}: final latents rel L2 {lat_err:.2e} > {lat_bound:.1e}");
        assert!(fr_err <= fr_bound, "{name}: frames max |Δ| {:.4}/255 > {:.3}/255", fr_err * 255.0, fr_bound * 255.0);
    }
    println!("closest to its bound: {}", worst.map(|w| w.1).unwrap_or_default());
}

#[test]
fn wan_settings_and_folders_are_checked() {
    let g = gpu();
    let dir = fixtures().join("wan/tiny-wan");
    let pipe = WanPipeline::from_dir(&g, &dir, Placement { matrices: DType::F32 }).unwrap();
    let base = GenerateParams { prompt: "a cat".into(), num_frames: 5, height: 16, width: 16, num_inference_steps: 2, ..GenerateParams::default() };
    let e = pipe.check(&GenerateParams { height: 24, ..base.clone() }).unwrap_err().to_string();
    assert!(e.contains("height/width") && e.contains("16"), "{e}");
    let e = pipe.check(&GenerateParams { num_frames: 6, ..base.clone() }).unwrap_err().to_string();
    assert!(e.contains("num_frames") && e.contains("4k+1"), "{e}");
    // A folder missing a component names it and what belongs there.
    let broken = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wan-no-vae");
    let _ = std::fs::remove_dir_all(&broken);
    std::fs::create_dir_all(&broken).unwrap();
    for sub in ["model_index.json", "tokenizer", "text_encoder", "transformer", "scheduler"] {
        std::os::unix::fs::symlink(dir.join(sub), broken.join(sub)).unwrap();
    }
    let e = WanPipeline::from_dir(&g, &broken, Placement { matrices: DType::F32 }).err().unwrap().to_string();
    assert!(e.contains("vae/") && e.contains("AutoencoderKLWan"), "{e}");
    let e = Family::of_folder(&broken, None).err().unwrap().to_string();
    assert!(e.contains("vae/"), "{e}");
    // Two-expert folders: a boundary without its second expert, and an expert of other channels.
    let experts = fixtures().join("wan/tiny-wan22-a");
    let odd = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wan-experts-broken");
    let _ = std::fs::remove_dir_all(&odd);
    std::fs::create_dir_all(&odd).unwrap();
    for sub in ["tokenizer", "text_encoder", "transformer", "vae", "scheduler"] {
        std::os::unix::fs::symlink(dir.join(sub), odd.join(sub)).unwrap();
    }
    let index = std::fs::read_to_string(experts.join("model_index.json")).unwrap();
    std::fs::write(odd.join("model_index.json"), &index).unwrap();
    let e = WanPipeline::from_dir(&g, &odd, Placement { matrices: DType::F32 }).err().unwrap().to_string();
    assert!(e.contains("transformer_2/") && e.contains("boundary_ratio"), "{e}");
    let mut no_expert: Value = serde_json::from_str(&index).unwrap();
    no_expert["transformer_2"] = serde_json::json!([null, null]);
    std::fs::write(odd.join("model_index.json"), no_expert.to_string()).unwrap();
    let e = WanPipeline::from_dir(&g, &odd, Placement { matrices: DType::F32 }).err().unwrap().to_string();
    assert!(e.contains("model_index.json") && e.contains("boundary_ratio") && e.contains("transformer_2"), "{e}");
    std::fs::write(odd.join("model_index.json"), &index).unwrap();
    std::fs::create_dir_all(odd.join("transformer_2")).unwrap();
    let cfg = std::fs::read_to_string(experts.join("transformer_2/config.json")).unwrap().replace("\"in_channels\": 16", "\"in_channels\": 48");
    std::fs::write(odd.join("transformer_2/config.json"), cfg).unwrap();
    let e = WanPipeline::from_dir(&g, &odd, Placement { matrices: DType::F32 }).err().unwrap().to_string();
    assert!(e.contains("transformer_2/config.json") && e.contains("same latents"), "{e}");
}

/// Plans a generation of `dir`'s pipeline, then runs it from the plan's buffers on a fresh
/// device and checks the run allocated as traced: (plan, device, pipeline) for further checks.
fn plan_then_run(dir: &std::path::Path, p: &GenerateParams, placement: Placement) -> (t2v::pipelines::MemoryPlan, std::sync::Arc<t2v::Gpu>, WanPipeline) {
    use t2v::gpu::AdapterSelector;
    use t2v::pipelines::{plan_wan, wan_folder_configs};
    use t2v::Gpu;
    let sel = AdapterSelector::from_env();
    let planned = plan_wan(&Gpu::planner(&sel).unwrap(), &wan_folder_configs(dir).unwrap(), p, placement).unwrap();
    let gpu = Gpu::new(&sel).unwrap();
    let mut pipe = WanPipeline::from_dir(&gpu, dir, placement).unwrap();
    pipe.use_plan(&planned).unwrap();
    gpu.reset_peak();
    pipe.generate(p, &mut NoProgress).unwrap();
    assert_eq!(gpu.schedule_divergence(), None, "the real run allocated differently from the plan");
    (planned, gpu, pipe)
}

#[test]
fn wan_plan_equals_the_measured_peak() {
    // The plan (three phases: prompt, loop, decode, each with its own buffers; the transformer's
    // weights uploaded for the loop) is what a real run of the tiny pipeline reaches, and a
    // second video on the same pipeline stays within it.
    let dir = fixtures().join("wan/tiny-wan");
    let p = GenerateParams { prompt: "a cat".into(), num_frames: 9, height: 16, width: 48, num_inference_steps: 3, guidance_scale: 5.0, ..GenerateParams::default() };
    for dtype in [DType::F16, DType::F32] {
        let (planned, gpu, pipe) = plan_then_run(&dir, &p, Placement { matrices: dtype });
        assert_eq!(planned.schedule.later.len(), 2, "{}", planned.report());
        let m = gpu.memory();
        assert_eq!(planned.peak, m.peak_allocated, "{dtype:?}: planned {} vs measured", planned.report());
        assert_eq!(planned.peak_live, m.peak_live, "{dtype:?}");
        pipe.generate(&p, &mut NoProgress).unwrap();
        assert_eq!(gpu.schedule_divergence(), None);
        assert_eq!(gpu.memory().peak_allocated, planned.peak, "{dtype:?}: a second run grew the device buffers");
    }
}

/// Wan 2.2 A14B's two experts are planned one on the device at a time: each run of steps is its
/// own phase, a real run reaches exactly the plan, and with experts of one shape the peak is
/// that of the one-transformer folder (the second expert's weights replace the first's).
#[test]
fn two_expert_plan_holds_one_expert_at_a_time() {
    use t2v::gpu::AdapterSelector;
    use t2v::pipelines::{plan_wan, wan_folder_configs};
    use t2v::Gpu;
    let dir = fixtures().join("wan/tiny-wan22-a");
    // 4 UniPC steps at shift 3: t = 999, 900 (transformer), 750, 500 (transformer_2)
    let p = GenerateParams {
        prompt: "a cat".into(),
        num_frames: 5,
        height: 16,
        width: 32,
        num_inference_steps: 4,
        guidance_scale: 4.0,
        guidance_scale_2: Some(3.0),
        ..GenerateParams::default()
    };
    let placement = Placement { matrices: DType::F16 };
    assert_eq!(wan_folder_configs(&dir).unwrap().index.boundary_ratio, Some(0.875));
    let (planned, gpu, _) = plan_then_run(&dir, &p, placement);
    // prompt | transformer's steps | transformer_2's steps | decode
    assert_eq!(planned.schedule.later.len(), 3, "{}", planned.report());
    assert_eq!(planned.peak, gpu.memory().peak_allocated, "planned {}", planned.report());
    let one = GenerateParams { guidance_scale_2: None, ..p.clone() };
    let single = plan_wan(&Gpu::planner(&AdapterSelector::from_env()).unwrap(), &wan_folder_configs(&fixtures().join("wan/tiny-wan")).unwrap(), &one, placement).unwrap();
    assert_eq!(planned.peak, single.peak, "two experts: {}\none: {}", planned.report(), single.report());
    // guidance_scale_2 belongs to two-expert folders only (diffusers raises too)
    let tiny = WanPipeline::from_dir(&gpu, &fixtures().join("wan/tiny-wan"), placement).unwrap();
    let e = tiny.check(&p).unwrap_err().to_string();
    assert!(e.contains("guidance_scale_2") && e.contains("boundary_ratio"), "{e}");
}

/// Scheduler options as a user gives them: config.yaml's `scheduler_config` map and the
/// `--scheduler-config KEY=VALUE` flag, against diffusers' `from_config(config, **options)`
/// (wanopt_32x16_f1_euler_exp_terminal); a misspelt key is refused naming it.
#[test]
fn scheduler_options_from_config_and_flags_match_diffusers() {
    let d = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wan-scheduler-options");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let c = cases().into_iter().find(|c| c["name"] == "wanopt_32x16_f1_euler_exp_terminal").unwrap();
    let model = fixtures().join("wan").join(c["model"].as_str().unwrap());
    let yaml = format!(
        "prompt: \"{}\"\nmodel: {}\nseed: {}\nrandomize_seed: false\nheight: {}\nwidth: {}\nnum_frames: {}\nnum_inference_steps: {}\nguidance_scale: {}\nscheduler: euler\nscheduler_config: {{use_exponential_sigmas: true}}\noutput: out.npy\n",
        c["prompt"].as_str().unwrap(),
        model.display(),
        c["seed"],
        c["height"],
        c["width"],
        c["num_frames"],
        c["num_inference_steps"],
        c["guidance_scale"]
    );
    std::fs::write(d.join("config.yaml"), yaml).unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_t2v")).arg("generate").args(extra).current_dir(&d).output().unwrap();
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    let (ok, log) = run(&["--scheduler-config", "shift_terminal=0.1", "--f32-weights"]);
    assert!(ok, "{log}");
    let b = std::fs::read(d.join("out.npy")).unwrap();
    let n = u16::from_le_bytes([b[8], b[9]]) as usize;
    let got: Vec<f32> = bytemuck::pod_collect_to_vec(&b[10 + n..]);
    let dump = dump_at(&fixtures().join("wan").join(c["file"].as_str().unwrap()), "options");
    let e = got.iter().zip(dump.want("frames")).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
    let bound = FRAME_FLOOR.max(FACTOR * c["ref_err"]["frames"]["max_abs"].as_f64().unwrap());
    assert_eq!(got.len(), dump.want("frames").len());
    assert!(e <= bound, "CLI frames differ from diffusers by {:.4}/255 (bound {:.3}/255)", e * 255.0, bound * 255.0);
    let (ok, log) = run(&["--scheduler-config", "shift_terminl=0.1", "--dry-run"]);
    assert!(!ok && log.contains("scheduler_config.shift_terminl") && log.contains("shift_terminal"), "{log}");
}
