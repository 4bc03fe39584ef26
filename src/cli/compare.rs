//! `t2v compare`: models × prompts × seeds, each video generated, scored by CLIP and stored
//! under a key of everything that determines it (t2v::eval::store), then a report
//! (t2v::eval::report). Reruns do only what is missing; `--shard I/N` runs a disjoint slice,
//! so many machines can share one output folder; `--report` rebuilds the report from
//! whatever results exist.

use super::settings::Settings;
use super::setup::Model;
use clap::Args;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use t2v::eval::prompts::{self, PromptSpec};
use t2v::eval::{report, store, Scorer};
use t2v::gpu::AdapterSelector;
use t2v::pipelines::{Defaults, GenerateParams, MemoryPlan, NoProgress, VideoPipeline};
use t2v::weights::Placement;
use t2v::{DType, Error, Gpu};

/// The prompt suite shipped with t2v (configs/prompt-suite.yaml), the default `--prompts`.
const SUITE: &str = include_str!("../../configs/prompt-suite.yaml");

#[derive(Args, Debug, Default)]
pub struct CompareArgs {
    /// YAML generation settings (as `t2v generate`); the flags below override its keys.
    #[arg(long, default_value = "config.yaml")]
    pub config: PathBuf,
    /// Models to compare (comma-separated or repeated): names or folders, as `generate --model`.
    /// Default: the config's `model`.
    #[arg(long = "models", alias = "model", value_delimiter = ',')]
    pub models: Vec<String>,
    /// Prompt file: .txt (one per line), .yaml or .csv (per-prompt overrides). Default: the
    /// suite shipped with t2v (configs/prompt-suite.yaml).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Seeds (comma-separated). Default: the config's `seed`.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Output folder: videos/, results/, report.html, results.json, results.csv.
    #[arg(long, short, default_value = "compare")]
    pub out: PathBuf,
    /// The CLIP scorer: a hub repo id or a local folder (openai/clip-vit-large-patch14 for ViT-L/14),
    /// or tiny-random (a random miniature t2v builds itself: offline runs, meaningless scores).
    #[arg(long, default_value = t2v::models::clip::DEFAULT_MODEL)]
    pub clip_model: String,
    #[command(flatten)]
    pub scoring: super::score::MetricArgs,
    /// Run slice I of N (0-based), e.g. 3/8; or just N, with I from JOB_COMPLETION_INDEX
    /// (Kubernetes Indexed Jobs) or SLURM_ARRAY_TASK_ID. Reports are left to `--report`.
    #[arg(long)]
    pub shard: Option<String>,
    /// Only build report.html / results.json / results.csv from the results in --out.
    #[arg(long)]
    pub report: bool,
    /// At most this many prompts of the file (the first ones): a quick look at a big suite.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long)]
    pub negative_prompt: Option<String>,
    #[arg(long)]
    pub num_frames: Option<usize>,
    #[arg(long)]
    pub num_inference_steps: Option<usize>,
    #[arg(long)]
    pub height: Option<usize>,
    #[arg(long)]
    pub width: Option<usize>,
    #[arg(long)]
    pub guidance_scale: Option<f32>,
    /// ddim, dpm++ or euler (default: each model's own).
    #[arg(long)]
    pub scheduler: Option<String>,
    #[arg(long)]
    pub fps: Option<u32>,
    /// Keep weights in f32 on the device (default: f16).
    #[arg(long)]
    pub f32_weights: bool,
}

impl CompareArgs {
    fn merge(&self, mut s: Settings) -> Settings {
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { s.$f = v.clone(); } )* };
        }
        take!(negative_prompt);
        macro_rules! some {
            ($($f:ident),*) => { $( if self.$f.is_some() { s.$f = self.$f; } )* };
        }
        some!(num_frames, num_inference_steps, guidance_scale, fps);
        if self.height.is_some() {
            s.height = self.height;
        }
        if self.width.is_some() {
            s.width = self.width;
        }
        if self.scheduler.is_some() {
            s.scheduler = self.scheduler.clone();
        }
        s
    }
}

