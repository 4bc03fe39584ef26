//! Schedulers against diffusers (tests/fixtures/schedulers.*, made by
//! tools/reference/scheduler_fixtures.py).
//!
//! Timestep lists, sigmas and ᾱ must match exactly: they are host computations that replicate
//! numpy's and torch's arithmetic. Every step's output must match within relative L2 1e-5:
//! the coefficients are the same float32 scalars torch forms, combined in f64 and applied in
//! f32 on the device as one fused a·x + b·y (+ c·z), while torch rounds after each of its
//! elementwise ops, so the two differ by a few f32 ulps (~1e-7). Each chain runs on its own
//! outputs (as a real denoising loop does), so the bound also covers drift over up to 50 steps.

mod common;

use common::{rel_l2, upload};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use t2v::schedulers::{
    self, DpmSolverMultistepScheduler, EulerDiscreteScheduler, Scheduler, SchedulerConfig, SchedulerKind, StepNoise,
};
use t2v::latents::randn::TorchGenerator;
use t2v::latents::NoiseDtype;
use t2v::weights::{SafeTensors, StoredDType};
use t2v::Tensor;

const TOL: f64 = 1e-5;

struct Fixtures {
    tensors: BTreeMap<String, (Vec<usize>, Vec<f64>)>,
    side: Value,
}

fn fixtures() -> Fixtures {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let st = SafeTensors::open(&dir.join("schedulers.safetensors")).expect("tests/fixtures/schedulers.safetensors");
    let mut tensors = BTreeMap::new();
    for (k, info) in &st.tensors {
        let b = st.bytes(info);
        let v: Vec<f64> = match &info.dtype {
            StoredDType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(b).iter().map(|&x| x as f64).collect(),
            StoredDType::Other(d) if d == "I64" => bytemuck::pod_collect_to_vec::<u8, i64>(b).iter().map(|&x| x as f64).collect(),
            d => panic!("schedulers.safetensors: {k} has unexpected dtype {d:?}"),
        };
        tensors.insert(k.clone(), (info.shape.clone(), v));
    }
    let side = serde_json::from_str(&std::fs::read_to_string(dir.join("schedulers.json")).expect("schedulers.json")).unwrap();
    Fixtures { tensors, side }
}

impl Fixtures {
    fn get(&self, k: &str) -> &(Vec<usize>, Vec<f64>) {
        self.tensors.get(k).unwrap_or_else(|| panic!("schedulers.safetensors has no '{k}'"))
    }
    /// Row `i` of a stacked [n, *shape] tensor, uploaded.
    fn row(&self, k: &str, i: usize) -> Tensor {
        let (shape, v) = self.get(k);
        let n: usize = shape[1..].iter().product();
        let host: Vec<f32> = v[i * n..(i + 1) * n].iter().map(|&x| x as f32).collect();
        upload(&shape[1..], &host)
    }
    fn row_want(&self, k: &str, i: usize) -> &[f64] {
        let (shape, v) = self.get(k);
        let n: usize = shape[1..].iter().product();
        &v[i * n..(i + 1) * n]
    }
    fn input(&self, k: &str) -> Tensor {
        let (shape, v) = self.get(k);
        upload(shape, &v.iter().map(|&x| x as f32).collect::<Vec<_>>())
    }
}

/// Writes `config` as a scheduler_config.json, the way the model folder holds it.
fn config_file(name: &str, config: &Value) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("schedulers").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scheduler_config.json");
    std::fs::write(&path, serde_json::to_string_pretty(config).unwrap()).unwrap();
    path
}

fn kind_of(load_as: &Value) -> Option<SchedulerKind> {
    load_as.as_str().map(|c| SchedulerKind::from_class_name(c).unwrap_or_else(|| panic!("unknown class {c}")))
}

fn download(t: &Tensor) -> Vec<f32> {
    t.to_f32().expect("download")
}

#[track_caller]
fn assert_exact(what: &str, got: &[f32], want: &[f64]) {
    let got: Vec<f64> = got.iter().map(|&x| x as f64).collect();
    assert_eq!(got, want, "{what}");
}

