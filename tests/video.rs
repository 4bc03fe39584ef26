//! Video output: MP4 checked with an independent decoder (ffmpeg/ffprobe), GIF and PNG decoded
//! with the `gif`/`png` crates, and the temp-file-then-rename guarantees.
//!
//! The MP4 tests need ffmpeg on PATH (`apt-get install -y ffmpeg`); without it they fail and say
//! so, because a silently skipped decoder check would pass for a broken muxer.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use t2v::video::{self, Format};
use t2v::Error;

/// A fresh, empty directory for one test, removed when dropped.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let p = std::env::temp_dir().join(format!("t2v-video-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create test dir");
        TestDir(p)
    }
    fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Smooth animation in [0, 1]: colour waves (periods of 64–128 px) drifting across the frame at
/// a few pixels per frame — what VAE output looks like locally (no pixel noise), with motion.
/// Periods are in pixels, not fractions of the frame, so small frames are as smooth as big ones.
fn animation(f: usize, h: usize, w: usize) -> Vec<f32> {
    let tau = std::f32::consts::TAU;
    let mut v = Vec::with_capacity(f * h * w * 3);
    for t in 0..f {
        let t = t as f32;
        for y in 0..h {
            for x in 0..w {
                let (x, y) = (x as f32, y as f32);
                let a = tau * (x / 64.0 + y / 128.0 + t / 16.0);
                v.push(0.5 + 0.4 * a.sin());
                v.push(0.5 + 0.4 * (tau * (y / 96.0 - t / 24.0)).cos());
                v.push(0.5 + 0.35 * (0.5 * a + 1.0).cos());
            }
        }
    }
    v
}

fn require_ffmpeg() {
    for tool in ["ffmpeg", "ffprobe"] {
        let ok = Command::new(tool).arg("-version").output().map(|o| o.status.success()).unwrap_or(false);
        assert!(
            ok,
            "{tool} not found: the MP4 tests decode with an independent decoder. Install it: `apt-get install -y ffmpeg`"
        );
    }
}

fn ffprobe(path: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "warning", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(out.status.success() && out.stderr.is_empty(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

/// Decodes every frame to rgb24 with ffmpeg; any complaint, even a warning, fails the test.
fn ffmpeg_decode_rgb(path: &Path) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "warning", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success() && out.stderr.is_empty(), "ffmpeg decode: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn top_level_boxes(bytes: &[u8]) -> Vec<String> {
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let mut size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
        if size == 1 {
            size = u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        }
        boxes.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        assert!(size >= 8, "bad box size at {at}");
        at += size as usize;
    }
    assert_eq!(at, bytes.len(), "boxes do not tile the file");
    boxes
}

/// What 4:2:0 alone costs, measured with ffmpeg's own converter: rgb24 → yuv420p → rgb24.
/// The encoder's share of the error is what the MP4 adds on top.
fn ffmpeg_yuv420p_roundtrip(dir: &TestDir, rgb: &[u8], h: usize, w: usize) -> Vec<u8> {
    let (src, yuv) = (dir.join("roundtrip.rgb"), dir.join("roundtrip.yuv"));
    fs::write(&src, rgb).unwrap();
    let size = format!("{w}x{h}");
    let convert = |input: &Path, from: &str, to: &str| {
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-f", "rawvideo", "-pix_fmt", from, "-s", &size, "-i"])
            .arg(input)
            .args(["-f", "rawvideo", "-pix_fmt", to, "-"])
            .output()
            .expect("run ffmpeg");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    fs::write(&yuv, convert(&src, "rgb24", "yuv420p")).unwrap();
    let back = convert(&yuv, "yuv420p", "rgb24");
    fs::remove_file(src).unwrap();
    fs::remove_file(yuv).unwrap();
    back
}

/// (mean, max) absolute difference in /255 units.
fn errors(a: &[u8], b: &[u8]) -> (f64, u8) {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as u64).sum();
    let max = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y)).max().unwrap_or(0);
    (sum as f64 / a.len() as f64, max)
}

