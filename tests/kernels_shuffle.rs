//! The Wan 2.2 VAE's channel-to-space rearrangements (ops::shuffle) against CPU loops written
//! from diffusers' definitions: DupUp3D as repeat_interleave → view → permute → view (→ drop
//! the first f_t − 1 frames), unpatchify as view → permute. Frames first (F, C, H, W) on both
//! sides (diffusers' (B, C, T, H, W) with T moved first).

mod common;
use common::*;
use t2v::ops::shuffle::{dup_up, unpatchify_frames};

fn seq(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.37).sin() * 3.0 + i as f32 * 1e-3).collect()
}

/// DupUp3D on (F, cin, h, w), literally: r = repeat_interleave → channel k holds input channel
/// k / rep; view (out, f_t, f_s, f_s): k = ((o·f_t + it)·f_s + ih)·f_s + iw; permute to
/// (out, T, f_t, H, f_s, W, f_s).
fn dup_up_ref(x: &[f32], frames: usize, cin: usize, h: usize, w: usize, out: usize, ft: usize, fs: usize, drop: usize) -> Vec<f32> {
    let rep = out * ft * fs * fs / cin;
    let (oh, ow) = (h * fs, w * fs);
    let total = frames * ft;
    let mut y = Vec::new();
    for tf in drop..total {
        let (t, it) = (tf / ft, tf % ft);
        for o in 0..out {
            for yy in 0..oh {
                for xx in 0..ow {
                    let (ih, iw) = (yy % fs, xx % fs);
                    let k = ((o * ft + it) * fs + ih) * fs + iw;
                    let c = k / rep;
                    y.push(x[((t * cin + c) * h + yy / fs) * w + xx / fs]);
                }
            }
        }
    }
    y
}

#[test]
fn dup_up_matches_diffusers_definition() {
    // (frames, in, out, f_t, f_s, h, w, first chunk): the Wan 2.2 cases (rep = f: in = out;
    // rep = f/2: in = 2·out) and awkward ones (rep > f, rep not dividing f, odd sizes)
    for &(frames, cin, out, ft, fs, h, w, first) in &[
        (1, 24, 24, 2, 2, 3, 5, true),
        (3, 24, 24, 2, 2, 2, 3, false),
        (2, 24, 12, 1, 2, 3, 3, false),
        (2, 6, 12, 2, 2, 1, 7, false),
        (4, 12, 9, 2, 2, 3, 2, true),
        (3, 5, 10, 1, 3, 2, 2, false),
    ] {
        let x = seq(frames * cin * h * w);
        let drop = if first { ft - 1 } else { 0 };
        let y = dup_up(&upload(&[frames, cin, h, w], &x), out, ft, fs, drop).unwrap();
        assert_eq!(y.shape(), &[frames * ft - drop, out, h * fs, w * fs]);
        let want = dup_up_ref(&x, frames, cin, h, w, out, ft, fs, drop);
        assert_eq!(y.to_f32().unwrap(), want, "frames {frames}, {cin} → {out}, f_t {ft}, f_s {fs}, {h}×{w}, first {first}");
    }
    // diffusers' own assertion, as an error
    assert!(dup_up(&upload(&[1, 3, 2, 2], &seq(12)), 2, 1, 1, 0).is_err());
}

#[test]
fn unpatchify_matches_diffusers_definition() {
    // view (F, C, p, p, h, w) → permute (F, C, h, p_b, w, p_a): channel c·p² + a·p + b goes to
    // pixel (y·p + b, x·p + a)
    for &(frames, c, p, h, w) in &[(1, 3, 2, 4, 6), (5, 3, 2, 3, 7), (2, 2, 3, 2, 2), (1, 4, 1, 3, 3)] {
        let x = seq(frames * c * p * p * h * w);
        let y = unpatchify_frames(&upload(&[frames, c * p * p, h, w], &x), p).unwrap();
        assert_eq!(y.shape(), &[frames, c, h * p, w * p]);
        let mut want = Vec::new();
        for t in 0..frames {
            for ci in 0..c {
                for yy in 0..h * p {
                    for xx in 0..w * p {
                        let (b, a) = (yy % p, xx % p);
                        let ch = ci * p * p + a * p + b;
                        want.push(x[((t * c * p * p + ch) * h + yy / p) * w + xx / p]);
                    }
                }
            }
        }
        assert_eq!(y.to_f32().unwrap(), want, "{frames}×{c}·{p}²×{h}×{w}");
    }
}