#[test]
fn chains_match_diffusers() {
    let fx = fixtures();
    let mut report = Vec::new();
    for case in fx.side["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let n = case["num_inference_steps"].as_u64().unwrap() as usize;
        let kind = kind_of(&case["load_as"]);
        let path = config_file(name, &case["config"]);
        let mut s = schedulers::from_config_file(&path, kind).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.kind().class_name(), case["class"].as_str().unwrap(), "{name}: class");
        s.set_timesteps(n).unwrap();
        assert_exact(&format!("{name}: timesteps"), s.timesteps(), &fx.get(&format!("{name}.timesteps")).1);
        assert_eq!(s.init_noise_sigma() as f64, case["init_noise_sigma"].as_f64().unwrap(), "{name}: init_noise_sigma");

        let euler = s.kind() == SchedulerKind::EulerDiscrete;
        let mut x = fx.input(&format!("{name}.sample"));
        let mut worst = 0.0f64;
        for i in 0..s.timesteps().len() {
            let scaled = s.scale_model_input(&x, i).unwrap();
            if euler {
                let e = rel_l2(&download(&scaled), fx.row_want(&format!("{name}.scaled"), i));
                assert!(e <= TOL, "{name} step {i}: scale_model_input relative L2 {e:.3e}");
                worst = worst.max(e);
            } else {
                assert_eq!(download(&scaled), download(&x), "{name} step {i}: scale_model_input must return its input");
            }
            let mo = fx.row(&format!("{name}.model_output"), i);
            x = s.step(&mo, i, &x).unwrap();
            let e = rel_l2(&download(&x), fx.row_want(&format!("{name}.prev"), i));
            assert!(e <= TOL, "{name} step {i} (t = {}): prev_sample relative L2 {e:.3e} > {TOL:.0e}", s.timesteps()[i]);
            worst = worst.max(e);
        }

        // add_noise on a fresh schedule (video-to-video starts there).
        let k = case["add_noise_step"].as_u64().unwrap() as usize;
        let mut fresh = schedulers::from_config_file(&path, kind).unwrap();
        fresh.set_timesteps(n).unwrap();
        let out = fresh
            .add_noise(&fx.input(&format!("{name}.add_noise.original")), &fx.input(&format!("{name}.add_noise.noise")), k)
            .unwrap();
        let e_noise = rel_l2(&download(&out), &fx.get(&format!("{name}.add_noise.out")).1);
        assert!(e_noise <= TOL, "{name}: add_noise at step {k}: relative L2 {e_noise:.3e}");
        report.push(format!("{name:<30} {n:>3} steps  max step error {worst:.2e}  add_noise {e_noise:.2e}"));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn sigmas_and_alphas_cumprod_are_exact() {
    let fx = fixtures();
    for sched in ["scaled_linear", "linear"] {
        let case = if sched == "scaled_linear" { "ddim_ms_50" } else { "ddim_alpha_one_linear_3" };
        let cfg = case_config(&fx, case);
        assert_exact(&format!("alphas_cumprod {sched}"), &cfg.alphas_cumprod().unwrap(), &fx.get(&format!("alphas_cumprod.{sched}")).1);
    }
    for case in fx.side["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let n = case["num_inference_steps"].as_u64().unwrap() as usize;
        let cfg = case_config(&fx, name);
        let sigmas = match case["class"].as_str().unwrap() {
            "DPMSolverMultistepScheduler" => {
                let mut s = DpmSolverMultistepScheduler::new(&cfg).unwrap();
                s.set_timesteps(n).unwrap();
                s.sigmas().to_vec()
            }
            "EulerDiscreteScheduler" => {
                let mut s = EulerDiscreteScheduler::new(&cfg).unwrap();
                s.set_timesteps(n).unwrap();
                s.sigmas().to_vec()
            }
            _ => continue,
        };
        assert_exact(&format!("{name}: sigmas"), &sigmas, &fx.get(&format!("{name}.sigmas")).1);
    }
}

fn case_config(fx: &Fixtures, name: &str) -> SchedulerConfig {
    let case = fx.side["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
    SchedulerConfig::from_json(&case["config"].to_string()).unwrap()
}

#[test]
fn timestep_spacings_match_diffusers() {
    let fx = fixtures();
    let mut lists = 0;
    for group in fx.side["spacing"].as_array().unwrap() {
        let prefix = group["prefix"].as_str().unwrap();
        let cfg = SchedulerConfig::from_json(&group["config"].to_string()).unwrap();
        let mut s = schedulers::from_config(&cfg, None).unwrap();
        for n in group["steps"].as_array().unwrap() {
            let n = n.as_u64().unwrap() as usize;
            let want = &fx.get(&format!("{prefix}.{n}")).1;
            if s.kind() == SchedulerKind::Ddim && want.iter().any(|&t| t < 0.0) {
                // diffusers' trailing DDIM ends at t = -1 for some step counts and then reads
                // ᾱ[-1] (the noisiest) for its last step; refused here, with the reason.
                let e = s.set_timesteps(n).err().unwrap_or_else(|| panic!("{prefix} n={n}: accepted t = -1")).to_string();
                assert!(e.contains("-1") && e.contains("choose another"), "{e}");
                continue;
            }
            s.set_timesteps(n).unwrap_or_else(|e| panic!("{prefix} n={n}: {e}"));
            assert_exact(&format!("{prefix}.{n}"), s.timesteps(), want);
            lists += 1;
        }
    }
    assert!(lists > 100, "only {lists} timestep lists checked");
}

/// The shipped ms-1.7b config read by each class: DDIM keeps "leading" (981 … 1); DPM-Solver
/// and Euler take only the file's keys, so they get their own "linspace" default (999 …).
#[test]
fn from_config_keeps_only_the_files_keys() {
    let fx = fixtures();
    let path = config_file("ms17b", &fx.side["cases"][0]["config"]);
    let first = |k: Option<SchedulerKind>| {
        let mut s = schedulers::from_config_file(&path, k).unwrap();
        s.set_timesteps(50).unwrap();
        s.timesteps()[0]
    };
    assert_eq!(first(None), 981.0);
    assert_eq!(first(Some(SchedulerKind::Ddim)), 981.0);
    assert_eq!(first(Some(SchedulerKind::DpmSolverMultistep)), 999.0);
    assert_eq!(first(Some(SchedulerKind::EulerDiscrete)), 999.0);
    assert_eq!("dpm++".parse::<SchedulerKind>().unwrap(), SchedulerKind::DpmSolverMultistep);
    assert_eq!("Euler".parse::<SchedulerKind>().unwrap(), SchedulerKind::EulerDiscrete);
    assert_eq!("pndm".parse::<SchedulerKind>().unwrap(), SchedulerKind::Pndm);
    let e = "lms".parse::<SchedulerKind>().unwrap_err();
    assert!(["ddim", "dpm++-karras", "euler-a", "pndm", "unipc"].iter().all(|n| e.contains(n)), "{e}");
}

/// A config value the engine does not implement is an error naming the file and the field.
#[test]
fn unsupported_config_values_name_file_and_field() {
    let fx = fixtures();
    let ms = &fx.side["cases"][0]["config"];
    let with = |k: &str, v: Value| {
        let mut c = ms.clone();
        match v {
            Value::Null => c.as_object_mut().unwrap().remove(k),
            v => c.as_object_mut().unwrap().insert(k.into(), v),
        };
        c
    };
    let cases: Vec<(&str, Value, Option<SchedulerKind>, &str)> = vec![
        ("spacing", with("timestep_spacing", "uniform".into()), None, "timestep_spacing"),
        ("beta", with("beta_schedule", "laplace".into()), None, "beta_schedule"),
        ("trained-betas", with("trained_betas", serde_json::json!([0.001, 0.002])), None, "trained_betas"),
        ("pred", with("prediction_type", "flow_prediction".into()), Some(SchedulerKind::Ddim), "prediction_type"),
        ("order", with("solver_order", 4.into()), Some(SchedulerKind::DpmSolverMultistep), "solver_order"),
        ("unipc-order", with("solver_order", 4.into()), Some(SchedulerKind::UniPcMultistep), "solver_order"),
        // the noise-prediction DPM-Solver: diffusers refuses its default final sigma
        ("dpm-noise-final-zero", with("algorithm_type", "dpmsolver".into()), Some(SchedulerKind::DpmSolverMultistep), "final_sigmas_type"),
        ("dpm-variance", with("variance_type", "learned_range".into()), Some(SchedulerKind::DpmSolverMultistep), "variance_type"),
        ("class", with("_class_name", "LMSDiscreteScheduler".into()), None, "_class_name"),
    ];
    for (tag, cfg, kind, field) in cases {
        let path = config_file(&format!("bad-{tag}"), &cfg);
        let err = schedulers::from_config_file(&path, kind).err().unwrap_or_else(|| panic!("{tag}: accepted")).to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains(field), "{tag}: message '{err}' should name the file and {field}");
    }
    // Keys DDIM does not have are ignored (as diffusers does), whatever their value.
    let path = config_file("ignored-keys", &with("use_karras_sigmas", true.into()));
    assert!(schedulers::from_config_file(&path, None).is_ok());
    // Invalid JSON and a missing file are errors naming the file too.
    let path = config_file("not-json", &Value::Null);
    std::fs::write(&path, "{ \"beta_start\": ").unwrap();
    assert!(schedulers::from_config_file(&path, None).err().unwrap().to_string().contains(&path.display().to_string()));
    let missing = Path::new("/nonexistent/scheduler_config.json");
    assert!(schedulers::from_config_file(missing, None).err().unwrap().to_string().contains("/nonexistent/"));
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let fx = fixtures();
    let path = config_file("misuse", &fx.side["cases"][0]["config"]);
    let x = upload(&[2, 3], &[0.0; 6]);
    for kind in SchedulerKind::ALL {
        let mut s = schedulers::from_config_file(&path, Some(kind)).unwrap();
        assert!(s.step(&x, 0, &x).is_err(), "{kind}: step before set_timesteps");
        assert!(s.set_timesteps(0).is_err() && s.set_timesteps(1001).is_err(), "{kind}: step count");
        s.set_timesteps(3).unwrap();
        // 3 entries, or 4 for PNDM (its schedule repeats one timestep)
        let end = s.timesteps().len();
        assert!(s.step(&x, end, &x).is_err() && s.add_noise(&x, &x, 7).is_err(), "{kind}: index past the end");
        let other = upload(&[3, 2], &[0.0; 6]);
        assert!(s.step(&other, 0, &x).is_err(), "{kind}: shape mismatch");
    }
}

// ---- UniPC and FlowMatchEuler (Wan): tests/fixtures/schedulers.wan.* ------------------------

/// tests/fixtures/schedulers.<stem>.{safetensors,json}.
fn fixtures_named(stem: &str) -> Fixtures {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let st = SafeTensors::open(&dir.join(format!("{stem}.safetensors"))).unwrap_or_else(|e| panic!("{stem}.safetensors: {e}"));
    let mut tensors = BTreeMap::new();
    for (k, info) in &st.tensors {
        let b = st.bytes(info);
        let v: Vec<f64> = match &info.dtype {
            StoredDType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(b).iter().map(|&x| x as f64).collect(),
            StoredDType::Other(d) if d == "I64" => bytemuck::pod_collect_to_vec::<u8, i64>(b).iter().map(|&x| x as f64).collect(),
            d => panic!("{stem}.safetensors: {k} has unexpected dtype {d:?}"),
        };
        tensors.insert(k.clone(), (info.shape.clone(), v));
    }
    let side = serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{stem}.json"))).expect("json")).unwrap();
    Fixtures { tensors, side }
}

fn wan_fixtures() -> Fixtures {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let st = SafeTensors::open(&dir.join("schedulers.wan.safetensors")).expect("tests/fixtures/schedulers.wan.safetensors");
    let mut tensors = BTreeMap::new();
    for (k, info) in &st.tensors {
        let b = st.bytes(info);
        let v: Vec<f64> = match &info.dtype {
            StoredDType::F32 => bytemuck::pod_collect_to_vec::<u8, f32>(b).iter().map(|&x| x as f64).collect(),
            StoredDType::Other(d) if d == "I64" => bytemuck::pod_collect_to_vec::<u8, i64>(b).iter().map(|&x| x as f64).collect(),
            d => panic!("schedulers.wan.safetensors: {k} has unexpected dtype {d:?}"),
        };
        tensors.insert(k.clone(), (info.shape.clone(), v));
    }
    let side = serde_json::from_str(&std::fs::read_to_string(dir.join("schedulers.wan.json")).expect("schedulers.wan.json")).unwrap();
    Fixtures { tensors, side }
}

/// Beta-schedule sigmas √((1−ᾱ)/ᾱ): the engine takes the correctly rounded f32 square root (as
/// the torch build behind schedulers.safetensors did: `sigmas_and_alphas_cumprod_are_exact`),
/// while the torch 2.15 build that generated schedulers.wan.* rounds 190 of the 1000 training
/// sigmas the other way (checked against float64 √). Flow sigmas involve no square root and are
/// compared exactly.
#[track_caller]
fn assert_within_one_ulp(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let w = w as f32;
        assert!(g == w || g.to_bits().abs_diff(w.to_bits()) == 1, "{what}[{i}]: {g} vs {w}");
    }
}

