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
    self, DpmSolverMultistepScheduler, EulerDiscreteScheduler, Scheduler, SchedulerConfig, SchedulerKind,
};
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
    assert!("lms".parse::<SchedulerKind>().unwrap_err().contains("ddim, dpm++, euler, pndm"));
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
        // DDIM's own default is clip_sample = true: a file without the key must not be run unclipped.
        ("no-clip-key", with("clip_sample", Value::Null), None, "clip_sample"),
        ("spacing", with("timestep_spacing", "uniform".into()), None, "timestep_spacing"),
        ("beta", with("beta_schedule", "squaredcos_cap_v2".into()), None, "beta_schedule"),
        ("pred", with("prediction_type", "flow_prediction".into()), Some(SchedulerKind::DpmSolverMultistep), "prediction_type"),
        ("order", with("solver_order", 3.into()), Some(SchedulerKind::DpmSolverMultistep), "solver_order"),
        ("karras", with("use_karras_sigmas", true.into()), Some(SchedulerKind::EulerDiscrete), "use_karras_sigmas"),
        ("zsnr", with("rescale_betas_zero_snr", true.into()), None, "rescale_betas_zero_snr"),
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
