//! VBench's RAFT dimensions (`vbench/dynamic_degree.py`, `static_filter.py` @45e79ec;
//! VBENCH.md §5): dynamic degree — frames every max(1, round(fps/8)) (half-even), RAFT on each
//! consecutive kept pair (sintel padding, 20 iterations), a pair's score the mean of its largest
//! ⌊0.05·H'·W'⌋ flow magnitudes (padding included), the video dynamic (1) iff at least
//! round(4·count/16) scores exceed 6·min(H, W)/256 — and the static filter that picks the videos
//! temporal flickering is defined on: every consecutive pair plus (first, last) and (last,
//! first), top 2 %, threshold 3·min(H, W)/256, count_num round(2·T/16); static iff no more than
//! count_num consecutive scores exceed it and both first↔last scores are ≤ thres·count_num·2.
//! Flows of a pair both need are computed once.

use crate::error::Result;
use crate::models::raft::{prepare_frame, FrameFit, Raft, ITERS};
use std::collections::BTreeMap;

/// Python's `round` (half to even) of a non-negative value.
pub fn round_half_even(x: f64) -> usize {
    let f = x.floor();
    let d = x - f;
    let r = if d > 0.5 || (d == 0.5 && f % 2.0 != 0.0) { f + 1.0 } else { f };
    r.max(0.0) as usize
}

/// `max(1, round(fps / 8))`: fps 16 → 2, 24 → 3, 25 → 3, 30 → 4, 20 → 2, 12 → 2, 8 → 1.
pub fn frame_interval(fps: f64) -> usize {
    round_half_even(fps / 8.0).max(1)
}

/// `set_params`: (thres, count_num) of dynamic degree for `count` kept frames of an h×w video.
pub fn dynamic_params(h: usize, w: usize, count: usize) -> (f64, usize) {
    (6.0 * (h.min(w) as f64 / 256.0), round_half_even(4.0 * (count as f64 / 16.0)))
}

/// StaticFilter's `set_params` for a `count`-frame video.
pub fn static_params(h: usize, w: usize, count: usize) -> (f64, usize) {
    (3.0 * (h.min(w) as f64 / 256.0), round_half_even(2.0 * (count as f64 / 16.0)))
}

/// `check_move` (strict >, early exit; count_num 0 → dynamic after the first pair; no pairs → 0).
pub fn check_move(scores: &[f64], thres: f64, count_num: usize) -> bool {
    let mut count = 0;
    for &s in scores {
        if s > thres {
            count += 1;
        }
        if count >= count_num {
            return true;
        }
    }
    false
}

/// `check_static`: scores of the consecutive pairs, then (first, last), (last, first).
pub fn check_static(scores: &[f64], thres: f64, count_num: usize) -> bool {
    let n = scores.len().saturating_sub(2);
    let mut count = 0;
    for &s in &scores[..n] {
        if s > thres {
            count += 1;
        }
        if count > count_num {
            return false;
        }
    }
    // `not >`, not `<=`: a NaN score (NaN flow) passes, as in VBench.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    let within = |s: f64| !(s > thres * count_num as f64 * 2.0);
    scores[n..].iter().all(|&s| within(s))
}

/// `get_score`: the mean of the largest ⌊h·w·fraction⌋ magnitudes (`sorted` descending).
fn top_mean(sorted: &[f32], fraction: f64) -> f64 {
    let cut = (sorted.len() as f64 * fraction) as usize;
    if cut == 0 {
        return f64::NAN;
    }
    sorted[..cut].iter().map(|&x| x as f64).sum::<f64>() / cut as f64
}

/// One video's RAFT results: per-pair scores and the decisions (None: not computed, or the video
/// is too small for RAFT — VBench fails there).
#[derive(Debug, Clone, Default)]
pub struct MotionResult {
    pub dynamic_scores: Vec<f64>,
    pub dynamic: Option<bool>,
    pub static_scores: Vec<f64>,
    pub is_static: Option<bool>,
}

/// Flow magnitudes per frame pair, sorted descending (NaN flows when the pyramid has a 1-pixel
/// level, as torch's).
struct Flows<'a> {
    raft: &'a Raft,
    rgb: &'a [u8],
    h: usize,
    w: usize,
    cache: BTreeMap<(usize, usize), Vec<f32>>,
}