fn wan_case<'a>(fx: &'a Fixtures, name: &str) -> &'a Value {
    fx.side["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no case {name}"))
}

/// Every UniPC and FlowMatchEuler chain, step by step: Wan's UniPC (flow sigmas, shifts 3 and
/// 5, 1–50 steps: order 1 then 2, corrector, the final order-1 step to σ = 0), its variants
/// (bh1, order 1, sigma_min, disable_corrector, shift_terminal, no lower-order final), UniPC on
/// noise-prediction models, FlowMatchEuler (its own file, and `euler` on Wan's file).
/// Timesteps and sigmas exact; every step's output within relative L2 1e-5.
#[test]
fn unipc_and_flow_euler_chains_match_diffusers() {
    let fx = wan_fixtures();
    let mut report = Vec::new();
    for case in fx.side["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let n = case["num_inference_steps"].as_u64().unwrap() as usize;
        let kind = kind_of(&case["load_as"]);
        let path = config_file(name, &case["config"]);
        let mut s = schedulers::from_config_file(&path, kind).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.kind().class_name(), case["class"].as_str().unwrap(), "{name}: class");
        s.set_timesteps(n).unwrap();
        assert_exact(&format!("{name}: timesteps"), s.timesteps(), &fx.get(&format!("{name}.timesteps")).1);
        let sigmas = (s.schedule_sigmas().unwrap(), &fx.get(&format!("{name}.sigmas")).1);
        if SchedulerConfig::from_json(&case["config"].to_string()).unwrap().is_flow() {
            assert_exact(&format!("{name}: sigmas"), sigmas.0, sigmas.1);
        } else {
            assert_within_one_ulp(&format!("{name}: sigmas"), sigmas.0, sigmas.1);
        }
        assert_eq!(s.init_noise_sigma() as f64, case["init_noise_sigma"].as_f64().unwrap(), "{name}: init_noise_sigma");
        assert!(s.resumable(), "{name}");

        let mut x = fx.input(&format!("{name}.sample"));
        let mut worst = 0.0f64;
        for i in 0..s.timesteps().len() {
            assert_eq!(download(&s.scale_model_input(&x, i).unwrap()), download(&x), "{name} step {i}: scale_model_input");
            let mo = fx.row(&format!("{name}.model_output"), i);
            x = s.step(&mo, i, &x).unwrap();
            let e = rel_l2(&download(&x), fx.row_want(&format!("{name}.prev"), i));
            assert!(e <= TOL, "{name} step {i} (t = {}): prev_sample relative L2 {e:.3e} > {TOL:.0e}", s.timesteps()[i]);
            worst = worst.max(e);
        }
        let k = case["add_noise_step"].as_u64().unwrap() as usize;
        let mut fresh = schedulers::from_config_file(&path, kind).unwrap();
        fresh.set_timesteps(n).unwrap();
        let out = fresh
            .add_noise(&fx.input(&format!("{name}.add_noise.original")), &fx.input(&format!("{name}.add_noise.noise")), k)
            .unwrap();
        let e_noise = rel_l2(&download(&out), &fx.get(&format!("{name}.add_noise.out")).1);
        assert!(e_noise <= TOL, "{name}: add_noise at step {k}: relative L2 {e_noise:.3e}");
        report.push(format!("{name:<40} {n:>3} steps  max step error {worst:.2e}  add_noise {e_noise:.2e}"));
    }
    assert!(report.len() >= 30, "only {} chains", report.len());
    println!("{}", report.join("\n"));
}

