//! `t2v score VIDEO --prompt TEXT`: the comparison's metrics for a video made by anything
//! (a GIF or a folder of PNG frames), so t2v can judge other systems' output too.

use clap::Args;
use std::path::PathBuf;
use t2v::gpu::AdapterSelector;
use t2v::Gpu;

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
    /// Print the numbers as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(sel: &AdapterSelector, args: ScoreArgs) -> t2v::Result<()> {
    let v = t2v::video::read_video(&args.video)?;
    let gpu = Gpu::new(sel)?;
    let scorer = t2v::eval::Scorer::load(&gpu, &args.clip_model, None)?;
    let s = scorer.score(&v.rgb, v.frames, v.height, v.width, &args.prompt)?;
    if args.json {
        let j = serde_json::json!({
            "video": args.video.display().to_string(), "prompt": args.prompt, "frames": v.frames, "height": v.height,
            "width": v.width, "scorer": scorer.name, "scorer_hash": scorer.hash, "clipsim": s.clipsim,
            "fetv_clipscore": s.fetv_clipscore, "clip_temp": s.clip_temp, "flicker": s.flicker,
        });
        println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
        return Ok(());
    }
    let opt = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a (one frame)".into());
    println!("{}: {} frames, {}×{}; scored by {}", args.video.display(), v.frames, v.width, v.height, scorer.name);
    println!("  CLIPSIM         {:.2}   (mean frame–prompt cosine ×100)", s.clipsim);
    println!("  FETV CLIPScore  {:.4} (pooled frames vs prompt)", s.fetv_clipscore);
    println!("  CLIP-Temp       {}  (consecutive frames)", opt(s.clip_temp));
    println!("  flicker         {}  (VBench temporal flickering; 1 = still)", opt(s.flicker));
    Ok(())
}
