//! Reading videos back as 8-bit RGB frames, for `t2v score` (videos made by anything) and
//! `t2v compare`: animated GIF (composited as browsers show it: frame offsets, transparency,
//! disposal) and folders of PNG frames (sorted by name). MP4 is not read yet.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Decoded frames: (F, H, W, 3) u8, row-major RGB.
#[derive(Debug, Clone)]
pub struct VideoFrames {
    pub rgb: Vec<u8>,
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    /// Frames per second when the container says (GIF delays); None for PNG folders.
    pub fps: Option<f64>,
}

/// Every frame of the video at `path`: a `.gif`, or a folder of `.png` frames.
pub fn read_frames(path: &Path) -> Result<VideoFrames> {
    if path.is_dir() {
        return read_png_dir(path);
    }
    match path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).as_deref() {
        Some("gif") => read_gif(path),
        Some("mp4") | Some("m4v") | Some("mov") => Err(Error::Other(format!(
            "{}: MP4 input not supported yet; convert it to PNG frames (`ffmpeg -i {} frames/%04d.png`) or a GIF and score that",
            path.display(),
            path.display()
        ))),
        _ => Err(Error::Other(format!("{}: cannot read this as a video; give a .gif or a folder of .png frames", path.display()))),
    }
}

fn err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Other(format!("{}: {msg}", path.display()))
}

fn read_gif(path: &Path) -> Result<VideoFrames> {
    let file = std::fs::File::open(path).map_err(|e| err(path, e))?;
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(std::io::BufReader::new(file)).map_err(|e| err(path, format!("not a GIF: {e}")))?;
    let (w, h) = (dec.width() as usize, dec.height() as usize);
    // The canvas starts transparent; what is never painted shows as black.
    let mut canvas = vec![0u8; w * h * 4];
    let mut rgb = Vec::new();
    let (mut frames, mut delay_cs) = (0usize, 0u64);
    while let Some(frame) = dec.read_next_frame().map_err(|e| err(path, format!("frame {frames}: {e}")))? {
        let saved = (frame.dispose == gif::DisposalMethod::Previous).then(|| canvas.clone());
        let (fl, ft, fw, fh) = (frame.left as usize, frame.top as usize, frame.width as usize, frame.height as usize);
        for y in 0..fh {
            for x in 0..fw {
                let (cx, cy) = (fl + x, ft + y);
                let s = (y * fw + x) * 4;
                if cx >= w || cy >= h || frame.buffer[s + 3] == 0 {
                    continue;
                }
                canvas[(cy * w + cx) * 4..][..4].copy_from_slice(&frame.buffer[s..s + 4]);
            }
        }
        rgb.extend(canvas.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
        frames += 1;
        delay_cs += frame.delay as u64;
        match frame.dispose {
            gif::DisposalMethod::Background => {
                for y in ft..(ft + fh).min(h) {
                    for x in fl..(fl + fw).min(w) {
                        canvas[(y * w + x) * 4..][..4].fill(0);
                    }
                }
            }
            gif::DisposalMethod::Previous => canvas = saved.unwrap_or(canvas),
            _ => {}
        }
    }
    if frames == 0 {
        return Err(err(path, "the GIF has no frames"));
    }
    let fps = (delay_cs > 0).then(|| frames as f64 * 100.0 / delay_cs as f64);
    Ok(VideoFrames { rgb, frames, height: h, width: w, fps })
}

fn read_png_dir(dir: &Path) -> Result<VideoFrames> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(err(dir, "no .png frames in this folder"));
    }
    let mut out = VideoFrames { rgb: Vec::new(), frames: 0, height: 0, width: 0, fps: None };
    for p in &files {
        let (px, h, w) = read_png(p)?;
        if out.frames == 0 {
            (out.height, out.width) = (h, w);
        } else if (h, w) != (out.height, out.width) {
            return Err(err(p, format!("is {w}×{h} but the first frame is {}×{}", out.width, out.height)));
        }
        out.rgb.extend(px);
        out.frames += 1;
    }
    Ok(out)
}

/// One PNG as RGB u8 (palette, grey, 16-bit and alpha are converted; alpha is dropped).
fn read_png(path: &Path) -> Result<(Vec<u8>, usize, usize)> {
    let file = std::fs::File::open(path).map_err(|e| err(path, e))?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(file));
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = dec.read_info().map_err(|e| err(path, format!("not a PNG: {e}")))?;
    let size = reader.output_buffer_size().ok_or_else(|| err(path, "image too large"))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| err(path, e))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Indexed => return Err(err(path, "palette PNG was not expanded")),
    };
    let data = &buf[..info.line_size * h];
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let line = &data[y * info.line_size..][..w * channels];
        for px in line.chunks_exact(channels) {
            match channels {
                1 | 2 => rgb.extend([px[0]; 3]),
                _ => rgb.extend(&px[..3]),
            }
        }
    }
    Ok((rgb, h, w))
}