/// Flow-matching schedules (UniPC with use_flow_sigmas, FlowMatchEuler; shifts 1–16,
/// shift_terminal, sigma_min, invert_sigmas) for 1–100 steps: timesteps (UniPC's int64
/// truncations, FlowMatchEuler's float32) and sigmas bit for bit. One step with shift_terminal
/// is refused (diffusers divides 0 by 0 there).
#[test]
fn flow_schedules_are_exact() {
    let fx = wan_fixtures();
    let mut lists = 0;
    for group in fx.side["flow"].as_array().unwrap() {
        let prefix = group["prefix"].as_str().unwrap();
        let path = config_file(&format!("flow-{prefix}"), &group["config"]);
        let mut s = schedulers::from_config_file(&path, kind_of(&group["load_as"])).unwrap_or_else(|e| panic!("{prefix}: {e}"));
        assert_eq!(s.kind().class_name(), group["class"].as_str().unwrap(), "{prefix}: class");
        for n in group["steps"].as_array().unwrap() {
            let n = n.as_u64().unwrap() as usize;
            s.set_timesteps(n).unwrap_or_else(|e| panic!("{prefix} n={n}: {e}"));
            assert_exact(&format!("{prefix}.{n} timesteps"), s.timesteps(), &fx.get(&format!("flow.{prefix}.{n}.timesteps")).1);
            assert_exact(&format!("{prefix}.{n} sigmas"), s.schedule_sigmas().unwrap(), &fx.get(&format!("flow.{prefix}.{n}.sigmas")).1);
            lists += 1;
        }
        if group["config"]["shift_terminal"].is_number() {
            let e = s.set_timesteps(1).unwrap_err().to_string();
            assert!(e.contains("shift_terminal"), "{prefix}: {e}");
        }
    }
    assert!(lists > 150, "only {lists} schedules checked");
}

/// WAN.md §2.2's published N = 50 lists, independently of the fixtures.
#[test]
fn wan_unipc_timesteps_are_the_published_ones() {
    let fx = wan_fixtures();
    let cfg = SchedulerConfig::from_json(&wan_case(&fx, "wan_unipc_s3_50")["config"].to_string()).unwrap();
    let s3 = "999 993 986 979 971 964 956 948 940 931 923 914 904 895 885 875 864 853 842 830 818 805 792 779 765 750 735 719 702 685 667 648 628 607 586 563 539 514 487 459 429 398 365 329 292 251 208 162 113 60";
    let s5 = "999 995 991 987 982 978 973 968 963 957 952 946 940 934 927 921 914 906 899 890 882 873 864 854 844 833 822 810 797 783 769 754 738 720 702 682 661 638 613 586 556 524 489 450 407 359 305 244 175 96";
    for (cfg, want) in [(cfg.clone(), s3), (cfg.with_flow_shift(5.0).unwrap(), s5)] {
        let mut s = schedulers::from_config(&cfg, None).unwrap();
        s.set_timesteps(50).unwrap();
        let got: Vec<String> = s.timesteps().iter().map(|t| format!("{t}")).collect();
        assert_eq!(got.join(" "), want);
        let sig = s.schedule_sigmas().unwrap();
        assert_eq!(sig[50], 0.0);
        if want == s3 {
            // the float32 values nearest the published decimals
            let published = [(0, 0.999_998_987), (1, 0.993_250_072), (2, 0.986_315_429), (48, 0.113_575_868), (49, 0.060_405_388_5)];
            for (i, v) in published {
                assert_eq!(sig[i], v as f32, "sigma[{i}]");
            }
        }
    }
}

