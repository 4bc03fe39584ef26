//! `t2v score VIDEO --prompt TEXT`: the comparison's metrics for a video made by anything
//! (an MP4, a GIF or a folder of PNG frames), so t2v can judge other systems' output too.

use clap::Args;
use std::path::PathBuf;
use t2v::eval::{MetricSet, ScorerSpec};
use t2v::gpu::AdapterSelector;
use t2v::Gpu;

/// The metric choice shared by `score` and `compare`.
#[derive(Args, Debug, Clone, Default)]
pub struct MetricArgs {
    /// Metrics (comma-separated): clipsim, fetv_clipscore, clip_temp and flicker come with the CLIP
    /// scorer; VBench's background_consistency (the CLIP scorer on VBench's preprocessing),
    /// subject_consistency (DINO ViT-B/16), aesthetic_quality (CLIP ViT-L/14 + LAION head),
    /// dynamic_degree and static_filter (RAFT; the filter decides which videos' flicker VBench
    /// keeps); all.
    #[arg(long, value_delimiter = ',', default_value = t2v::eval::vbench::DEFAULT_METRICS)]
    pub metrics: Vec<String>,
    /// DINO for subject_consistency: a hub repo id in timm's layout, a local folder
    /// (model.safetensors [+ config.json]), or tiny-random (offline, meaningless scores).
    #[arg(long, default_value = t2v::models::dino::DEFAULT_MODEL)]
    pub dino_model: String,
    /// The CLIP aesthetic_quality runs on (VBench: ViT-L/14): hub id, folder or tiny-random.
    #[arg(long, default_value = t2v::models::aesthetic::DEFAULT_CLIP)]
    pub aesthetic_clip_model: String,
    /// LAION's aesthetic predictor V1 head: LAION's sa_0_4_vit_l_14_linear.pth (or any .pth /
    /// .safetensors with weight [1, D] and bias [1]), a folder or hub repo holding
    /// predictor.weight/bias, or tiny-random.
    #[arg(long, default_value = t2v::models::aesthetic::DEFAULT_HEAD)]
    pub aesthetic_head: String,
    /// RAFT for dynamic_degree and static_filter: raft-things.pth (princeton-vl/RAFT, BSD-3) or a
    /// safetensors copy, a folder holding one, owner/repo[:file] on the hub, or tiny-random.
    #[arg(long, default_value = t2v::models::raft::DEFAULT_MODEL)]
    pub raft_model: String,
}

