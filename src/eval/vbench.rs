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
pub const VBENCH_METRICS: [&str; 3] = ["background_consistency", "subject_consistency", "aesthetic_quality"];

/// Which VBench dimensions a run computes (`--metrics`, a comma list of names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricSet {
    /// CLIP (the `--clip-model` scorer) on VBench's preprocessing: nothing to download.
    pub background_consistency: bool,
    /// DINO ViT-B/16 (`--dino-model`).
    pub subject_consistency: bool,
    /// CLIP ViT-L/14 + the LAION head (`--aesthetic-clip-model`, `--aesthetic-head`).
    pub aesthetic_quality: bool,
}

impl Default for MetricSet {
    /// The base metrics and every dimension that needs no download beyond the CLIP scorer.
    fn default() -> Self {
        MetricSet { background_consistency: true, subject_consistency: false, aesthetic_quality: false }
    }
}

/// `--metrics`' default, as written on the command line.
pub const DEFAULT_METRICS: &str = "clipsim,fetv_clipscore,clip_temp,flicker,background_consistency";

impl MetricSet {
    /// From `--metrics` names (`all` = every one; the base metrics are accepted and always on).
    pub fn parse(names: &[String]) -> Result<MetricSet> {
        let mut m = MetricSet { background_consistency: false, subject_consistency: false, aesthetic_quality: false };
        for n in names.iter().flat_map(|n| n.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
            match n {
                "background_consistency" => m.background_consistency = true,
                "subject_consistency" => m.subject_consistency = true,
                "aesthetic_quality" => m.aesthetic_quality = true,
                "all" => m = MetricSet { background_consistency: true, subject_consistency: true, aesthetic_quality: true },
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
        let on = [self.background_consistency, self.subject_consistency, self.aesthetic_quality];
        BASE_METRICS.iter().copied().chain(VBENCH_METRICS.iter().zip(on).filter(|(_, o)| *o).map(|(n, _)| *n)).collect()
    }

    /// Nothing beyond the CLIP scorer's base metrics (results keyed as before issue 20).
    pub fn is_base(&self) -> bool {
        !(self.background_consistency || self.subject_consistency || self.aesthetic_quality)
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
    fn metric_lists() {
        let d = MetricSet::parse(&[DEFAULT_METRICS.to_string()]).unwrap();
        assert_eq!(d, MetricSet::default());
        assert!(MetricSet::parse(&["clipsim,flicker".into()]).unwrap().is_base());
        let all = MetricSet::parse(&["all".into()]).unwrap();
        assert_eq!(all.names().len(), 7);
        assert!(MetricSet::parse(&["dynamic_degree".into()]).is_err());
    }
}
