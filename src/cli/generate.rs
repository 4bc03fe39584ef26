//! `t2v generate`: config.yaml + flags → a video file.

use super::settings::Settings;
use super::setup::{self, Model};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Instant;
use t2v::gpu::AdapterSelector;
use t2v::pipelines::{Family, PipelineClass, Progress};
use t2v::weights::Placement;
use t2v::{DType, Error, Gpu};

#[derive(Args, Debug, Default)]
pub struct GenerateArgs {
    /// YAML settings file; flags override its keys.
    #[arg(long, default_value = "config.yaml")]
    pub config: PathBuf,
    #[arg(long)]
    pub prompt: Option<String>,
    #[arg(long)]
    pub negative_prompt: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub randomize_seed: Option<bool>,
    #[arg(long)]
    pub num_frames: Option<usize>,
    #[arg(long)]
    pub num_inference_steps: Option<usize>,
    /// zeroscope-576w, zeroscope-xl, modelscope-1.7b, text2video-zero (Stable Diffusion 1.5 with
    /// the text2video-zero pipeline), tiny-random, or a local diffusers folder (ModelScope-type,
    /// or Stable Diffusion 1.x for text2video-zero).
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long)]
    pub height: Option<usize>,
    #[arg(long)]
    pub width: Option<usize>,
    #[arg(long)]
    pub guidance_scale: Option<f32>,
    /// ddim, dpm++, dpm++-karras, dpm++-sde, dpm++-sde-karras, euler, euler-a, pndm, unipc or
    /// flow-euler (README: Schedulers). text2video-zero: pndm or ddim; Wan: unipc, or euler =
    /// flow-matching Euler with the model's shift.
    #[arg(long)]
    pub scheduler: Option<String>,
    #[arg(long)]
    pub fps: Option<u32>,
    /// Output: .mp4, .gif, a folder for PNG frames, or .npy (raw float32 frames (F, H, W, 3)).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[arg(long)]
    pub clip_skip: Option<usize>,
    /// dtype of the initial noise: float32 (default), float16 or bfloat16. A seed gives the
    /// noise diffusers draws for a pipeline of that torch_dtype (they differ only when 16 does
    /// not divide the number of latent values).
    #[arg(long)]
    pub noise_dtype: Option<String>,
    /// Flow-matching models (Wan): the schedule's shift (default: the model's scheduler config,
    /// 3.0 for Wan 2.1; its card recommends 5.0 for 720p).
    #[arg(long)]
    pub flow_shift: Option<f64>,
    /// A scheduler option over the model's scheduler_config.json, KEY=VALUE (repeatable; VALUE
    /// as JSON, else a string), as diffusers' `Scheduler.from_config(config, KEY=VALUE)`:
    /// e.g. --scheduler-config timestep_spacing=trailing --scheduler-config use_karras_sigmas=true
    #[arg(long, value_name = "KEY=VALUE")]
    pub scheduler_config: Vec<String>,
    /// Wan: the prompt's token length (diffusers' max_sequence_length, default 512).
    #[arg(long)]
    pub max_sequence_length: Option<usize>,
    /// DDIM's η (diffusers' eta, default 0: deterministic); > 0 adds noise from the seed's
    /// generator each step. Other schedulers ignore it, as in diffusers.
    #[arg(long)]
    pub eta: Option<f32>,
    /// Wan 2.2 A14B (two experts): the low-noise expert's guidance scale (diffusers'
    /// guidance_scale_2; default: --guidance-scale). The card uses 4.0 high / 3.0 low.
    #[arg(long)]
    pub guidance_scale_2: Option<f32>,
    /// Keep weights in f32 on the device (default: f16).
    #[arg(long)]
    pub f32_weights: bool,
    /// Print the memory plan (weights + peak activations) and stop; needs no weights for the
    /// named models.
    #[arg(long)]
    pub dry_run: bool,
    /// Video-to-video: start from this video (.mp4 H.264, .gif, or a folder of .png frames)
    /// instead of noise; its frames are resized to the model's size (PIL bicubic).
    #[arg(long, value_name = "VIDEO")]
    pub init_video: Option<PathBuf>,
    /// Video-to-video: take the frames at their own size, as diffusers' VideoToVideoSDPipeline
    /// does (no resize; a size that is not a multiple of 8 comes out as 8·⌊H/8⌋ × 8·⌊W/8⌋).
    #[arg(long, requires = "init_video", conflicts_with_all = ["height", "width"])]
    pub keep_size: bool,
    /// Video-to-video strength in [0, 1]: the share of the steps that run (diffusers' default
    /// 0.6; the Zeroscope XL card suggests 0.66–0.85).
    #[arg(long)]
    pub strength: Option<f64>,
    /// After text-to-video, upscale the frames with this model's video-to-video (default
    /// zeroscope-xl, the Zeroscope card's 576w → XL workflow); one model on the device at a time.
    #[arg(long, value_name = "MODEL", num_args = 0..=1, default_missing_value = "zeroscope-xl")]
    pub upscale: Option<String>,
    /// Size of the upscaled video, WIDTHxHEIGHT (default: the upscale model's size).
    #[arg(long, value_name = "WxH")]
    pub upscale_size: Option<String>,
    // text2video-zero's own keys (issue 12).
    #[command(flatten)]
    pub zero: super::generate_zero::ZeroArgs,
}

