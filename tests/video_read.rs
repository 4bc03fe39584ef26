//! `t2v::video::read_video` as `t2v score` uses it on t2v's own outputs: PNG folders round-trip
//! exactly; GIFs come back with their size and frame count (colours within NeuQuant's palette
//! error); t2v's MP4s decode to their size and frame count (tests/video_input.rs holds the
//! decoder to ffmpeg's).

use std::path::PathBuf;
use t2v::video::{read_video, to_u8_round, write_gif, write_mp4, write_png_frames};

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("video-read-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Three 10×14 frames of smooth gradients that move.
fn frames() -> (Vec<f32>, usize, usize, usize) {
    let (f, h, w) = (3, 10, 14);
    let mut v = Vec::new();
    for i in 0..f {
        for y in 0..h {
            for x in 0..w {
                v.extend([(x + i) as f32 / 16.0, y as f32 / 10.0, ((x + y + 2 * i) % 7) as f32 / 7.0]);
            }
        }
    }
    (v, f, h, w)
}

#[test]
fn png_folder_round_trips() {
    let d = scratch("png");
    let (v, f, h, w) = frames();
    write_png_frames(&d.join("frames"), &v, f, h, w).unwrap();
    let r = read_video(&d.join("frames")).unwrap();
    assert_eq!((r.frames, r.height, r.width), (f, h, w));
    assert_eq!(r.rgb, to_u8_round(&v));
    assert_eq!(r.fps, None, "PNG frames carry no rate");
}

#[test]
fn gif_reads_back() {
    let d = scratch("gif");
    let (v, f, h, w) = frames();
    write_gif(&d.join("a.gif"), &v, f, h, w, 8).unwrap();
    let r = read_video(&d.join("a.gif")).unwrap();
    assert_eq!((r.frames, r.height, r.width), (f, h, w));
    let want = to_u8_round(&v);
    let max = r.rgb.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
    assert!(max <= 24, "GIF colours off by {max}");
    // Delays are whole centiseconds (13, 12, 13, …): the mean rate is 8 up to that rounding.
    let fps = r.fps.expect("a GIF's rate from its delays");
    assert!((fps - 8.0).abs() < 0.35, "GIF rate {fps}");
}

#[test]
fn t2v_mp4_reads_back() {
    let d = scratch("mp4");
    let (v, f, h, w) = frames();
    write_mp4(&d.join("a.mp4"), &v, f, h, w, 24).unwrap();
    let r = read_video(&d.join("a.mp4")).unwrap();
    assert_eq!((r.frames, r.height, r.width), (f, h, w));
    // The rate `score` hands dynamic_degree, from the track's timescale and sample times.
    assert!((r.fps.expect("an MP4's rate") - 24.0).abs() < 1e-9, "{:?}", r.fps);
    assert!(read_video(&d.join("missing.gif")).is_err());
}