/// (I, N) from `--shard` and the job-array environment.
fn shard(arg: Option<&str>) -> t2v::Result<(usize, usize)> {
    let bad = |m: String| Error::Other(format!("--shard: {m}"));
    let env_index = || {
        ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"].iter().find_map(|k| std::env::var(k).ok().map(|v| (k, v)))
    };
    let (i, n) = match arg {
        None => return Ok((0, 1)),
        Some(a) => match a.split_once('/') {
            Some((i, n)) => (i.trim().parse::<usize>().map_err(|_| bad(format!("'{i}' is not a shard index")))?, n),
            None => {
                let (k, v) = env_index().ok_or_else(|| bad(format!("'{a}' has no index: give I/N, or set JOB_COMPLETION_INDEX")))?;
                (v.trim().parse::<usize>().map_err(|_| bad(format!("{k}='{v}' is not an index")))?, a)
            }
        },
    };
    let n = n.trim().parse::<usize>().map_err(|_| bad(format!("'{n}' is not a shard count")))?;
    if n == 0 || i >= n {
        return Err(bad(format!("index {i} is not in 0..{n}")));
    }
    Ok((i, n))
}

/// One video to make: a model, a prompt (with its overrides) and a seed.
struct Job<'a> {
    model: &'a str,
    prompt: &'a PromptSpec,
    seed: u64,
}

/// Everything loaded for one model, made on first need (a rerun with nothing missing loads
/// nothing).
struct Loaded {
    pipe: Box<dyn VideoPipeline + Send>,
    load_s: f64,
    plans: BTreeMap<String, MemoryPlan>,
}

/// The settings of one job: the prompt's own overrides, then the config and flags, then the
/// model's defaults.
fn params_for(s: &Settings, p: &PromptSpec, seed: u64, d: &Defaults) -> t2v::Result<GenerateParams> {
    let mut g = s.params(d, seed)?;
    g.prompt = p.prompt.clone();
    g.negative_prompt = p.negative_prompt.clone().unwrap_or_else(|| s.negative_prompt.clone());
    g.num_frames = p.num_frames.unwrap_or(g.num_frames);
    g.height = p.height.unwrap_or(g.height);
    g.width = p.width.unwrap_or(g.width);
    g.num_inference_steps = p.num_inference_steps.unwrap_or(g.num_inference_steps);
    g.guidance_scale = p.guidance_scale.unwrap_or(g.guidance_scale);
    Ok(g)
}

