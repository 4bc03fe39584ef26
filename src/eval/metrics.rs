//! Per-video quality metrics, each as the paper or benchmark that defined it computes it
//! (README "What the numbers mean" cites them). Embeddings are CLIP's projected features
//! (`get_image_features` per frame, `get_text_features` of the prompt), un-normalised; the
//! metrics normalise them. f64 throughout: these are means of a few dozen cosines.

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn norm(a: &[f32]) -> f64 {
    dot(a, a).sqrt()
}

/// Cosine similarity (torch's `F.cosine_similarity` up to its eps clamp, which only matters
/// for zero vectors).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    dot(a, b) / (norm(a) * norm(b)).max(1e-12)
}

/// CLIPSIM (Wu et al., GODIVA 2021; used by NÜWA, CogVideo, Make-A-Video, ModelScopeT2V): the
/// mean over frames of cos(frame, prompt), here ×100 (ModelScope's paper prints it /100: 0.2930).
pub fn clipsim(frames: &[Vec<f32>], text: &[f32]) -> f64 {
    100.0 * frames.iter().map(|f| cosine(f, text)).sum::<f64>() / frames.len().max(1) as f64
}

/// FETV's pooled CLIPScore (Liu et al., FETV, NeurIPS 2023 Datasets & Benchmarks): the frame
/// embeddings are L2-normalised, averaged, renormalised, and compared with the normalised prompt
/// embedding by one cosine. Unscaled (FETV reports ModelScope 0.3146 with ViT-B/32).
pub fn fetv_clipscore(frames: &[Vec<f32>], text: &[f32]) -> f64 {
    let d = text.len();
    let mut mean = vec![0f64; d];
    for f in frames {
        let n = norm(f).max(1e-12);
        mean.iter_mut().zip(f).for_each(|(m, &x)| *m += x as f64 / n);
    }
    let mn = mean.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    let tn = norm(text).max(1e-12);
    mean.iter().zip(text).map(|(m, &t)| m / mn * t as f64 / tn).sum()
}

/// CLIP-Temp (temporal consistency as in Esser et al., Gen-1 2023 and later T2V papers): the
/// mean cosine between the CLIP embeddings of consecutive frames. None for a single frame.
pub fn clip_temp(frames: &[Vec<f32>]) -> Option<f64> {
    if frames.len() < 2 {
        return None;
    }
    Some(frames.windows(2).map(|p| cosine(&p[0], &p[1])).sum::<f64>() / (frames.len() - 1) as f64)
}

/// VBench's temporal flickering (Huang et al., VBench, CVPR 2024, `temporal_flickering.py`):
/// (255 − the mean absolute difference of consecutive 8-bit frames) / 255, the mean taken over
/// pixels and channels of each pair, then over pairs. 1 = a still video. None for one frame.
pub fn temporal_flickering(rgb: &[u8], f: usize, h: usize, w: usize) -> Option<f64> {
    if f < 2 {
        return None;
    }
    let n = h * w * 3;
    let mut total = 0f64;
    for i in 0..f - 1 {
        let (a, b) = (&rgb[i * n..(i + 1) * n], &rgb[(i + 1) * n..(i + 2) * n]);
        let s: u64 = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as u64).sum();
        total += s as f64 / n as f64;
    }
    Some((255.0 - total / (f - 1) as f64) / 255.0)
}

/// The quality numbers of one video.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VideoScores {
    pub clipsim: f64,
    pub fetv_clipscore: f64,
    pub clip_temp: Option<f64>,
    pub flicker: Option<f64>,
    /// VBench dimensions (`eval::vbench`), None when not chosen or not defined (one frame).
    pub background_consistency: Option<f64>,
    pub subject_consistency: Option<f64>,
    pub aesthetic_quality: Option<f64>,
    /// VBench's dynamic degree of the video: 1.0 (moving) or 0.0 (RAFT, `eval::motion`).
    pub dynamic_degree: Option<f64>,
    /// VBench's static filter: whether VBench would keep the video for temporal flickering
    /// (None: the filter was not run, flicker is unfiltered).
    pub is_static: Option<bool>,
}

pub fn scores(frames: &[Vec<f32>], text: &[f32], rgb: &[u8], f: usize, h: usize, w: usize) -> VideoScores {
    VideoScores {
        clipsim: clipsim(frames, text),
        fetv_clipscore: fetv_clipscore(frames, text),
        clip_temp: clip_temp(frames),
        flicker: temporal_flickering(rgb, f, h, w),
        background_consistency: None,
        subject_consistency: None,
        aesthetic_quality: None,
        dynamic_degree: None,
        is_static: None,
    }
}
