//! Inference timesteps, computed with numpy's float64 arithmetic step for step.
//!
//! diffusers builds the lists with `np.linspace`, `np.arange` and `np.round` (ties to even),
//! and the exact bits matter: `np.arange(1000, 0, -1000/61)` has 62 elements, so trailing
//! spacing with 61 steps runs 62 steps in diffusers, and so does this crate.

use super::config::TimestepSpacing;

/// `np.linspace(start, stop, num)` (endpoint=True): `i * step + start`, last element = stop.
pub(crate) fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

/// `np.arange(start, stop, step)` for a float step: the length is `ceil((stop - start) / step)`
/// and elements past the second are `start + i * (second - start)`, not `start + i * step`.
pub(crate) fn arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil();
    if len.is_nan() || len < 1.0 {
        return Vec::new();
    }
    let len = len as usize;
    let second = start + step;
    let delta = second - start;
    (0..len)
        .map(|i| match i {
            0 => start,
            1 => second,
            _ => start + i as f64 * delta,
        })
        .collect()
}

/// `np.interp(x, arange(len(fp)), fp)`: fp at integers, linear in between, clamped at the ends.
pub(crate) fn interp(x: f64, fp: &[f32]) -> f64 {
    let last = fp.len() - 1;
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return fp[0] as f64;
    }
    if x >= last as f64 {
        return fp[last] as f64;
    }
    let j = x.floor() as usize;
    if j as f64 == x {
        return fp[j] as f64;
    }
    let slope = fp[j + 1] as f64 - fp[j] as f64; // over xp[j+1] - xp[j] = 1
    slope * (x - j as f64) + fp[j] as f64
}

/// DDIMScheduler.set_timesteps.
pub(crate) fn ddim(spacing: TimestepSpacing, train: usize, n: usize, offset: i64) -> Vec<i64> {
    match spacing {
        TimestepSpacing::Linspace => linspace(0.0, (train - 1) as f64, n).iter().rev().map(|t| t.round_ties_even() as i64).collect(),
        TimestepSpacing::Leading => {
            let ratio = (train / n) as i64;
            (0..n as i64).rev().map(|i| i * ratio + offset).collect()
        }
        TimestepSpacing::Trailing => trailing(train, train, n),
    }
}

/// DPMSolverMultistepScheduler.set_timesteps: n + 1 points with the last (t = 0) dropped, up
/// to `last` (num_train_timesteps unless lambda_min_clipped cuts the noisy end).
pub(crate) fn dpm(spacing: TimestepSpacing, train: usize, last: usize, n: usize, offset: i64) -> Vec<i64> {
    match spacing {
        TimestepSpacing::Linspace => {
            let v = linspace(0.0, last as f64 - 1.0, n + 1);
            v[1..].iter().rev().map(|t| t.round_ties_even() as i64).collect()
        }
        TimestepSpacing::Leading => {
            let ratio = (last / (n + 1)) as i64;
            (1..=n as i64).rev().map(|i| i * ratio + offset).collect()
        }
        TimestepSpacing::Trailing => trailing(train, last, n),
    }
}

/// EulerDiscreteScheduler.set_timesteps: float32 timesteps (linspace ones are not integers).
pub(crate) fn euler(spacing: TimestepSpacing, train: usize, n: usize, offset: i64) -> Vec<f32> {
    match spacing {
        TimestepSpacing::Linspace => linspace(0.0, (train - 1) as f64, n).iter().rev().map(|&t| t as f32).collect(),
        TimestepSpacing::Leading => {
            let ratio = train / n;
            (0..n).rev().map(|i| (i * ratio) as f32 + offset as f32).collect()
        }
        TimestepSpacing::Trailing => {
            let ratio = train as f64 / n as f64;
            arange(train as f64, 0.0, -ratio).iter().map(|t| t.round_ties_even() as f32 - 1.0).collect()
        }
    }
}

/// `np.arange(start, 0, -train / n).round() - 1`, shared by DDIM and DPM-Solver.
fn trailing(train: usize, start: usize, n: usize) -> Vec<i64> {
    let ratio = train as f64 / n as f64;
    arange(start as f64, 0.0, -ratio).iter().map(|t| t.round_ties_even() as i64 - 1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_61_steps_gives_62() {
        assert_eq!(trailing(1000, 1000, 61).len(), 62);
        assert_eq!(trailing(1000, 1000, 60).len(), 60);
    }

    #[test]
    fn ms17b_leading_50() {
        let t = ddim(TimestepSpacing::Leading, 1000, 50, 1);
        assert_eq!((t[0], t[1], t[49]), (981, 961, 1));
    }
}