fn check_mp4(name: &str, f: usize, h: usize, w: usize, fps: u32) -> (f64, u8, u64) {
    require_ffmpeg();
    let dir = TestDir::new(name);
    let path = dir.join("clip.mp4");
    let frames = animation(f, h, w);
    video::write_mp4(&path, &frames, f, h, w, fps).expect("write mp4");
    assert_eq!(dir.entries(), ["clip.mp4"], "only the finished file remains");

    let bytes = fs::read(&path).unwrap();
    assert_eq!(top_level_boxes(&bytes), ["ftyp", "moov", "mdat"], "faststart layout");

    let info = ffprobe(
        &path,
        &[
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,profile,pix_fmt,width,height,r_frame_rate,avg_frame_rate,nb_frames,nb_read_frames,\
             color_space,color_range:format=duration,format_name",
        ],
    );
    let s = &info["streams"][0];
    assert_eq!(s["codec_name"], "h264", "{info}");
    assert_eq!(s["profile"], "Constrained Baseline", "{info}");
    assert_eq!(s["pix_fmt"], "yuv420p", "{info}");
    assert_eq!(s["width"], w, "{info}");
    assert_eq!(s["height"], h, "{info}");
    assert_eq!(s["r_frame_rate"], format!("{fps}/1"), "{info}");
    assert_eq!(s["avg_frame_rate"], format!("{fps}/1"), "{info}");
    assert_eq!(s["nb_frames"], f.to_string(), "{info}");
    assert_eq!(s["nb_read_frames"], f.to_string(), "{info}");
    assert_eq!(s["color_space"], "smpte170m", "{info}");
    assert_eq!(s["color_range"], "tv", "{info}");
    let duration: f64 = info["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - f as f64 / fps as f64).abs() < 1e-3, "duration {duration}");
    assert!(info["format"]["format_name"].as_str().unwrap().contains("mp4"), "{info}");

    let decoded = ffmpeg_decode_rgb(&path);
    assert_eq!(decoded.len(), f * h * w * 3, "decoded frame count/size");
    let want = video::to_u8_trunc(&frames);
    let (mae, max) = errors(&decoded, &want);
    let (floor, floor_max) = errors(&ffmpeg_yuv420p_roundtrip(&dir, &want, h, w), &want);
    let size = bytes.len() as u64;
    eprintln!(
        "{name}: {w}x{h} {f} frames @{fps}: MAE {mae:.3}/255 (4:2:0 alone {floor:.3}), max {max}/255 \
         (4:2:0 alone {floor_max}), {size} bytes"
    );
    // Below a macroblock the 4:2:0 floor itself can pass 3/255 (4x2: 2.8), so there only the
    // encoder's share is checked.
    if h >= 16 && w >= 16 {
        assert!(mae <= 3.0, "mean abs error {mae:.3}/255 > 3/255");
    }
    assert!(mae <= floor + 1.0, "H.264 adds {:.3}/255 mean error over 4:2:0 alone", mae - floor);
    assert!(max <= 40, "max abs error {max}/255 > 40/255");
    (mae, max, size)
}

#[test]
fn mp4_64x48_decodes_with_ffmpeg() {
    check_mp4("mp4-64x48", 8, 48, 64, 10);
}

/// Neither side a multiple of 16: the encoder pads internally and crops through the SPS.
#[test]
fn mp4_72x40_not_multiple_of_16() {
    check_mp4("mp4-72x40", 8, 40, 72, 10);
}

/// Zeroscope's 576×320 at 24 fps: a timescale that is not a power of ten (24·416 ticks/s).
#[test]
fn mp4_576x320_24fps() {
    check_mp4("mp4-576x320", 6, 320, 576, 24);
}

/// Sizes that are mostly padding: one visible 2-pixel strip of a macroblock row/column.
#[test]
fn mp4_small_sizes() {
    check_mp4("mp4-1frame", 1, 16, 16, 10);
    check_mp4("mp4-34x18", 3, 18, 34, 10);
    check_mp4("mp4-4x2", 3, 2, 4, 10);
}

/// Past 2 s the encoder inserts IDR frames; `stss` must list exactly those for seeking.
#[test]
fn mp4_keyframes_listed() {
    require_ffmpeg();
    let dir = TestDir::new("mp4-keyframes");
    let path = dir.join("long.mp4");
    let (f, h, w, fps) = (25, 32, 48, 5);
    video::write_mp4(&path, &animation(f, h, w), f, h, w, fps).unwrap();
    let info = ffprobe(&path, &["-select_streams", "v:0", "-show_entries", "frame=key_frame,pict_type"]);
    let frames = info["frames"].as_array().unwrap();
    assert_eq!(frames.len(), f);
    let keys: Vec<usize> = frames.iter().enumerate().filter(|(_, fr)| fr["key_frame"] == 1).map(|(i, _)| i).collect();
    assert_eq!(keys, [0, 10, 20], "an IDR every 2 s at 5 fps");
    // Seeking to 4.1 s must start decoding at the keyframe at 4.0 s and decode cleanly.
    let out = Command::new("ffmpeg")
        .args(["-v", "warning", "-xerror", "-ss", "4.1", "-i"])
        .arg(&path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), 4 * h * w * 3, "frames 21..24 after seeking to 2.1 s");
}