impl GenerateArgs {
    fn merge(&self, mut s: Settings) -> Settings {
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { s.$f = v.clone(); } )* };
        }
        take!(prompt, negative_prompt, seed, randomize_seed, model, output, clip_skip, noise_dtype, eta);
        macro_rules! some {
            ($($f:ident),*) => { $( if self.$f.is_some() { s.$f = self.$f; } )* };
        }
        some!(num_frames, num_inference_steps, guidance_scale, fps, flow_shift, max_sequence_length, guidance_scale_2);
        if self.height.is_some() {
            s.height = self.height;
        }
        if self.width.is_some() {
            s.width = self.width;
        }
        if self.scheduler.is_some() {
            s.scheduler = self.scheduler.clone();
        }
        for kv in &self.scheduler_config {
            // Parsed in `run` (errors need a Result); an unparseable one is kept whole and refused there.
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            let v = serde_json::from_str(v.trim()).unwrap_or_else(|_| serde_json::Value::String(v.trim().to_string()));
            s.scheduler_config.insert(k.trim().to_string(), v);
        }
        if self.seed.is_some() && self.randomize_seed.is_none() {
            // An explicit --seed means "this seed".
            s.randomize_seed = false;
        }
        self.zero.merge(&mut s);
        s
    }
}

/// Progress bars on stderr: one per stage, with s/step and ETA while denoising.
pub(super) struct Bars {
    pub(super) bar: Option<ProgressBar>,
    pub(super) started: Instant,
}

impl Bars {
    pub(super) fn new() -> Bars {
        Bars { bar: None, started: Instant::now() }
    }

    pub(super) fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish();
        }
    }
}

impl Progress for Bars {
    fn stage(&mut self, name: &str, total: usize) {
        if let Some(b) = self.bar.take() {
            b.finish();
        }
        let style = ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {msg} ({elapsed}, ETA {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let b = ProgressBar::new(total as u64).with_style(style).with_prefix(name.to_string());
        self.started = Instant::now();
        self.bar = Some(b);
    }
    fn tick(&mut self) {
        if let Some(b) = &self.bar {
            b.inc(1);
            let per = self.started.elapsed().as_secs_f64() / b.position().max(1) as f64;
            b.set_message(format!("{per:.2} s/step"));
        }
    }
    fn note(&mut self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }
}

pub fn run(sel: &AdapterSelector, args: GenerateArgs) -> t2v::Result<()> {
    let explicit = args.config.as_path() != std::path::Path::new("config.yaml");
    if let Some(kv) = args.scheduler_config.iter().find(|kv| !kv.contains('=') || kv.starts_with('=')) {
        return Err(Error::Other(format!("--scheduler-config '{kv}': give KEY=VALUE, e.g. timestep_spacing=trailing or use_karras_sigmas=true")));
    }
    let s = args.merge(Settings::load(&args.config, explicit)?);
    s.validate()?;
    let sel = &sel.clone().with_max_memory_gib(s.max_device_memory);
    // Text2Video-Zero (Stable Diffusion 1.x models) has its own pipeline and keys.
    if super::generate_zero::selected(&s)? {
        return super::generate_zero::run(sel, &args, s);
    }
    let seed = setup::seed(&s);
    // A bad output path should fail now, not after the whole generation.
    t2v::video::check_output_path(&s.output)?;
    let gpu = Gpu::new(sel)?;
    eprintln!("adapter: {} ({:?})", gpu.info.name, gpu.info.backend);
    let pipeline = s.pipeline.as_deref().map(PipelineClass::parse).transpose()?;
    let model = Model::choose(&s.model, pipeline, &gpu, !args.dry_run)?;
    let placement = Placement { matrices: if args.f32_weights { DType::F32 } else { DType::F16 } };
    let mut params = s.params(&model.defaults, seed)?;
    for w in model.family.adjust(&mut params) {
        eprintln!("warning: {w}");
    }
    let fps = s.fps(&model.defaults);
    // Video-to-video and the text-to-video → video-to-video chain: cli/video_to_video.rs.
    if args.init_video.is_some() || args.upscale.is_some() {
        let Family::TextToVideo(configs) = &model.family else {
            return Err(Error::Other(format!("--init-video / --upscale: {} pipelines have no video-to-video in t2v (ModelScope/Zeroscope models do)", model.family.name())));
        };
        return super::video_to_video::run(&args, sel, &gpu, &s, model.dir.clone(), configs, params, placement, fps);
    }
    let memory = model.family.plan(&Gpu::planner(sel)?, &params, placement)?;
    setup::show_plan("", &memory.report(), args.dry_run);
    if args.dry_run {
        return Ok(());
    }
    setup::refuse_unless_fits(&gpu, &memory, "use fewer frames (--num-frames), a smaller size (--height/--width), or --guidance-scale 1")?;
    let dir = model.dir()?;
    let t0 = Instant::now();
    let mut pipe = model.family.load(&gpu, dir, placement)?;
    eprintln!("loaded {} in {:.1} s", dir.display(), t0.elapsed().as_secs_f64());
    // Activations come from the plan's buffers, made now: a device that cannot give them fails
    // here, before any work, and the run never allocates again.
    pipe.use_plan(&memory)?;
    let mut bars = Bars::new();
    let frames = pipe.generate(&params, &mut bars)?;
    bars.finish();
    setup::write_video(&gpu, &s.output, &frames, fps, t0)
}
