//! Video-to-video input: PIL's bicubic resize bit for bit, MP4 (H.264) decoded in process and
//! compared with ffmpeg's decode of the same file (planes bit for bit, RGB within a stated
//! bound), GIF compared with ffmpeg's, and clear errors for bad input.

mod common;
use common::fixtures::{dump_at, fixtures};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use t2v::video::{self, decode_mp4, read_video, resize_bicubic};

/// The planes are compared bit for bit; RGB is a convention on top. Ours is the exact BT.601
/// limited-range inverse, rounded (the inverse of t2v's own writer), each chroma sample over
/// its 2×2 block; ffmpeg's default rgb24 (swscale's fixed-point yuv2rgb tables, also nearest
/// chroma) lands below it by 1.0–1.5 levels on average. Measured on these files: max |Δ| 3, on
/// 0.7 % of values; most values differ by 1.
const RGB_TOL: u8 = 3;

struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let p = std::env::temp_dir().join(format!("t2v-video-input-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create test dir");
        TestDir(p)
    }
    fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// ffmpeg's decode as raw frames; "native" leaves the decoder's own format (the planes as
/// decoded: asking for yuv420p would convert a full-range stream to limited range).
fn ffmpeg_raw(path: &Path, pix_fmt: &str) -> Vec<u8> {
    let fmt: &[&str] = if pix_fmt == "native" { &[] } else { &["-pix_fmt", pix_fmt] };
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo"])
        .args(fmt)
        .arg("-")
        .output()
        .expect("run ffmpeg (apt-get install -y ffmpeg)");
    assert!(out.status.success(), "ffmpeg decode {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn resize_matches_pil_bicubic_exactly() {
    let d = dump_at(&fixtures().join("v2v/resize.safetensors"), "resize");
    let sizes: Vec<[usize; 4]> = serde_json::from_str(&d.meta["cases"]).unwrap();
    for (i, [sh, sw, dh, dw]) in sizes.into_iter().enumerate() {
        let src: Vec<u8> = d.want(&format!("{i}.src")).iter().map(|&v| v as u8).collect();
        let want: Vec<u8> = d.want(&format!("{i}.dst")).iter().map(|&v| v as u8).collect();
        let got = resize_bicubic(&src, sh, sw, dh, dw);
        let diff = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 0, "{sw}x{sh} → {dw}x{dh}: {diff} of {} values differ from PIL", want.len());
    }
}