#[test]
fn mp4_is_reproducible() {
    let dir = TestDir::new("mp4-repro");
    let frames = animation(4, 32, 32);
    let (a, b) = (dir.join("a.mp4"), dir.join("b.mp4"));
    video::write_mp4(&a, &frames, 4, 32, 32, 10).unwrap();
    video::write_mp4(&b, &frames, 4, 32, 32, 10).unwrap();
    assert_eq!(fs::read(a).unwrap(), fs::read(b).unwrap());
}

#[test]
fn mp4_odd_sizes_are_clear_errors() {
    let dir = TestDir::new("mp4-odd");
    let path = dir.join("odd.mp4");
    let err = video::write_mp4(&path, &animation(2, 48, 65), 2, 48, 65, 10).unwrap_err().to_string();
    assert!(err.contains("65x48") && err.contains("even"), "{err}");
    let err = video::write_mp4(&path, &animation(2, 8, 7), 2, 8, 7, 10).unwrap_err().to_string();
    assert!(err.contains("7x8") && err.contains("even"), "{err}");
    assert!(dir.entries().is_empty(), "nothing written: {:?}", dir.entries());
}

#[test]
fn gif_decodes_with_gif_crate() {
    let dir = TestDir::new("gif");
    let path = dir.join("clip.gif");
    let (f, h, w, fps) = (8, 40, 72, 8);
    let frames = animation(f, h, w);
    video::write_gif(&path, &frames, f, h, w, fps).unwrap();
    assert_eq!(dir.entries(), ["clip.gif"]);

    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(fs::File::open(&path).unwrap()).unwrap();
    assert_eq!((dec.width() as usize, dec.height() as usize), (w, h));
    let want = video::to_u8_round(&frames);
    let mut delays = Vec::new();
    let mut got = Vec::new();
    while let Some(fr) = dec.read_next_frame().unwrap() {
        assert_eq!((fr.width as usize, fr.height as usize, fr.left, fr.top), (w, h, 0, 0));
        assert!(fr.palette.is_some(), "each frame carries its own palette");
        delays.push(fr.delay);
        got.extend(fr.buffer.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
    }
    assert_eq!(dec.repeat(), gif::Repeat::Infinite);
    assert_eq!(delays, [13, 12, 13, 12, 13, 12, 13, 12], "8 fps = 12.5 cs, error carried");
    let (mae, max) = errors(&got, &want);
    eprintln!("gif {w}x{h}: MAE {mae:.3}/255, max {max}/255, {} bytes", fs::metadata(&path).unwrap().len());
    // 256 colours per frame: NeuQuant lands near 5/255 per channel on smooth content.
    assert!(mae <= 7.0 && max <= 64, "GIF colours too far: MAE {mae:.3}, max {max}");
}

#[test]
fn gif_rejects_fps_it_cannot_play() {
    let dir = TestDir::new("gif-fps");
    let err = video::write_gif(&dir.join("x.gif"), &animation(2, 8, 8), 2, 8, 8, 60).unwrap_err().to_string();
    assert!(err.contains("50 fps") && err.contains("60"), "{err}");
    assert!(dir.entries().is_empty());
}

#[test]
fn png_frames_are_exact() {
    let dir = TestDir::new("png");
    let out = dir.join("frames");
    let (f, h, w) = (3, 21, 35);
    let frames = animation(f, h, w);
    let paths = video::write_png_frames(&out, &frames, f, h, w).unwrap();
    let names: Vec<_> = paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["frame_0000.png", "frame_0001.png", "frame_0002.png"]);
    let mut listing: Vec<_> = fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    listing.sort();
    assert_eq!(listing, ["frame_0000.png", "frame_0001.png", "frame_0002.png"], "no temp files left");

    let want = video::to_u8_round(&frames);
    for (i, p) in paths.iter().enumerate() {
        let dec = png::Decoder::new(std::io::BufReader::new(fs::File::open(p).unwrap()));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width as usize, info.height as usize), (w, h));
        assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
        assert_eq!(&buf[..info.buffer_size()], &want[i * h * w * 3..(i + 1) * h * w * 3], "frame {i}");
    }

    // Writing again into the now existing directory overwrites in place.
    video::write_png_frames(&out, &frames, f, h, w).unwrap();
    assert_eq!(fs::read_dir(&out).unwrap().count(), 3);
}

