//! VBench's quality dimensions (Huang et al., VBench, CVPR 2024; `../shared/VBENCH.md`), each as
//! VBench's code computes it from the features t2v's networks give: subject / background
//! consistency (DINO / CLIP features, `vbench/{subject,background}_consistency.py`) and aesthetic
//! quality (the LAION V1 head on CLIP ViT-L/14 features, `vbench/aesthetic_quality.py`); and which
//! of them a run computes ([`MetricSet`], `--metrics`).

use crate::error::{Error, Result};

/// VBench's `dino_transform(224)`: DINO sees every frame with its shorter side at 224.
pub const DINO_PX: usize = 224;

fn unit(v: &[f32]) -> Vec<f64> {
    let n = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|&x| x as f64 / n).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// VBench's consistency of one video from per-frame features: d_t = f_t/‖f_t‖, for t ≥ 1
/// s_t = ½·[max(0, ⟨d_{t−1}, d_t⟩) + max(0, ⟨d_0, d_t⟩)], the video's value the mean of s_t.
/// None for one frame (VBench writes 1.0 there; t2v reports no temporal number).
pub fn consistency(features: &[Vec<f32>]) -> Option<f64> {
    if features.len() < 2 {
        return None;
    }
    let d: Vec<Vec<f64>> = features.iter().map(|f| unit(f)).collect();
    let sum: f64 = (1..d.len()).map(|t| 0.5 * (dot(&d[t - 1], &d[t]).max(0.0) + dot(&d[0], &d[t]).max(0.0))).sum();
    Some(sum / (d.len() - 1) as f64)
}

/// VBench's aesthetic quality of one video: the LAION V1 linear head (`weight`·e + `bias`) on each
/// frame's L2-normalised CLIP image embedding e, divided by 10, averaged over frames.
pub fn aesthetic(features: &[Vec<f32>], weight: &[f32], bias: f32) -> Option<f64> {
    if features.is_empty() {
        return None;
    }
    let w: Vec<f64> = weight.iter().map(|&x| x as f64).collect();
    let s: f64 = features.iter().map(|f| (dot(&unit(f), &w) + bias as f64) / 10.0).sum();
    Some(s / features.len() as f64)
}

/// The metrics `t2v compare` / `t2v score` can report. The CLIP scorer's four (CLIPSIM, FETV
/// CLIPScore, CLIP-Temp, flicker) come with every run; the VBench dimensions are chosen.
pub const BASE_METRICS: [&str; 4] = ["clipsim", "fetv_clipscore", "clip_temp", "flicker"];
pub const VBENCH_METRICS: [&str; 5] = ["background_consistency", "subject_consistency", "aesthetic_quality", "dynamic_degree", "static_filter"];

/// Which VBench dimensions a run computes (`--metrics`, a comma list of names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSet {
    /// CLIP (the `--clip-model` scorer) on VBench's preprocessing: nothing to download.
    pub background_consistency: bool,
    /// DINO ViT-B/16 (`--dino-model`).
    pub subject_consistency: bool,
    /// CLIP ViT-L/14 + the LAION head (`--aesthetic-clip-model`, `--aesthetic-head`).
    pub aesthetic_quality: bool,
    /// RAFT (`--raft-model`): dynamic degree, and VBench's static filter for temporal flickering.
    pub dynamic_degree: bool,
    pub static_filter: bool,
}

impl Default for MetricSet {
    /// The base metrics and every dimension that needs no download beyond the CLIP scorer.
    fn default() -> Self {
        MetricSet { background_consistency: true, ..MetricSet::none() }
    }
}

/// `--metrics`' default, as written on the command line.
pub const DEFAULT_METRICS: &str = "clipsim,fetv_clipscore,clip_temp,flicker,background_consistency";

impl MetricSet {
    /// From `--metrics` names (`all` = every one; the base metrics are accepted and always on).
    /// Only the base metrics.
    pub fn none() -> MetricSet {
        MetricSet { background_consistency: false, subject_consistency: false, aesthetic_quality: false, dynamic_degree: false, static_filter: false }
    }

    /// Every VBench dimension t2v has.
    pub fn all() -> MetricSet {
        MetricSet { background_consistency: true, subject_consistency: true, aesthetic_quality: true, dynamic_degree: true, static_filter: true }
    }

    pub fn parse(names: &[String]) -> Result<MetricSet> {
        let mut m = MetricSet::none();
        for n in names.iter().flat_map(|n| n.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
            match n {
                "background_consistency" => m.background_consistency = true,
                "subject_consistency" => m.subject_consistency = true,
                "aesthetic_quality" => m.aesthetic_quality = true,
                "dynamic_degree" => m.dynamic_degree = true,
                "static_filter" => m.static_filter = true,
                "all" => m = MetricSet::all(),
                n if BASE_METRICS.contains(&n) => {}
                _ => {
                    return Err(Error::Other(format!(
                        "--metrics: unknown metric '{n}' (known: {}, {}, all)",
                        BASE_METRICS.join(", "),
                        VBENCH_METRICS.join(", ")
                    )))
                }
            }
        }
        Ok(m)
    }