pub fn run(sel: &AdapterSelector, args: CompareArgs) -> t2v::Result<()> {
    let out = args.out.clone();
    for sub in ["videos", "results"] {
        std::fs::create_dir_all(out.join(sub)).map_err(|e| Error::Other(format!("{}: {e}", out.join(sub).display())))?;
    }
    if args.report {
        let records = store::read_records(&out)?;
        let n = records.len();
        report::write_all(&out, records)?;
        eprintln!("report of {n} results: {}", out.join("report.html").display());
        return Ok(());
    }
    let explicit = args.config.as_path() != Path::new("config.yaml");
    let s = args.merge(Settings::load(&args.config, explicit)?);
    s.validate()?;
    let sel = &sel.clone().with_max_memory_gib(s.max_device_memory);
    let (index, count) = shard(args.shard.as_deref())?;
    let mut specs = match &args.prompts {
        Some(p) => prompts::read(p)?,
        None => prompts::parse(Path::new("configs/prompt-suite.yaml"), SUITE)?,
    };
    if let Some(l) = args.limit {
        specs.truncate(l);
    }
    let seeds = if args.seeds.is_empty() { vec![s.seed] } else { args.seeds.clone() };
    let models = if args.models.is_empty() { vec![s.model.clone()] } else { args.models.clone() };
    // The job list is the same in every shard; shard I takes every N-th job from I.
    let mut jobs = Vec::new();
    for m in &models {
        for p in &specs {
            for &seed in p.seeds.as_ref().unwrap_or(&seeds) {
                jobs.push(Job { model: m, prompt: p, seed });
            }
        }
    }
    let total = jobs.len();
    let mine: Vec<Job> = jobs.into_iter().enumerate().filter(|(i, _)| i % count == index).map(|(_, j)| j).collect();
    eprintln!("compare: {} models × {} prompts × seeds = {total} videos; shard {index}/{count}: {}", models.len(), specs.len(), mine.len());

    let gpu = Gpu::new(sel)?;
    eprintln!("adapter: {} ({:?})", gpu.info.name, gpu.info.backend);
    let planner = Gpu::planner(sel)?;
    let placement = Placement { matrices: if args.f32_weights { DType::F32 } else { DType::F16 } };
    let clip_dir = t2v::models::clip::resolve_with(&args.clip_model, &gpu)?;
    let scorer_hash = store::folder_hash(&clip_dir, Some(&out))?;
    let spec = args.scoring.spec(&args.clip_model)?;
    let metric_key = spec.key_material(&gpu, Some(&out))?;
    // The scorer runs on a device of its own, so the generation device's memory counts only
    // the pipeline (its measured peak is the plan's).
    let mut scorer: Option<Scorer> = None;
    let (mut made, mut skipped) = (0usize, 0usize);
    let t_all = Instant::now();
    for model in &models {
        let my_jobs: Vec<&Job> = mine.iter().filter(|j| j.model == model.as_str()).collect();
        if my_jobs.is_empty() {
            continue;
        }
        let chosen = Model::choose(model, None, &gpu, true)?;
        let dir = chosen.dir()?;
        let model_hash = store::folder_hash(dir, Some(&out))?;
        let fps = s.fps(&chosen.defaults);
        let mut loaded: Option<Loaded> = None;
        for job in my_jobs {
            let mut p = params_for(&s, job.prompt, job.seed, &chosen.defaults)?;
            for w in chosen.family.adjust(&mut p) {
                eprintln!("warning: {model} · {}: {w}", job.prompt.id.as_deref().unwrap_or(""));
            }
            let scheduler = s.scheduler.clone().unwrap_or_else(|| "default".into()).to_lowercase();
            let dtype = if args.f32_weights { "f32" } else { "f16" };
            let video_key = store::key_of(&serde_json::json!({
                "t2v_video": 1, "model_hash": model_hash, "prompt": p.prompt, "negative_prompt": p.negative_prompt,
                "seed": p.seed, "num_frames": p.num_frames, "height": p.height, "width": p.width,
                "num_inference_steps": p.num_inference_steps, "guidance_scale": p.guidance_scale, "scheduler": scheduler,
                "clip_skip": p.clip_skip, "noise_dtype": s.noise_dtype, "weights_dtype": dtype, "fps": fps,
            }));
            let mut material = serde_json::json!({ "t2v_result": 1, "video_key": video_key, "scorer_hash": scorer_hash });
            if let Some(m) = &metric_key {
                material["metrics"] = m.clone();
            }
            let key = store::key_of(&material);
            let prompt_id = job.prompt.id.clone().unwrap_or_default();
            if store::result_path(&out, &key).is_file() {
                skipped += 1;
                continue;
            }
            if loaded.is_none() {
                let t0 = Instant::now();
                let pipe = chosen.family.load(&gpu, dir, placement)?;
                gpu.sync()?;
                loaded = Some(Loaded { pipe, load_s: t0.elapsed().as_secs_f64(), plans: BTreeMap::new() });
            }
            let l = loaded.as_mut().ok_or_else(|| Error::Other("pipeline not loaded".into()))?;
            l.pipe.check(&p)?;
            let shape = format!("{}x{}x{}x{}x{}", p.num_frames, p.height, p.width, p.guidance_scale > 1.0, p.clip_skip);
            if !l.plans.contains_key(&shape) {
                let m = chosen.family.plan(&planner, &p, placement)?;
                if !m.fits() {
                    return Err(Error::Other(format!("{model} at {shape}: {} cannot run this: {}", gpu.info.name, m.report())));
                }
                // A new plan replaces the old one's buffers.
                gpu.clear_schedule();
                gpu.trim();
                l.plans.insert(shape.clone(), m);
            }
            let m = &l.plans[&shape];
            gpu.reset_peak();
            l.pipe.use_plan(m)?;
            let t0 = Instant::now();
            let embeds = l.pipe.encode_prompt(&p, &mut NoProgress)?;
            gpu.sync()?;
            let encode_s = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let latents = l.pipe.denoise_resumable(&p, &embeds, &mut NoProgress, None, &mut |_, _, _| Ok(()))?;
            gpu.sync()?;
            let denoise_s = t1.elapsed().as_secs_f64();
            drop(embeds);
            let t2 = Instant::now();
            let frames = l.pipe.decode(&latents, &mut NoProgress)?;
            let decode_s = t2.elapsed().as_secs_f64();
            drop(latents);
            let measured = gpu.memory().peak_allocated;
            let video = store::video_rel(&video_key);
            t2v::video::write_mp4(&out.join(&video), &frames.data, frames.frames, frames.height, frames.width, fps)?;
            // Scored as 8-bit frames rounded as diffusers' PIL output (`output_type="pil"`), before
            // H.264 compression: the numbers a Python evaluation of the same frames gets.
            let rgb = t2v::video::to_u8_round(&frames.data);
            if scorer.is_none() {
                let sg = Gpu::new(sel)?;
                let sc = Scorer::load_spec(&sg, &spec, Some(&out))?;
                scorer = Some(sc);
            }
            let sc = scorer.as_ref().ok_or_else(|| Error::Other("scorer not loaded".into()))?;
            let q = sc.score(&rgb, frames.frames, frames.height, frames.width, fps as f64, &p.prompt)?;
            let r = store::Record {
                key,
                video_key,
                video,
                model: model.clone(),
                model_hash: model_hash.clone(),
                prompt_id: prompt_id.clone(),
                prompt: p.prompt.clone(),
                category: job.prompt.category.clone(),
                negative_prompt: p.negative_prompt.clone(),
                seed: p.seed,
                num_frames: p.num_frames,
                height: p.height,
                width: p.width,
                num_inference_steps: p.num_inference_steps,
                guidance_scale: p.guidance_scale,
                scheduler,
                fps,
                weights_dtype: dtype.into(),
                scorer: args.clip_model.clone(),
                scorer_hash: scorer_hash.clone(),
                clipsim: q.clipsim,
                fetv_clipscore: q.fetv_clipscore,
                clip_temp: q.clip_temp,
                flicker: q.flicker,
                background_consistency: q.background_consistency,
                subject_consistency: q.subject_consistency,
                aesthetic_quality: q.aesthetic_quality,
                dynamic_degree: q.dynamic_degree,
                is_static: q.is_static,
                metric_models: sc.metric_models(),
                load_s: l.load_s,
                encode_s,
                denoise_s,
                decode_s,
                s_per_step: denoise_s / p.num_inference_steps.max(1) as f64,
                planned_peak_bytes: m.peak,
                measured_peak_bytes: measured,
            };
            store::write_record(&out, &r)?;
            made += 1;
            eprintln!(
                "[{}/{}] {model} · {prompt_id} · seed {}: {:.1} s, CLIPSIM {:.2}",
                made + skipped,
                mine.len(),
                p.seed,
                r.generate_s(),
                r.clipsim
            );
        }
    }
    eprintln!("made {made}, already done {skipped}, in {:.1} s", t_all.elapsed().as_secs_f64());
    if count == 1 {
        let records = store::read_records(&out)?;
        report::write_all(&out, records)?;
        eprintln!("report: {}", out.join("report.html").display());
    } else {
        eprintln!("shard done; when every shard has finished: t2v compare --report --out {}", out.display());
    }
    Ok(())
}