/// The user-facing names and the flow-model resolution: `euler` on Wan's UniPC file is
/// flow-matching Euler with the file's shift; `unipc` on a FlowMatchEuler file runs on flow
/// sigmas; noise-prediction schedulers are refused on flow models (DPM-Solver++ runs flow sigmas); `with_flow_shift` overrides
/// the shift (and is refused for a noise-prediction model).
#[test]
fn flow_models_resolve_euler_and_unipc() {
    let fx = wan_fixtures();
    assert_eq!("unipc".parse::<SchedulerKind>().unwrap(), SchedulerKind::UniPcMultistep);
    assert_eq!("UniPCMultistepScheduler".parse::<SchedulerKind>().unwrap(), SchedulerKind::UniPcMultistep);
    assert_eq!("flow-euler".parse::<SchedulerKind>().unwrap(), SchedulerKind::FlowMatchEuler);
    assert_eq!("FlowMatchEulerDiscreteScheduler".parse::<SchedulerKind>().unwrap(), SchedulerKind::FlowMatchEuler);
    assert_eq!(SchedulerKind::UniPcMultistep.name(), "unipc");
    assert_eq!(SchedulerKind::FlowMatchEuler.name(), "flow-euler");

    let wan = SchedulerConfig::from_json(&wan_case(&fx, "wan_euler_s3_6")["config"].to_string()).unwrap();
    assert!(wan.is_flow());
    // `--scheduler euler` = FlowMatchEuler(shift = flow_shift): the same schedule as the case
    // generated with FlowMatchEulerDiscreteScheduler.from_config(config, shift=flow_shift).
    for kind in [SchedulerKind::EulerDiscrete, SchedulerKind::FlowMatchEuler] {
        let mut s = schedulers::from_config(&wan, Some(kind)).unwrap();
        assert_eq!(s.kind(), SchedulerKind::FlowMatchEuler);
        s.set_timesteps(6).unwrap();
        assert_exact("euler on Wan", s.timesteps(), &fx.get("wan_euler_s3_6.timesteps").1);
    }
    // --flow-shift 5 on Wan's file = the shift-5 lists, for UniPC and for euler.
    let wan5 = wan.clone().with_flow_shift(5.0).unwrap();
    let mut u = schedulers::from_config(&wan5, None).unwrap();
    u.set_timesteps(6).unwrap();
    assert_exact("unipc --flow-shift 5", u.timesteps(), &fx.get("wan_unipc_s5_6.timesteps").1);
    let mut e = schedulers::from_config(&wan5, Some(SchedulerKind::EulerDiscrete)).unwrap();
    e.set_timesteps(50).unwrap();
    assert_exact("euler --flow-shift 5", e.timesteps(), &fx.get("wan_euler_s5_50.timesteps").1);
    // … and on a FlowMatchEuler file.
    let fme = SchedulerConfig::from_json(&wan_case(&fx, "fme_s7_6")["config"].to_string()).unwrap();
    assert!(fme.is_flow());
    let mut f = schedulers::from_config(&fme.clone().with_flow_shift(3.0).unwrap(), None).unwrap();
    f.set_timesteps(6).unwrap();
    assert_exact("flow-euler --flow-shift 3", f.timesteps(), &fx.get("fme_s3_6.timesteps").1);
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(wan.clone().with_flow_shift(bad).unwrap_err().to_string().contains("flow_shift"), "{bad}");
    }
    // Not a flow model: no flow shift, and euler stays EulerDiscrete.
    let ms = SchedulerConfig::from_json(&wan_case(&fx, "unipc_ms_6")["config"].to_string()).unwrap();
    assert!(!ms.is_flow());
    assert!(ms.clone().with_flow_shift(3.0).unwrap_err().to_string().contains("flow_shift"));
    assert_eq!(schedulers::from_config(&ms, Some(SchedulerKind::EulerDiscrete)).unwrap().kind(), SchedulerKind::EulerDiscrete);
    // Noise-prediction schedulers on a flow model: refused, naming the file's key.
    for (cfg, kind, key) in [
        (&wan, SchedulerKind::Ddim, "prediction_type"),
        (&wan, SchedulerKind::EulerAncestral, "prediction_type"),
        (&wan, SchedulerKind::Pndm, "prediction_type"),
        (&fme, SchedulerKind::Ddim, "_class_name"),
    ] {
        let e = schedulers::from_config(cfg, Some(kind)).err().unwrap_or_else(|| panic!("{kind} accepted a flow model")).to_string();
        assert!(e.contains(key) && e.contains("flow-matching"), "{kind}: {e}");
    }
    // DPM-Solver++ runs on flow sigmas (the chains are in schedulers.options); its Karras and
    // SDE variants are refused there with the key and the reason.
    for cfg in [&wan, &fme] {
        assert_eq!(schedulers::from_config(cfg, Some(SchedulerKind::DpmSolverMultistep)).unwrap().kind(), SchedulerKind::DpmSolverMultistep);
    }
    for (kind, key, why) in [
        (SchedulerKind::DpmSolverKarras, "use_karras_sigmas", "beta schedule"),
        (SchedulerKind::DpmSolverSde, "algorithm_type", "without its generator"),
        (SchedulerKind::DpmSolverSdeKarras, "use_karras_sigmas", "beta schedule"),
    ] {
        let e = schedulers::from_config(&wan, Some(kind)).err().unwrap_or_else(|| panic!("{kind} accepted on flow sigmas")).to_string();
        assert!(e.contains(key) && e.contains(why), "{kind}: {e}");
    }
}

/// UniPC's other timestep spacings (beta schedules), against diffusers.
#[test]
fn unipc_timestep_spacings_match_diffusers() {
    let fx = wan_fixtures();
    let mut lists = 0;
    for group in fx.side["spacing"].as_array().unwrap() {
        let prefix = group["prefix"].as_str().unwrap();
        let cfg = SchedulerConfig::from_json(&group["config"].to_string()).unwrap();
        let mut s = schedulers::from_config(&cfg, None).unwrap();
        assert_eq!(s.kind(), SchedulerKind::UniPcMultistep);
        for n in group["steps"].as_array().unwrap() {
            let n = n.as_u64().unwrap() as usize;
            s.set_timesteps(n).unwrap_or_else(|e| panic!("{prefix} n={n}: {e}"));
            assert_exact(&format!("{prefix}.{n}"), s.timesteps(), &fx.get(&format!("{prefix}.{n}")).1);
            lists += 1;
        }
    }
    assert_eq!(lists, 45);
}

