//! Permutes between the frame layouts, concat, crops and nearest upsampling against CPU index math.

mod common;
use common::*;
use t2v::ops::layout::*;

/// (B, F, C, S) element order → reference outputs built by explicit index loops.
fn seq(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 * 0.5 - 3.0).collect()
}

#[test]
fn frames_layout_round_trips() {
    for &(b, f, c, h, w) in &[(1, 1, 3, 2, 2), (2, 5, 7, 3, 4), (2, 24, 16, 5, 9)] {
        let s = h * w;
        let x = seq(b * f * c * s);
        let xt = upload(&[b * f, c, h, w], &x);

        let cf = frames_to_channels_first(&xt, f).unwrap();
        assert_eq!(cf.shape(), &[b, c, f, h, w]);
        let mut want = vec![0.0f64; x.len()];
        for bi in 0..b {
            for fi in 0..f {
                for ci in 0..c {
                    for si in 0..s {
                        want[((bi * c + ci) * f + fi) * s + si] = x[((bi * f + fi) * c + ci) * s + si] as f64;
                    }
                }
            }
        }
        assert_close("to (B,C,F,H,W)", &cf.to_f32().unwrap(), &want, 0.0);
        let back = channels_first_to_frames(&cf).unwrap();
        assert_eq!(back.to_f32().unwrap(), x);

        let sq = frames_to_sequences(&xt, f).unwrap();
        assert_eq!(sq.shape(), &[b * s, f, c]);
        let mut want = vec![0.0f64; x.len()];
        for bi in 0..b {
            for fi in 0..f {
                for ci in 0..c {
                    for si in 0..s {
                        want[((bi * s + si) * f + fi) * c + ci] = x[((bi * f + fi) * c + ci) * s + si] as f64;
                    }
                }
            }
        }
        assert_close("to (B·H·W,F,C)", &sq.to_f32().unwrap(), &want, 0.0);
        assert_eq!(sequences_to_frames(&sq, h, w).unwrap().to_f32().unwrap(), x);
    }
}

#[test]
fn generic_permute() {
    let x = seq(2 * 3 * 4 * 5);
    let y = permute(&upload(&[2, 3, 4, 5], &x), &[3, 1, 0, 2]).unwrap();
    assert_eq!(y.shape(), &[5, 3, 2, 4]);
    let got = y.to_f32().unwrap();
    for a in 0..2 {
        for bb in 0..3 {
            for c in 0..4 {
                for d in 0..5 {
                    assert_eq!(got[((d * 3 + bb) * 2 + a) * 4 + c], x[((a * 3 + bb) * 4 + c) * 5 + d]);
                }
            }
        }
    }
    assert!(permute(&upload(&[2, 3], &seq(6)), &[0, 0]).is_err());
}

#[test]
fn concat_on_channels() {
    let (n, c1, c2, s) = (3, 4, 6, 7);
    let a = seq(n * c1 * s);
    let b: Vec<f32> = seq(n * c2 * s).iter().map(|v| v + 100.0).collect();
    let y = cat(&[&upload(&[n, c1, 1, s], &a), &upload(&[n, c2, 1, s], &b)], 1).unwrap();
    assert_eq!(y.shape(), &[n, c1 + c2, 1, s]);
    let got = y.to_f32().unwrap();
    for i in 0..n {
        for c in 0..c1 + c2 {
            for k in 0..s {
                let want = if c < c1 { a[(i * c1 + c) * s + k] } else { b[(i * c2 + c - c1) * s + k] };
                assert_eq!(got[(i * (c1 + c2) + c) * s + k], want);
            }
        }
    }
    let e = cat(&[&upload(&[2, 1], &[0.0; 2]), &upload(&[3, 1], &[0.0; 3])], 1).unwrap_err().to_string();
    assert!(e.contains("[3, 1]"), "{e}");
}

#[test]
fn crop_windows_of_every_image() {
    let (n, c, h, w) = (3, 2, 5, 7);
    let x = seq(n * c * h * w);
    let xt = upload(&[n, c, h, w], &x);
    for &(top, left, ch, cw) in &[(0, 0, 5, 7), (1, 2, 3, 4), (4, 6, 1, 1), (0, 3, 5, 4), (2, 0, 2, 7)] {
        let y = crop_hw(&xt, top, left, ch, cw).unwrap();
        assert_eq!(y.shape(), &[n, c, ch, cw]);
        let got = y.to_f32().unwrap();
        for p in 0..n * c {
            for i in 0..ch {
                for j in 0..cw {
                    assert_eq!(got[(p * ch + i) * cw + j], x[(p * h + top + i) * w + left + j], "{ch}x{cw} at ({top}, {left})");
                }
            }
        }
    }
    // a view that starts inside its buffer (a frame of a longer video)
    let y = crop_hw(&xt.narrow0(1, 2).unwrap(), 1, 1, 2, 3).unwrap().to_f32().unwrap();
    assert_eq!(y[0], x[(c * h + 1) * w + 1]);
    assert_eq!(y[y.len() - 1], x[((3 * c - 1) * h + 2) * w + 3]);
    for bad in [(0, 0, 6, 1), (0, 5, 1, 3), (0, 0, 0, 1)] {
        let e = crop_hw(&xt, bad.0, bad.1, bad.2, bad.3).unwrap_err().to_string();
        assert!(e.contains("crop_hw"), "{e}");
    }
}

#[test]
fn upsample_nearest_2x_and_explicit_size() {
    let (n, c, h, w) = (2, 3, 5, 9);
    let x = seq(n * c * h * w);
    for &(oh, ow) in &[(10, 18), (9, 17), (5, 9), (11, 20)] {
        let y = upsample_nearest(&upload(&[n, c, h, w], &x), oh, ow).unwrap().to_f32().unwrap();
        for p in 0..n * c {
            for oy in 0..oh {
                for ox in 0..ow {
                    // torch: floor(dst * (in / out)) with the ratio in f32, clamped.
                    let iy = ((oy as f32 * (h as f32 / oh as f32)).floor() as usize).min(h - 1);
                    let ix = ((ox as f32 * (w as f32 / ow as f32)).floor() as usize).min(w - 1);
                    assert_eq!(y[(p * oh + oy) * ow + ox], x[(p * h + iy) * w + ix], "{oh}x{ow} at {oy},{ox}");
                }
            }
        }
    }
}

#[test]
fn permute_larger_than_a_binding() {
    // (B=2, F=3, C=4, S) with 2×~75 MB per batch item: the copy splits by batch.
    let (b, f, c, s) = (2usize, 3usize, 4usize, 1_600_000usize);
    let n = b * f * c * s;
    assert!(n * 4 > 128 << 20);
    let x: Vec<f32> = (0..n).map(|i| (i % 65521) as f32).collect();
    let y = frames_to_channels_first(&upload(&[b * f, c, 1, s], &x), f).unwrap().to_f32().unwrap();
    for bi in 0..b {
        for fi in 0..f {
            for ci in 0..c {
                for si in (0..s).step_by(9973).chain([s - 1]) {
                    assert_eq!(y[((bi * c + ci) * f + fi) * s + si], x[((bi * f + fi) * c + ci) * s + si]);
                }
            }
        }
    }
}