impl MetricArgs {
    pub fn spec(&self, clip_model: &str) -> t2v::Result<ScorerSpec> {
        Ok(ScorerSpec {
            clip_model: clip_model.to_string(),
            metrics: MetricSet::parse(&self.metrics)?,
            dino_model: self.dino_model.clone(),
            aesthetic_clip: self.aesthetic_clip_model.clone(),
            aesthetic_head: self.aesthetic_head.clone(),
            raft_model: self.raft_model.clone(),
        })
    }
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// The video: an .mp4 (H.264), a .gif or a folder of .png frames.
    pub video: PathBuf,
    /// The prompt the video should show.
    #[arg(long)]
    pub prompt: String,
    /// The CLIP scorer: a hub repo id or a local folder (openai/clip-vit-large-patch14 for ViT-L/14),
    /// or tiny-random (a random miniature t2v builds itself: offline runs, meaningless scores).
    #[arg(long, default_value = t2v::models::clip::DEFAULT_MODEL)]
    pub clip_model: String,
    #[command(flatten)]
    pub scoring: MetricArgs,
    /// The video's frame rate, for dynamic_degree's frame interval (VBench: max(1, round(fps/8))).
    /// Default: the file's own (an MP4's track timing, a GIF's frame delays), else 8 (PNG frames).
    #[arg(long)]
    pub fps: Option<f64>,
    /// Print the numbers as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(sel: &AdapterSelector, args: ScoreArgs) -> t2v::Result<()> {
    let spec = args.scoring.spec(&args.clip_model)?;
    let v = t2v::video::read_video(&args.video)?;
    let fps = match args.fps.or(v.fps) {
        Some(f) if f.is_finite() && f > 0.0 => f,
        Some(f) => return Err(t2v::Error::Other(format!("--fps {f}: the frame rate must be a positive number"))),
        None => 8.0,
    };
    let gpu = Gpu::new(sel)?;
    let scorer = t2v::eval::Scorer::load_spec(&gpu, &spec, None)?;
    let s = scorer.score(&v.rgb, v.frames, v.height, v.width, fps, &args.prompt)?;
    let quality = t2v::eval::vbench::quality_score(&t2v::eval::vbench::measured_dimensions(&s))?;
    if args.json {
        let j = serde_json::json!({
            "video": args.video.display().to_string(), "prompt": args.prompt, "frames": v.frames, "height": v.height,
            "width": v.width, "scorer": scorer.name, "scorer_hash": scorer.hash, "metrics": spec.metrics.names(),
            "metric_models": scorer.metric_models(), "clipsim": s.clipsim,
            "fetv_clipscore": s.fetv_clipscore, "clip_temp": s.clip_temp, "flicker": s.flicker,
            "background_consistency": s.background_consistency, "subject_consistency": s.subject_consistency,
            "aesthetic_quality": s.aesthetic_quality, "dynamic_degree": s.dynamic_degree, "fps": fps,
            // VBench's static filter: true = kept for temporal flickering; null = not run
            // (flicker unfiltered).
            "static": s.is_static, "flicker_filter": if s.is_static.is_some() { "vbench static filter" } else { "unfiltered" },
            // VBench's Quality Score over the dimensions measured (temporal_flickering = flicker,
            // left out when the static filter drops the video); partial unless all seven went in.
            "vbench_quality_score": quality,
        });
        println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
        return Ok(());
    }
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a (one frame)".into());
    println!("{}: {} frames, {}×{}; scored by {}", args.video.display(), v.frames, v.width, v.height, scorer.name);
    println!("  CLIPSIM         {:.2}   (mean frame–prompt cosine ×100)", s.clipsim);
    println!("  FETV CLIPScore  {:.4} (pooled frames vs prompt)", s.fetv_clipscore);
    println!("  CLIP-Temp       {}  (consecutive frames)", opt(s.clip_temp));
    let filter = match s.is_static {
        None => "unfiltered: no static filter",
        Some(true) => "VBench's static filter keeps this video",
        Some(false) => "VBench's static filter drops this video: not in the Quality Score",
    };
    println!("  flicker         {}  (VBench temporal flickering, {filter}; 1 = still)", opt(s.flicker));
    let m = spec.metrics;
    if m.background_consistency {
        println!("  background consistency {}  (VBench, CLIP features)", opt(s.background_consistency));
    }
    if m.subject_consistency {
        println!("  subject consistency    {}  (VBench, DINO features)", opt(s.subject_consistency));
    }
    if m.aesthetic_quality {
        println!("  aesthetic quality      {}  (VBench, LAION V1 head on CLIP ViT-L/14)", opt(s.aesthetic_quality));
    }
    if m.dynamic_degree {
        let d = s.dynamic_degree.map(|d| format!("{d:.0}")).unwrap_or_else(|| "n/a (frames too small for RAFT)".into());
        println!("  dynamic degree         {d}  (VBench, RAFT; 1 = moving, at {fps} fps)");
    }
    if let Some(q) = quality {
        println!(
            "  VBench Quality Score   {:.2}% ({}: {}; flicker {})",
            100.0 * q.value,
            if q.partial { "partial" } else { "all seven dimensions" },
            q.dimensions.join(", "),
            if s.is_static.is_some() { "with VBench's static filter" } else { "unfiltered" }
        );
    }
    Ok(())
}