/// A loop stopped after step k, checkpointed to a file (t2v serve's path: capture, write,
/// read, restore into a fresh scheduler) and continued, computes exactly the uninterrupted
/// loop's latents, bit for bit, for every k, on UniPC (its two data predictions, last sample
/// and order counters), DPM-Solver and FlowMatchEuler.
#[test]
fn resumed_loops_equal_uninterrupted_ones_bit_for_bit() {
    use t2v::pipelines::Checkpoint;
    let fx = wan_fixtures();
    let legacy = fixtures();
    let gpu = common::gpu();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("schedulers-resume");
    std::fs::create_dir_all(&dir).unwrap();
    let opts = fixtures_named("schedulers.options");
    let cases: [(&Fixtures, &str); 10] = [
        (&fx, "wan_unipc_s3_6"),
        (&fx, "wan_unipc_no_corrector_7"),
        (&fx, "wan_unipc_order1_5"),
        (&fx, "unipc_ms_6"),
        (&fx, "fme_s3_6"),
        (&legacy, "dpm_ms_14"),
        // two steps of history (third order), and DPM-Solver++ on flow sigmas
        (&opts, "dpm_order3_10"),
        (&opts, "dpm_wan_order3_8"),
        (&opts, "unipc_order3_10"),
        (&opts, "unipc_wan_order3_no_corrector_9"),
    ];
    for (fx, name) in cases {
        let case = fx.side["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
        let n = case["num_inference_steps"].as_u64().unwrap() as usize;
        let kind = kind_of(&case["load_as"]);
        let path = config_file(&format!("resume-{name}"), &case["config"]);
        let fresh = || {
            let mut s = schedulers::from_config_file(&path, kind).unwrap();
            s.set_timesteps(n).unwrap();
            s
        };
        let mut s = fresh();
        let n = s.timesteps().len();
        let mut x = fx.input(&format!("{name}.sample"));
        let mut straight = Vec::new();
        for i in 0..n {
            x = s.step(&fx.row(&format!("{name}.model_output"), i), i, &x).unwrap();
            straight.push(download(&x));
        }
        for k in 0..n {
            // run steps 0..=k, checkpoint, drop everything
            let mut s = fresh();
            let mut x = fx.input(&format!("{name}.sample"));
            for i in 0..=k {
                x = s.step(&fx.row(&format!("{name}.model_output"), i), i, &x).unwrap();
            }
            let file = dir.join(format!("{name}-{k}.ckpt"));
            Checkpoint::capture(k, n, &x, s.as_ref()).unwrap().write(&file).unwrap();
            drop((s, x));
            let c = Checkpoint::read(&file).unwrap();
            assert_eq!(c.next_step, k + 1);
            let mut s = fresh();
            let shape = fx.get(&format!("{name}.sample")).0.clone();
            let mut x = c.restore(&gpu, &shape, n, s.as_mut()).unwrap();
            for (i, want) in straight.iter().enumerate().skip(k + 1) {
                x = s.step(&fx.row(&format!("{name}.model_output"), i), i, &x).unwrap();
                assert_eq!(&download(&x), want, "{name}: resumed after step {k}, step {i} differs");
            }
            assert_eq!(download(&x), straight[n - 1], "{name}: resumed after step {k}");
        }
    }
}

/// Config values UniPC and FlowMatchEuler do not implement, or for which diffusers' result is
/// NaN, are errors naming the file and the key.
#[test]
fn unipc_and_flow_euler_refusals_name_file_and_key() {
    let fx = wan_fixtures();
    let wan = &wan_case(&fx, "wan_unipc_s3_6")["config"];
    let fme = &wan_case(&fx, "fme_s3_6")["config"];
    let with = |base: &Value, k: &str, v: Value| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().insert(k.into(), v);
        c
    };
    let cases: Vec<(&str, Value, Option<SchedulerKind>, &str)> = vec![
        ("u-exponential", with(wan, "use_exponential_sigmas", true.into()), None, "use_exponential_sigmas"),
        ("u-exp", with(wan, "use_exponential_sigmas", true.into()), None, "use_exponential_sigmas"),
        ("u-beta", with(wan, "use_beta_sigmas", true.into()), None, "use_beta_sigmas"),
        ("u-dyn", with(wan, "use_dynamic_shifting", true.into()), None, "use_dynamic_shifting"),
        ("u-solver-p", with(wan, "solver_p", serde_json::json!({"x": 1})), None, "solver_p"),
        ("u-order4", with(wan, "solver_order", 4.into()), None, "solver_order"),
        ("u-solver", with(wan, "solver_type", "bh3".into()), None, "solver_type"),
        ("u-bh1-zero", with(wan, "solver_type", "bh1".into()), None, "solver_type"),
        ("u-nolof-zero", with(wan, "lower_order_final", false.into()), None, "lower_order_final"),
        ("u-x0-off-flow", with(wan, "predict_x0", false.into()), None, "prediction_type"),
        ("u-shift", with(wan, "flow_shift", 0.0.into()), None, "flow_shift"),
        ("u-terminal", with(wan, "shift_terminal", 1.5.into()), None, "shift_terminal"),
        ("u-pred", with(wan, "prediction_type", "x0".into()), None, "prediction_type"),
        ("u-spacing", with(wan, "timestep_spacing", "uniform".into()), None, "timestep_spacing"),
        ("f-dyn", with(fme, "use_dynamic_shifting", true.into()), None, "use_dynamic_shifting"),
        ("f-stoch", with(fme, "stochastic_sampling", true.into()), None, "stochastic_sampling"),
        ("f-two", with(&with(fme, "use_karras_sigmas", true.into()), "use_exponential_sigmas", true.into()), None, "use_karras_sigmas"),
        ("f-tst", with(fme, "time_shift_type", "cubic".into()), None, "time_shift_type"),
        ("f-shift", with(fme, "shift", (-3.0).into()), None, "shift"),
        ("f-terminal", with(fme, "shift_terminal", 1.0.into()), None, "shift_terminal"),
        ("f-as-unipc-dyn", with(fme, "use_dynamic_shifting", true.into()), Some(SchedulerKind::UniPcMultistep), "use_dynamic_shifting"),
    ];
    for (tag, cfg, kind, field) in cases {
        let path = config_file(&format!("bad-{tag}"), &cfg);
        let err = schedulers::from_config_file(&path, kind).err().unwrap_or_else(|| panic!("{tag}: accepted")).to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains(field), "{tag}: message '{err}' should name the file and {field}");
    }
    // predict_x0 off runs on a beta schedule with sigma_min, not with a final sigma of zero.
    let own = &wan_case(&fx, "unipc_noise_state_sigma_min_6")["config"];
    let path = config_file("bad-x0-off-zero", &with(own, "final_sigmas_type", "zero".into()));
    assert!(schedulers::from_config_file(&path, None).err().unwrap().to_string().contains("predict_x0"));
    // A restored state of another shape of history is refused, not misused.
    let path = config_file("restore-wrong", wan);
    let mut s = schedulers::from_config_file(&path, None).unwrap();
    s.set_timesteps(6).unwrap();
    let mut st = schedulers::SchedulerState::new(2);
    st.tensors.push(("previous_x0".into(), upload(&[2], &[0.0, 0.0])));
    assert!(s.restore_state(st).is_err());
    let mut st = schedulers::SchedulerState::new(2);
    st.scalars.push(("lower_order_nums".into(), 2));
    st.scalars.push(("this_order".into(), 2));
    assert!(s.restore_state(st).unwrap_err().to_string().contains("lacks"));
}