    pub fn names(&self) -> Vec<&'static str> {
        let on = [self.background_consistency, self.subject_consistency, self.aesthetic_quality, self.dynamic_degree, self.static_filter];
        BASE_METRICS.iter().copied().chain(VBENCH_METRICS.iter().zip(on).filter(|(_, o)| *o).map(|(n, _)| *n)).collect()
    }

    /// Nothing beyond the CLIP scorer's base metrics (results keyed as before issue 20).
    pub fn is_base(&self) -> bool {
        !(self.background_consistency || self.subject_consistency || self.aesthetic_quality || self.needs_raft())
    }

    /// Whether RAFT runs (dynamic degree or the static filter).
    pub fn needs_raft(&self) -> bool {
        self.dynamic_degree || self.static_filter
    }
}

/// One of VBench's quality dimensions as `scripts/constant.py` normalises it (the "Empirical
/// Min/Max" of VBench++ Table II) and weighs it in the Quality Score.
#[derive(Debug, Clone, Copy)]
pub struct Dimension {
    pub name: &'static str,
    pub min: f64,
    pub max: f64,
    pub weight: f64,
}

/// VBench's seven quality dimensions (`QUALITY_LIST`, `NORMALIZE_DIC`, `DIM_WEIGHT`).
pub const QUALITY_DIMENSIONS: [Dimension; 7] = [
    Dimension { name: "subject_consistency", min: 0.1462, max: 1.0, weight: 1.0 },
    Dimension { name: "background_consistency", min: 0.2615, max: 1.0, weight: 1.0 },
    Dimension { name: "temporal_flickering", min: 0.6293, max: 1.0, weight: 1.0 },
    Dimension { name: "motion_smoothness", min: 0.706, max: 0.9975, weight: 1.0 },
    Dimension { name: "dynamic_degree", min: 0.0, max: 1.0, weight: 0.5 },
    Dimension { name: "aesthetic_quality", min: 0.0, max: 1.0, weight: 1.0 },
    Dimension { name: "imaging_quality", min: 0.0, max: 1.0, weight: 1.0 },
];

/// A Quality Score over the dimensions given: VBench's `cal_final_score` arithmetic (per
/// dimension w·(s − min)/(max − min), summed, divided by the weights) renormalised by the
/// weights present; `partial` unless all seven went in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QualityScore {
    /// 0..1 (VBench prints ×100).
    pub value: f64,
    pub dimensions: Vec<&'static str>,
    pub partial: bool,
}

/// `scores`: (dimension name, raw 0..1 score); unknown names are an error, a dimension given
/// twice counts once (the first). None when no quality dimension is given.
pub fn quality_score(scores: &[(&str, f64)]) -> Result<Option<QualityScore>> {
    let (mut sum, mut weights, mut dims) = (0.0, 0.0, Vec::new());
    for &(name, s) in scores {
        let d = QUALITY_DIMENSIONS
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| Error::Other(format!("'{name}' is not one of VBench's quality dimensions")))?;
        if dims.contains(&d.name) {
            continue;
        }
        sum += d.weight * (s - d.min) / (d.max - d.min);
        weights += d.weight;
        dims.push(d.name);
    }
    Ok((!dims.is_empty()).then(|| QualityScore { value: sum / weights, partial: dims.len() < QUALITY_DIMENSIONS.len(), dimensions: dims }))
}

/// The quality dimensions t2v measured for one video, as VBench names them. Flicker is VBench's
/// temporal flickering formula; with the static filter run, a video VBench's filter drops has
/// no temporal flickering (VBench only scores the videos it keeps).
pub fn measured_dimensions(s: &crate::eval::VideoScores) -> Vec<(&'static str, f64)> {
    [
        ("subject_consistency", s.subject_consistency),
        ("background_consistency", s.background_consistency),
        ("temporal_flickering", s.flicker.filter(|_| s.is_static != Some(false))),
        ("dynamic_degree", s.dynamic_degree),
        ("aesthetic_quality", s.aesthetic_quality),
    ]
    .into_iter()
    .filter_map(|(n, v)| Some((n, v?)))
    .collect()
}

/// A published VBench row (VBench++ Table II, raw quality dimensions in %, VBENCH.md §9), with
/// the sampling VBench used.
pub struct PublishedRow {
    pub model: &'static str,
    pub sampling: &'static str,
    /// subject, background, flickering, motion smoothness, dynamic degree, aesthetic, imaging (%).
    pub dims: [f64; 7],
}

pub const PUBLISHED: [PublishedRow; 4] = [
    PublishedRow { model: "ModelScope", sampling: "256², 8 fps, 16 frames", dims: [89.87, 95.29, 98.28, 95.79, 66.39, 52.06, 58.57] },
    PublishedRow { model: "LaVie", sampling: "512², 8 fps, 16 frames", dims: [91.41, 97.47, 98.30, 96.38, 49.72, 54.94, 61.90] },
    PublishedRow { model: "VideoCrafter-2.0", sampling: "320×512, 10 fps, 16 frames", dims: [96.85, 98.22, 98.41, 97.73, 42.50, 63.13, 67.22] },
    PublishedRow { model: "CogVideoX-5B", sampling: "720×480, 8 fps, 49 frames", dims: [96.23, 96.52, 98.66, 96.92, 70.97, 61.98, 62.90] },
];