#[test]
fn write_picks_format_by_extension() {
    let dir = TestDir::new("dispatch");
    let frames = animation(2, 16, 16);
    assert_eq!(Format::from_path(&dir.join("a.MP4")).unwrap(), Format::Mp4);
    assert_eq!(Format::from_path(&dir.join("a.gif")).unwrap(), Format::Gif);
    assert_eq!(Format::from_path(&dir.join("frames")).unwrap(), Format::PngFrames);
    assert_eq!(Format::from_path(&dir.0).unwrap(), Format::PngFrames, "an existing directory");

    assert_eq!(video::write(&dir.join("a.mp4"), &frames, 2, 16, 16, 10).unwrap(), [dir.join("a.mp4")]);
    assert_eq!(fs::read(dir.join("a.mp4")).unwrap()[4..8], *b"ftyp");
    assert_eq!(video::write(&dir.join("a.gif"), &frames, 2, 16, 16, 10).unwrap(), [dir.join("a.gif")]);
    assert_eq!(fs::read(dir.join("a.gif")).unwrap()[..6], *b"GIF89a");
    let pngs = video::write(&dir.join("frames"), &frames, 2, 16, 16, 10).unwrap();
    assert_eq!(pngs, [dir.join("frames/frame_0000.png"), dir.join("frames/frame_0001.png")]);

    assert_eq!(Format::from_path(&dir.join("a.npy")).unwrap(), Format::Npy);
    assert_eq!(video::write(&dir.join("a.npy"), &frames, 2, 16, 16, 10).unwrap(), [dir.join("a.npy")]);

    let err = video::write(&dir.join("a.webm"), &frames, 2, 16, 16, 10).unwrap_err().to_string();
    assert!(err.contains("a.webm") && err.contains(".mp4") && err.contains(".gif"), "{err}");
    assert!(!dir.join("a.webm").exists());
}

#[test]
fn npy_holds_the_exact_floats() {
    // NumPy format 1.0: magic, version, u16 header length, a dict literal padded with spaces and
    // ended by '\n' so the data starts at a multiple of 64 bytes, then little-endian f32.
    let dir = TestDir::new("npy");
    let frames = animation(3, 8, 10);
    video::write_npy(&dir.join("f.npy"), &frames, 3, 8, 10).unwrap();
    let b = fs::read(dir.join("f.npy")).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0);
    let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
    assert_eq!(header.trim_end(), "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 8, 10, 3), }");
    assert!(header.ends_with('\n'));
    let data: Vec<f32> = b[10 + hlen..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(data, frames);
    assert!(video::write_npy(&dir.join("g.npy"), &frames, 3, 8, 11).is_err(), "size mismatch");
    assert!(!dir.join("g.npy").exists());
}