// ---- Issue 21's options: tests/fixtures/schedulers.options.* ---------------------------------
//
// DDIM clip_sample / clip_sample_range / thresholding, rescale_betas_zero_snr (DDIM, DPM-Solver,
// Euler, Euler ancestral, UniPC), Karras and exponential sigmas (DPM-Solver, Euler), the
// sde-dpmsolver++ and Euler-ancestral chains with their noise from the torch generator stream,
// and the user names dpm++-karras, dpm++-sde and euler-a.

/// The scheduler a case asks for: its t2v name (what `--scheduler` parses) where it has one,
/// else its load_as class, else the file's own class.
fn option_kind(case: &Value) -> Option<SchedulerKind> {
    match case["scheduler"].as_str() {
        Some(name) => Some(name.parse().unwrap_or_else(|e| panic!("{e}"))),
        None => kind_of(&case["load_as"]),
    }
}

/// `rescale_zero_terminal_snr` takes √ᾱ in float32 and then divides neighbouring ᾱ, which
/// amplifies a one-ulp difference of a square root to tens of ulps. The engine rounds √
/// correctly; the torch 2.15 build that generated schedulers.options.* misrounds 182 of the 1000
/// (checked: with numpy's correctly rounded sqrt in the same op chain the schedule differs from
/// torch's by up to 44 ulps, 2.6e-6 relative). So zero-SNR schedules are compared elementwise
/// within 1e-5 relative instead of bit for bit; their chains keep the usual bound.
const ZERO_SNR_TOL: f64 = 1e-5;

#[track_caller]
fn assert_within_ulps(what: &str, got: &[f32], want: &[f64], ulps: u32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let w = w as f32;
        assert!(g == w || g.to_bits().abs_diff(w.to_bits()) <= ulps, "{what}[{i}]: {g} vs {w}");
    }
}