impl PublishedRow {
    /// The row's raw score (0..1) of a quality dimension.
    pub fn dim(&self, name: &str) -> Option<f64> {
        QUALITY_DIMENSIONS.iter().position(|d| d.name == name).map(|i| self.dims[i] / 100.0)
    }

    /// Its Quality Score over `names` (all seven: the leaderboard's Quality).
    pub fn quality(&self, names: &[&str]) -> Option<QualityScore> {
        let scores: Vec<(&str, f64)> = names.iter().filter_map(|n| Some((*n, self.dim(n)?))).collect();
        quality_score(&scores).ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_is_vbenchs_formula() {
        // Frames: e0, e0, then orthogonal to both, then −e0 (cosines clamp at 0).
        let f = vec![vec![1.0, 0.0], vec![2.0, 0.0], vec![0.0, 3.0], vec![-1.0, 0.0]];
        // s1 = ½(1 + 1), s2 = ½(0 + 0), s3 = ½(max(0, 0) + max(0, −1)) = 0.
        assert!((consistency(&f).unwrap() - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(consistency(&f[..1]), None);
        // Aesthetic: (w·e/‖e‖ + b)/10 averaged.
        let a = aesthetic(&[vec![3.0, 4.0], vec![0.0, 2.0]], &[10.0, 20.0], 5.0).unwrap();
        assert!((a - ((0.6 * 10.0 + 0.8 * 20.0 + 5.0) / 10.0 + (20.0 + 5.0) / 10.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn quality_score_is_cal_final_score() {
        // VBench's scripts/cal_final_score.py on ModelScope's published row (VBENCH.md §9),
        // written out from the constants: normalised = weight·(s − min)/(max − min).
        let ms = [0.8987, 0.9529, 0.9828, 0.9579, 0.6639, 0.5206, 0.5857];
        let n = [
            (ms[0] - 0.1462) / (1.0 - 0.1462),
            (ms[1] - 0.2615) / (1.0 - 0.2615),
            (ms[2] - 0.6293) / (1.0 - 0.6293),
            (ms[3] - 0.706) / (0.9975 - 0.706),
            0.5 * (ms[4] - 0.0) / 1.0,
            ms[5],
            ms[6],
        ];
        let want = n.iter().sum::<f64>() / 6.5;
        let names = QUALITY_DIMENSIONS.map(|d| d.name);
        let all: Vec<(&str, f64)> = names.iter().copied().zip(ms).collect();
        let q = quality_score(&all).unwrap().unwrap();
        assert!((q.value - want).abs() < 1e-12 && !q.partial, "{q:?} vs {want}");
        // The leaderboard's 78.06 (two decimals of a percentage).
        assert_eq!(format!("{:.2}", 100.0 * q.value), "78.06");
        assert!((PUBLISHED[0].quality(&names).unwrap().value - q.value).abs() < 1e-12);
        // The dimensions t2v measures: renormalised by the weights present (1 + 1 + 1 + 1).
        let some = [("subject_consistency", ms[0]), ("background_consistency", ms[1]), ("temporal_flickering", ms[2]), ("aesthetic_quality", ms[5])];
        let p = quality_score(&some).unwrap().unwrap();
        assert!((p.value - (n[0] + n[1] + n[2] + n[5]) / 4.0).abs() < 1e-12 && p.partial);
        assert_eq!(p.dimensions, vec!["subject_consistency", "background_consistency", "temporal_flickering", "aesthetic_quality"]);
        // With dynamic degree's half weight: (n_bg + 0.5·s_dyn) / 1.5.
        let d = quality_score(&[("background_consistency", ms[1]), ("dynamic_degree", ms[4])]).unwrap().unwrap();
        assert!((d.value - (n[1] + n[4]) / 1.5).abs() < 1e-12);
        assert!(quality_score(&[]).unwrap().is_none());
        assert!(quality_score(&[("clipsim", 0.3)]).is_err());
    }

    #[test]
    fn metric_lists() {
        let d = MetricSet::parse(&[DEFAULT_METRICS.to_string()]).unwrap();
        assert_eq!(d, MetricSet::default());
        assert!(MetricSet::parse(&["clipsim,flicker".into()]).unwrap().is_base());
        let all = MetricSet::parse(&["all".into()]).unwrap();
        assert_eq!(all.names().len(), 9);
        let d = MetricSet::parse(&["dynamic_degree".into()]).unwrap();
        assert!(d.dynamic_degree && !d.static_filter && d.needs_raft() && !d.is_base());
        assert!(MetricSet::parse(&["motion_smoothness".into()]).is_err());
    }
}