#[test]
fn u8_conversion_matches_diffusers() {
    // export_to_video: (x*255).astype(uint8) truncates; numpy_to_pil rounds half to even.
    let x = [0.0, 0.5, 0.999, 1.0, 1.0 / 255.0, -0.25, 1.5, f32::NAN];
    assert_eq!(video::to_u8_trunc(&x), [0, 127, 254, 255, 1, 0, 255, 0]);
    assert_eq!(video::to_u8_round(&x), [0, 128, 255, 255, 1, 0, 255, 0]);
    // 2.5 → 2 (half to even), 3.5 → 4.
    assert_eq!(video::to_u8_round(&[2.5 / 255.0, 3.5 / 255.0]), [2, 4]);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = TestDir::new("bad-inputs");
    let p = dir.join("x.mp4");
    let g = dir.join("x.gif");
    let frames = animation(2, 8, 8);
    let msg = |r: t2v::Result<()>| r.unwrap_err().to_string();

    let e = msg(video::write_mp4(&p, &[], 0, 8, 8, 10));
    assert!(e.contains("no frames"), "{e}");
    let e = msg(video::write_mp4(&p, &frames, 3, 8, 8, 10));
    assert!(e.contains("384") && e.contains("3·8·8·3 = 576"), "{e}");
    let e = msg(video::write_gif(&g, &frames, 2, 8, 8, 0));
    assert!(e.contains("fps"), "{e}");
    let e = msg(video::write_mp4(&p, &frames, 2, 0, 8, 10));
    assert!(e.contains("8x0"), "{e}");
    let e = msg(video::write_gif(&g, &frames, usize::MAX, 8, 8, 10));
    assert!(e.contains("overflows"), "{e}");
    let e = video::write_png_frames(&dir.join("pngs"), &frames, 2, 8, 7).unwrap_err().to_string();
    assert!(e.contains("F·H·W·3"), "{e}");
    assert!(dir.entries().is_empty(), "no output for bad input: {:?}", dir.entries());
}

#[test]
fn missing_directory_errors_and_leaves_nothing() {
    let dir = TestDir::new("missing-dir");
    let frames = animation(2, 16, 16);
    for name in ["nope/clip.mp4", "nope/clip.gif", "nope/frames"] {
        let err = video::write(&dir.join(name), &frames, 2, 16, 16, 10).unwrap_err().to_string();
        assert!(err.contains("nope"), "{name}: {err}");
        assert!(dir.entries().is_empty(), "{name}: left {:?}", dir.entries());
    }
}

/// What a CLI calls before generating: the same checks the writers make, without any frames.
#[test]
fn output_path_checked_up_front() {
    let dir = TestDir::new("check-path");
    assert_eq!(video::check_output_path(&dir.join("a.mp4")).unwrap(), Format::Mp4);
    assert_eq!(video::check_output_path(&dir.join("frames")).unwrap(), Format::PngFrames);
    let err = video::check_output_path(&dir.join("nope/a.gif")).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("does not exist"), "{err}");
    let err = video::check_output_path(&dir.join("a.avi")).unwrap_err().to_string();
    assert!(err.contains(".avi"), "{err}");
    fs::create_dir(dir.join("d.gif")).unwrap();
    let err = video::check_output_path(&dir.join("d.gif")).unwrap_err().to_string();
    assert!(err.contains("is a directory"), "{err}");
}

#[test]
fn output_path_that_is_a_directory_errors() {
    let dir = TestDir::new("is-dir");
    fs::create_dir(dir.join("clip.mp4")).unwrap();
    let err = video::write_mp4(&dir.join("clip.mp4"), &animation(2, 16, 16), 2, 16, 16, 10).unwrap_err().to_string();
    assert!(err.contains("directory"), "{err}");
    assert_eq!(dir.entries(), ["clip.mp4"]);
    assert!(fs::read_dir(dir.join("clip.mp4")).unwrap().next().is_none());
}

/// A writer that fails half way leaves neither a partial output nor its temporary file, and a
/// file already at the destination keeps its old contents.
#[test]
fn failed_write_leaves_no_partial_file() {
    let dir = TestDir::new("atomic");
    let path = dir.join("out.mp4");
    let fail = |w: &mut dyn Write| -> t2v::Result<()> {
        w.write_all(&[7u8; 100_000]).unwrap();
        Err(Error::Other("encoder gave up half way".into()))
    };
    let err = video::write_atomic(&path, fail).unwrap_err().to_string();
    assert!(err.contains("half way"), "{err}");
    assert!(dir.entries().is_empty(), "left behind: {:?}", dir.entries());

    fs::write(&path, b"previous video").unwrap();
    video::write_atomic(&path, fail).unwrap_err();
    assert_eq!(fs::read(&path).unwrap(), b"previous video");
    assert_eq!(dir.entries(), ["out.mp4"]);

    video::write_atomic(&path, |w| w.write_all(b"new").map_err(|e| Error::Other(e.to_string()))).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new");
    assert_eq!(dir.entries(), ["out.mp4"]);
}