impl Flows<'_> {
    fn sorted(&mut self, i: usize, j: usize) -> Result<&[f32]> {
        if !self.cache.contains_key(&(i, j)) {
            let plane = self.h * self.w * 3;
            let (a, hp, wp) = prepare_frame(&self.rgb[i * plane..(i + 1) * plane], self.h, self.w);
            let mut rad = if FrameFit::of(self.h, self.w) == FrameFit::NanFlow {
                vec![f32::NAN; hp * wp]
            } else {
                let (b, _, _) = prepare_frame(&self.rgb[j * plane..(j + 1) * plane], self.h, self.w);
                let flow = self.raft.forward(&a, &b, hp, wp, ITERS, None)?.to_f32()?;
                let (u, v) = flow.split_at(hp * wp);
                u.iter().zip(v).map(|(&u, &v)| (u * u + v * v).sqrt()).collect()
            };
            rad.sort_by(|a, b| b.total_cmp(a));
            self.cache.insert((i, j), rad);
        }
        Ok(&self.cache[&(i, j)])
    }
}

/// Dynamic degree (when `dynamic`) and the static filter (when `static_filter`) of 8-bit RGB
/// frames (F, H, W, 3) at `fps`.
pub fn motion(raft: &Raft, rgb: &[u8], f: usize, h: usize, w: usize, fps: f64, dynamic: bool, static_filter: bool) -> Result<MotionResult> {
    let mut r = MotionResult::default();
    if f == 0 || FrameFit::of(h, w) == FrameFit::TooSmall {
        return Ok(r);
    }
    let mut flows = Flows { raft, rgb, h, w, cache: BTreeMap::new() };
    if dynamic {
        let keep: Vec<usize> = (0..f).step_by(frame_interval(fps)).collect();
        let (thres, count_num) = dynamic_params(h, w, keep.len());
        for p in keep.windows(2) {
            r.dynamic_scores.push(top_mean(flows.sorted(p[0], p[1])?, 0.05));
        }
        r.dynamic = Some(check_move(&r.dynamic_scores, thres, count_num));
    }
    if static_filter {
        let mut pairs: Vec<(usize, usize)> = (0..f - 1).map(|i| (i, i + 1)).collect();
        pairs.extend([(0, f - 1), (f - 1, 0)]);
        let (thres, count_num) = static_params(h, w, f);
        for (i, j) in pairs {
            r.static_scores.push(top_mean(flows.sorted(i, j)?, 0.02));
        }
        r.is_static = Some(check_static(&r.static_scores, thres, count_num));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vbench_rules() {
        let iv: Vec<usize> = [16.0, 24.0, 25.0, 30.0, 20.0, 12.0, 8.0, 4.0, 2.0].iter().map(|&f| frame_interval(f)).collect();
        assert_eq!(iv, [2, 3, 3, 4, 2, 2, 1, 1, 1]);
        // VBENCH.md §5's examples: Wan 832×480 at 16 fps, 81 frames → 41 kept, thres 11.25, 10.
        assert_eq!(dynamic_params(480, 832, 41), (11.25, 10));
        assert_eq!(dynamic_params(256, 256, 16), (6.0, 4));
        assert_eq!(dynamic_params(256, 256, 2).1, 0); // round(0.5) = 0
        assert_eq!(static_params(256, 256, 16), (3.0, 2));
        assert_eq!(static_params(256, 256, 5).1, 1); // round(0.625)
        assert!(check_move(&[0.0], 1.0, 0) && !check_move(&[], 1.0, 0));
        assert!(check_move(&[2.0, 0.5, 2.0], 1.0, 2) && !check_move(&[2.0, 0.5, 1.0], 1.0, 2));
        // NaN scores never exceed a threshold (VBench on 1-pixel pyramid levels).
        assert!(!check_move(&[f64::NAN, f64::NAN], 1.0, 1) && check_static(&[f64::NAN; 3], 1.0, 0));
        // Static: up to count_num consecutive pairs above, first↔last within thres·count_num·2.
        assert!(check_static(&[2.0, 0.5, 0.5, 3.9, 4.0], 1.0, 2));
        assert!(!check_static(&[2.0, 2.0, 2.0, 0.0, 0.0], 1.0, 2));
        assert!(!check_static(&[0.5, 0.5, 0.5, 0.0, 4.1], 1.0, 2));
        assert!(!check_static(&[0.5, 0.5, 0.1, 0.0], 1.0, 0)); // count_num 0: first↔last must be ≤ 0
    }
}