#[track_caller]
fn assert_close_each(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g as f64, w);
        assert!(g == w || (g - w).abs() <= tol * w.abs().max(1e-30), "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn option_chains_match_diffusers() {
    let fx = fixtures_named("schedulers.options");
    let mut report = Vec::new();
    for case in fx.side["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let n = case["num_inference_steps"].as_u64().unwrap() as usize;
        let kind = option_kind(case);
        // Overrides without a t2v name (`from_config(config, **overrides)`) are the same file
        // with those keys set.
        let mut config = case["config"].clone();
        if case["scheduler"].is_null() {
            for (k, v) in case["overrides"].as_object().into_iter().flatten() {
                config[k] = v.clone();
            }
        }
        let path = config_file(name, &config);
        let mut s = schedulers::from_config_file(&path, kind).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.kind().class_name(), case["class"].as_str().unwrap(), "{name}: class");
        if let Some(k) = kind {
            assert_eq!(s.kind(), k, "{name}: kind");
        }
        s.set_timesteps(n).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want_t = &fx.get(&format!("{name}.timesteps")).1;
        let fractional = case["class"] == "EulerDiscreteScheduler"
            && ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"].iter().any(|k| case["config"][*k] == true);
        if fractional {
            // Euler keeps _sigma_to_t's fractional timesteps, interpolated in float32 log-sigmas
            // (numpy's log of torch's sigmas, each a few ulps from the engine's): equal to 1e-6.
            assert_close_each(&format!("{name}: timesteps"), s.timesteps(), want_t, 1e-6);
        } else {
            assert_exact(&format!("{name}: timesteps"), s.timesteps(), want_t);
        }
        if let Some((_, want)) = fx.tensors.get(&format!("{name}.sigmas")) {
            let got = s.schedule_sigmas().expect("sigmas");
            if case["config"]["rescale_betas_zero_snr"] == true {
                assert_close_each(&format!("{name}: sigmas"), got, want, ZERO_SNR_TOL);
            } else {
                // The torch 2.15 build behind schedulers.options.* misrounds some float32
                // training sigmas (see assert_within_one_ulp), σ_min among them, and Karras and
                // exponential schedules inherit that ulp from σ_min; all else is exact.
                assert_within_ulps(&format!("{name}: sigmas"), got, want, 2);
            }
        }
        let sigma0 = case["init_noise_sigma"].as_f64().unwrap();
        assert_close_each(&format!("{name}: init_noise_sigma"), &[s.init_noise_sigma()], &[sigma0], if case["config"]["rescale_betas_zero_snr"] == true { ZERO_SNR_TOL } else { 0.0 });

        let x0 = fx.input(&format!("{name}.sample"));
        let stochastic = case["noise_seed"].as_u64();
        assert_eq!(s.is_stochastic(), stochastic.is_some(), "{name}: is_stochastic");
        if let Some(seed) = stochastic {
            // The pipeline's order: the initial latents come first from the one generator, then
            // every step draws from where they left it.
            let mut gen = TorchGenerator::new(seed);
            let start: Vec<f32> = gen.randn(x0.numel()).iter().map(|&z| z * sigma0 as f32).collect();
            assert_exact(&format!("{name}: the initial sample is the stream's first draw"), &start, &fx.get(&format!("{name}.sample")).1);
            let probe = upload(x0.shape(), &vec![0.0; x0.numel()]);
            assert!(s.step(&probe, 0, &probe).is_err(), "{name}: a stochastic step without a generator must be refused");
            s.set_generator(StepNoise::new(gen, NoiseDtype::Float32));
        }
        let scaled_key = format!("{name}.scaled");
        let mut x = x0;
        let mut worst = 0.0f64;
        for i in 0..s.timesteps().len() {
            let scaled = s.scale_model_input(&x, i).unwrap();
            if fx.tensors.contains_key(&scaled_key) {
                let e = rel_l2(&download(&scaled), fx.row_want(&scaled_key, i));
                assert!(e <= TOL, "{name} step {i}: scale_model_input relative L2 {e:.3e}");
                worst = worst.max(e);
            }
            let mo = fx.row(&format!("{name}.model_output"), i);
            x = s.step(&mo, i, &x).unwrap();
            let e = rel_l2(&download(&x), fx.row_want(&format!("{name}.prev"), i));
            assert!(e <= TOL, "{name} step {i} (t = {}): prev_sample relative L2 {e:.3e} > {TOL:.0e}", s.timesteps()[i]);
            worst = worst.max(e);
        }
        let k = case["add_noise_step"].as_u64().unwrap() as usize;
        let mut fresh = schedulers::from_config_file(&path, kind).unwrap();
        fresh.set_timesteps(n).unwrap();
        let out = fresh
            .add_noise(&fx.input(&format!("{name}.add_noise.original")), &fx.input(&format!("{name}.add_noise.noise")), k)
            .unwrap();
        let e_noise = rel_l2(&download(&out), &fx.get(&format!("{name}.add_noise.out")).1);
        assert!(e_noise <= TOL, "{name}: add_noise at step {k}: relative L2 {e_noise:.3e}");
        report.push(format!("{name:<36} {n:>3} steps  max step error {worst:.2e}  add_noise {e_noise:.2e}"));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn option_timestep_spacings_and_zero_snr_schedules_match_diffusers() {
    let fx = fixtures_named("schedulers.options");
    for group in fx.side["spacing"].as_array().unwrap() {
        let prefix = group["prefix"].as_str().unwrap();
        let cfg = SchedulerConfig::from_json(&group["config"].to_string()).unwrap();
        let mut s = schedulers::from_config(&cfg, None).unwrap();
        for n in group["steps"].as_array().unwrap() {
            let n = n.as_u64().unwrap() as usize;
            let want = &fx.get(&format!("{prefix}.{n}")).1;
            if s.kind() == SchedulerKind::Pndm && want.iter().any(|&t| t < 0.0) {
                assert!(s.set_timesteps(n).is_err(), "{prefix} n={n}: accepted a negative timestep");
                continue;
            }
            s.set_timesteps(n).unwrap_or_else(|e| panic!("{prefix} n={n}: {e}"));
            assert_exact(&format!("{prefix}.{n}"), s.timesteps(), want);
        }
    }
    let zero_snr = |cls: &str| {
        let c = serde_json::json!({"_class_name": cls, "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                                   "num_train_timesteps": 1000, "rescale_betas_zero_snr": true});
        SchedulerConfig::from_json(&c.to_string()).unwrap()
    };
    // DDIM keeps ᾱ_T = 0; the sigma classes replace it by 2^-24.
    let ddim = zero_snr("DDIMScheduler").alphas_cumprod().unwrap();
    assert_eq!(ddim[999], 0.0);
    assert_close_each("alphas_cumprod zero_snr DDIM", &ddim, &fx.get("alphas_cumprod.zero_snr.DDIMScheduler").1, ZERO_SNR_TOL);
    let want = &fx.get("alphas_cumprod.zero_snr.DPMSolverMultistepScheduler").1;
    assert_eq!(want[999], 2f64.powi(-24));
}

#[test]
fn option_names_and_refusals() {
    for (name, kind) in [
        ("dpm++-karras", SchedulerKind::DpmSolverKarras),
        ("DPM++ 2M Karras", SchedulerKind::DpmSolverKarras),
        ("dpm++-sde", SchedulerKind::DpmSolverSde),
        ("dpm++-sde-karras", SchedulerKind::DpmSolverSdeKarras),
        ("euler-a", SchedulerKind::EulerAncestral),
        ("EulerAncestralDiscreteScheduler", SchedulerKind::EulerAncestral),
    ] {
        assert_eq!(name.parse::<SchedulerKind>().unwrap(), kind, "{name}");
        assert_eq!(kind.name().parse::<SchedulerKind>().unwrap(), kind, "{name}: name() parses back");
    }
    // The plain class comes first for a file's _class_name.
    assert_eq!(SchedulerKind::from_class_name("DPMSolverMultistepScheduler"), Some(SchedulerKind::DpmSolverMultistep));
    let base = serde_json::json!({"_class_name": "DPMSolverMultistepScheduler", "beta_schedule": "scaled_linear",
                                  "beta_start": 0.00085, "beta_end": 0.012});
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    for (case, cfg, kind, key) in [
        ("two-schedules", with("use_exponential_sigmas", true.into()), Some(SchedulerKind::DpmSolverKarras), "use_karras_sigmas"),
        // the noise-prediction DPM-Solver needs final_sigmas_type sigma_min (diffusers raises)
        ("dpmsolver", with("algorithm_type", "dpmsolver".into()), None, "final_sigmas_type"),
        ("sde-dpmsolver", with("algorithm_type", "sde-dpmsolver".into()), None, "final_sigmas_type"),
        ("ddim-ratio", serde_json::json!({"_class_name": "DDIMScheduler", "thresholding": true, "dynamic_thresholding_ratio": 1.5}), None, "dynamic_thresholding_ratio"),
        ("ddim-max", serde_json::json!({"_class_name": "DDIMScheduler", "thresholding": true, "sample_max_value": 0.5}), None, "sample_max_value"),
        ("ddim-range", serde_json::json!({"_class_name": "DDIMScheduler", "clip_sample_range": -1.0}), None, "clip_sample_range"),
        ("euler-a-sample", serde_json::json!({"_class_name": "EulerAncestralDiscreteScheduler", "prediction_type": "sample"}), None, "prediction_type"),
    ] {
        let path = config_file(&format!("refuse-{case}"), &cfg);
        let e = schedulers::from_config_file(&path, kind).err().unwrap_or_else(|| panic!("{case}: accepted")).to_string();
        assert!(e.contains(key) && e.contains(&path.display().to_string()), "{case}: {e}");
    }
}