/// Our decode of `path` against ffmpeg's: every plane bit for bit, RGB within RGB_TOL.
fn check_mp4(path: &Path) -> (usize, u8) {
    let data = fs::read(path).unwrap();
    let pics = decode_mp4(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (w, h) = (pics[0].width, pics[0].height);
    let yuv = ffmpeg_raw(path, "native");
    let frame = w * h + 2 * w.div_ceil(2) * h.div_ceil(2);
    assert_eq!(yuv.len(), pics.len() * frame, "{}: ffmpeg decodes {} frames, t2v {}", path.display(), yuv.len() / frame, pics.len());
    for (i, p) in pics.iter().enumerate() {
        let mine: Vec<u8> = [&p.y[..], &p.u[..], &p.v[..]].concat();
        assert!(mine == yuv[i * frame..(i + 1) * frame], "{}: frame {i}'s planes differ from ffmpeg's", path.display());
    }
    let rgb = ffmpeg_raw(path, "rgb24");
    let ours = read_video(path).unwrap();
    assert_eq!((ours.frames, ours.height, ours.width), (pics.len(), h, w));
    let worst = ours.rgb.iter().zip(&rgb).map(|(&a, &b)| a.abs_diff(b)).max().unwrap();
    assert!(worst <= RGB_TOL, "{}: RGB differs from ffmpeg's rgb24 by {worst} (bound {RGB_TOL})", path.display());
    (pics.len(), worst)
}

#[test]
fn mp4_decodes_as_ffmpeg_does() {
    let mut report = Vec::new();
    // libx264 High (CABAC, B-frames), Baseline, and Main with B-frames, as ffmpeg and phones write.
    for name in ["high.mp4", "baseline.mp4", "main.mp4"] {
        let (n, worst) = check_mp4(&fixtures().join("v2v").join(name));
        report.push(format!("{name}: {n} frames, planes exact, RGB max |Δ| {worst}"));
    }
    // t2v's own MP4 (Constrained Baseline, cropped from whole macroblocks).
    let dir = TestDir::new("own");
    let (f, h, w) = (3, 40, 72);
    let frames: Vec<f32> = (0..f * h * w * 3).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 * 0.5 + 0.25 * ((i / 3 % w) as f32 / w as f32)).collect();
    let path = dir.join("own.mp4");
    video::write_mp4(&path, &frames, f, h, w, 8).unwrap();
    let (n, worst) = check_mp4(&path);
    assert_eq!(n, f);
    report.push(format!("t2v's own 72x40: {n} frames, planes exact, RGB max |Δ| {worst}"));
    // Tagged streams as phones write them: BT.709 (limited range), and full range.
    for (name, tags) in [("bt709.mp4", &["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709"][..]), ("full.mp4", &["-color_range", "pc"][..])] {
        let src = fixtures().join("v2v/input/frame_%03d.png");
        let out = Command::new("ffmpeg").args(["-v", "error", "-y", "-i"]).arg(&src).args(["-c:v", "libx264", "-pix_fmt", "yuv420p"]).args(tags).arg(dir.join(name)).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (n, worst) = check_mp4(&dir.join(name));
        let pics = decode_mp4(&fs::read(dir.join(name)).unwrap()).unwrap();
        report.push(format!("{name} (matrix {}, full range {}): {n} frames, planes exact, RGB max |Δ| {worst}", pics[0].matrix, pics[0].full_range));
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn gif_and_png_folder_read_as_ffmpeg_reads_them() {
    let gif = fixtures().join("v2v/input.gif");
    let ours = read_video(&gif).unwrap();
    let want = ffmpeg_raw(&gif, "rgb24");
    assert_eq!(ours.rgb.len(), want.len(), "GIF: {} frames of {}x{}", ours.frames, ours.width, ours.height);
    let worst = ours.rgb.iter().zip(&want).map(|(&a, &b)| a.abs_diff(b)).max().unwrap();
    assert_eq!(worst, 0, "GIF frames differ from ffmpeg's decode by {worst}");
    let png = read_video(&fixtures().join("v2v/input")).unwrap();
    let want: Vec<u8> = (0..3).flat_map(|i| ffmpeg_raw(&fixtures().join(format!("v2v/input/frame_{i:03}.png")), "rgb24")).collect();
    assert!(png.rgb == want, "PNG folder differs from ffmpeg's decode");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = TestDir::new("bad");
    let err = |p: &Path| read_video(p).unwrap_err().to_string();
    // An empty folder, and a folder of frames of two sizes.
    fs::create_dir(dir.join("empty")).unwrap();
    let e = err(&dir.join("empty"));
    assert!(e.contains("no .png frames"), "{e}");
    fs::create_dir(dir.join("mixed")).unwrap();
    video::write_png_frames(&dir.join("mixed"), &vec![0.5; 8 * 8 * 3], 1, 8, 8).unwrap();
    video::write_png_frames(&dir.join("mixed/b"), &vec![0.5; 8 * 16 * 3], 1, 8, 16).unwrap();
    fs::rename(dir.join("mixed/b/frame_0000.png"), dir.join("mixed/frame_0001.png")).unwrap();
    let e = err(&dir.join("mixed"));
    assert!(e.contains("frame 1 is 16x8 but frame 0 is 8x8"), "{e}");
    // A corrupt MP4: the media data overwritten, and the file cut short.
    let good = fs::read(fixtures().join("v2v/high.mp4")).unwrap();
    let mdat = good.windows(4).position(|w| w == b"mdat").unwrap();
    let size = u32::from_be_bytes(good[mdat - 4..mdat].try_into().unwrap()) as usize;
    let mut bad = good.clone();
    for (i, b) in bad[mdat + 4..mdat - 4 + size].iter_mut().enumerate() {
        *b = (i * 37 % 251) as u8;
    }
    fs::write(dir.join("garbage.mp4"), &bad).unwrap();
    let e = err(&dir.join("garbage.mp4"));
    assert!(e.contains("garbage.mp4") && (e.contains("decoder failed") || e.contains("no picture") || e.contains("NAL")), "{e}");
    fs::write(dir.join("cut.mp4"), &good[..good.len() / 2]).unwrap();
    let e = err(&dir.join("cut.mp4"));
    assert!(e.contains("cut.mp4") && (e.contains("claims") || e.contains("outside the file") || e.contains("truncated")), "{e}");
    fs::write(dir.join("text.mp4"), b"this is not a video at all").unwrap();
    let e = err(&dir.join("text.mp4"));
    assert!(e.contains("text.mp4:"), "{e}");
    // An MP4 with a video track but no samples.
    let moov_empty = empty_track_mp4(&good);
    fs::write(dir.join("noframes.mp4"), &moov_empty).unwrap();
    let e = err(&dir.join("noframes.mp4"));
    assert!(e.contains("no frames"), "{e}");
    // Another codec: the error says how to convert it.
    let src = fixtures().join("v2v/input/frame_%03d.png");
    let out = Command::new("ffmpeg").args(["-v", "error", "-y", "-i"]).arg(&src).args(["-c:v", "mpeg4"]).arg(dir.join("mpeg4.mp4")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e = err(&dir.join("mpeg4.mp4"));
    assert!(e.contains("not H.264") && e.contains("ffmpeg -i INPUT -c:v libx264"), "{e}");
    // Other file types.
    let e = err(Path::new("clip.webm"));
    assert!(e.contains("clip.webm"), "{e}");
}

/// `mp4` with its sample size table emptied (count 0, every other table kept).
fn empty_track_mp4(mp4: &[u8]) -> Vec<u8> {
    let mut v = mp4.to_vec();
    let at = v.windows(4).position(|w| w == b"stsz").unwrap();
    // stsz body: version/flags, sample_size, sample_count
    v[at + 8..at + 16].fill(0);
    v
}

