//! Video input for video-to-video: an MP4 (H.264, decoded in process), an animated GIF, or a
//! folder of PNG frames → (F, H, W, 3) u8 RGB frames.

use super::{decode, demux::CONVERT_HINT, resize};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Decoded frames, (F, H, W, 3) u8 RGB.
#[derive(Debug, Clone)]
pub struct InputVideo {
    pub rgb: Vec<u8>,
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    /// Frames per second where the file says (an MP4's track, a GIF's mean frame delay).
    pub fps: Option<f64>,
}

impl InputVideo {
    /// Builds one from frames that must all have the same size; `what` names the source.
    pub fn from_frames(what: &str, frames: Vec<(usize, usize, Vec<u8>)>) -> Result<InputVideo> {
        let Some(&(h, w, _)) = frames.first() else {
            return Err(Error::Other(format!("{what}: the video has no frames")));
        };
        let mut rgb = Vec::with_capacity(frames.len() * h * w * 3);
        for (i, (fh, fw, px)) in frames.iter().enumerate() {
            if (*fh, *fw) != (h, w) {
                return Err(Error::Other(format!("{what}: frame {i} is {fw}x{fh} but frame 0 is {w}x{h}; all frames must have one size")));
            }
            rgb.extend_from_slice(px);
        }
        Ok(InputVideo { rgb, frames: frames.len(), height: h, width: w, fps: None })
    }

    /// Every frame resized to (h, w) with PIL's bicubic `Image.resize` (unchanged if it is the
    /// size already).
    pub fn resized(&self, h: usize, w: usize) -> InputVideo {
        if (h, w) == (self.height, self.width) {
            return self.clone();
        }
        let n = self.height * self.width * 3;
        let rgb = self.rgb.chunks_exact(n).flat_map(|f| resize::resize_bicubic(f, self.height, self.width, h, w)).collect();
        InputVideo { rgb, frames: self.frames, height: h, width: w, fps: self.fps }
    }

    /// The first `n` frames (all of them if there are fewer).
    pub fn truncated(mut self, n: usize) -> InputVideo {
        if n < self.frames {
            self.rgb.truncate(n * self.height * self.width * 3);
            self.frames = n;
        }
        self
    }

    /// Frame `i` as diffusers' video processor gives it to the VAE: u8 / 255 → [0, 1] → 2x − 1,
    /// laid out (3, H, W).
    pub fn frame_pixels(&self, i: usize) -> Vec<f32> {
        let plane = self.height * self.width;
        let src = &self.rgb[i * plane * 3..(i + 1) * plane * 3];
        let mut out = vec![0f32; 3 * plane];
        for p in 0..plane {
            for c in 0..3 {
                out[c * plane + p] = 2.0 * (src[p * 3 + c] as f32 / 255.0) - 1.0;
            }
        }
        out
    }

    /// Frames from the pipeline's float output ((F, H, W, 3) in [0, 1]) as diffusers'
    /// `output_type="pil"` gives them (`numpy_to_pil`: ×255, round half to even).
    pub fn from_pipeline_frames(data: &[f32], frames: usize, height: usize, width: usize) -> InputVideo {
        InputVideo { rgb: super::to_u8_round(data), frames, height, width, fps: None }
    }
}

/// Reads `path`: `.mp4`/`.m4v`/`.mov` (H.264), `.gif`, or a directory of `.png` frames in name
/// order.
pub fn read_video(path: &Path) -> Result<InputVideo> {
    let what = path.display().to_string();
    let err = |msg: String| Error::Other(format!("{what}: {msg}"));
    if path.is_dir() {
        return read_png_dir(path);
    }
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let data = std::fs::read(path).map_err(|e| err(format!("could not read: {e}")))?;
    match ext.as_str() {
        "mp4" | "m4v" | "mov" => {
            let (pics, fps) = decode::decode_mp4_with_rate(&data).map_err(err)?;
            let v = InputVideo::from_frames(&what, pics.iter().map(|p| (p.height, p.width, p.to_rgb())).collect())?;
            Ok(InputVideo { fps, ..v })
        }
        "gif" => {
            let fps = gif_rate(&data);
            read_gif(&data).map_err(err).and_then(|f| InputVideo::from_frames(&what, f)).map(|v| InputVideo { fps, ..v })
        }
        "png" => {
            let f = read_png(&data).map_err(err)?;
            InputVideo::from_frames(&what, vec![f])
        }
        _ => Err(err(format!("cannot read '.{ext}' as a video; give an .mp4 (H.264), a .gif, or a folder of .png frames ({CONVERT_HINT})"))),
    }
}

fn read_png_dir(dir: &Path) -> Result<InputVideo> {
    let what = dir.display().to_string();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Other(format!("{what}: could not list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Other(format!("{what}: no .png frames in this folder")));
    }
    let frames = files
        .iter()
        .map(|p| {
            let data = std::fs::read(p).map_err(|e| Error::Other(format!("{}: could not read: {e}", p.display())))?;
            read_png(&data).map_err(|m| Error::Other(format!("{}: {m}", p.display())))
        })
        .collect::<Result<Vec<_>>>()?;
    InputVideo::from_frames(&what, frames)
}

/// Largest frame accepted (pixels): a corrupt header must not make us allocate gigabytes.
const MAX_PIXELS: u64 = 8192 * 8192;

/// One PNG → (h, w, RGB). Palette, grey and 16-bit images are expanded/reduced to 8-bit RGB and
/// alpha dropped, as PIL's `convert("RGB")` does.
pub fn read_png(data: &[u8]) -> std::result::Result<(usize, usize, Vec<u8>), String> {
    let mut dec = ::png::Decoder::new(std::io::Cursor::new(data));
    dec.set_transformations(::png::Transformations::normalize_to_color8());
    let mut reader = dec.read_info().map_err(|e| format!("not a readable PNG: {e}"))?;
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    if (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(format!("{w}x{h} is larger than t2v reads"));
    }
    let size = reader.output_buffer_size().ok_or("PNG too large")?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| format!("corrupt PNG data: {e}"))?;
    let (ct, line) = (info.color_type, info.line_size);
    let mut rgb = Vec::with_capacity(w * h * 3);
    for r in 0..h {
        let row = buf.get(r * line..r * line + line).ok_or("short PNG data")?;
        for c in 0..w {
            let px = match ct {
                ::png::ColorType::Rgb => [row[c * 3], row[c * 3 + 1], row[c * 3 + 2]],
                ::png::ColorType::Rgba => [row[c * 4], row[c * 4 + 1], row[c * 4 + 2]],
                ::png::ColorType::Grayscale => [row[c]; 3],
                ::png::ColorType::GrayscaleAlpha => [row[c * 2]; 3],
                ::png::ColorType::Indexed => return Err("palette PNG was not expanded".into()),
            };
            rgb.extend_from_slice(&px);
        }
    }
    Ok((h, w, rgb))
}

/// A GIF's frame rate: 100 over its mean frame delay in centiseconds (None without delays).
fn gif_rate(data: &[u8]) -> Option<f64> {
    let mut dec = ::gif::DecodeOptions::new().read_info(std::io::Cursor::new(data)).ok()?;
    let (mut sum, mut n) = (0u64, 0u64);
    while let Ok(Some(f)) = dec.next_frame_info() {
        sum += f.delay as u64;
        n += 1;
    }
    (n > 0 && sum > 0).then(|| 100.0 * n as f64 / sum as f64)
}

/// An animated GIF → full frames: each frame drawn over the canvas at its position (transparent
/// pixels keep what is below), then disposed as it says (keep, clear to transparent, or restore
/// the previous canvas). Transparent canvas pixels read as black.
pub fn read_gif(data: &[u8]) -> std::result::Result<Vec<(usize, usize, Vec<u8>)>, String> {
    let mut opts = ::gif::DecodeOptions::new();
    opts.set_color_output(::gif::ColorOutput::RGBA);
    // The decoder allocates each frame's buffer up front: bound it like the canvas.
    opts.set_memory_limit(::gif::MemoryLimit::Bytes(std::num::NonZeroU64::new(4 * MAX_PIXELS).ok_or("limit")?));
    let mut dec = opts.read_info(std::io::Cursor::new(data)).map_err(|e| format!("not a readable GIF: {e}"))?;
    let (w, h) = (dec.width() as usize, dec.height() as usize);
    if w == 0 || h == 0 || (w * h) as u64 > MAX_PIXELS {
        return Err(format!("GIF canvas is {w}x{h}, outside what t2v reads"));
    }
    let mut canvas = vec![0u8; w * h * 4];
    let mut out = Vec::new();
    while let Some(f) = dec.read_next_frame().map_err(|e| format!("corrupt GIF frame {}: {e}", out.len()))? {
        let (fl, ft, fw, fh) = (f.left as usize, f.top as usize, f.width as usize, f.height as usize);
        let saved = (f.dispose == ::gif::DisposalMethod::Previous).then(|| canvas.clone());
        for r in 0..fh {
            for c in 0..fw {
                let (y, x) = (ft + r, fl + c);
                let Some(src) = f.buffer.get((r * fw + c) * 4..(r * fw + c) * 4 + 4) else { continue };
                if y < h && x < w && src[3] != 0 {
                    canvas[(y * w + x) * 4..(y * w + x) * 4 + 4].copy_from_slice(src);
                }
            }
        }
        out.push((h, w, canvas.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect()));
        match f.dispose {
            ::gif::DisposalMethod::Background => {
                for y in ft..(ft + fh).min(h) {
                    for x in fl..(fl + fw).min(w) {
                        canvas[(y * w + x) * 4..(y * w + x) * 4 + 4].fill(0);
                    }
                }
            }
            ::gif::DisposalMethod::Previous => {
                if let Some(s) = saved {
                    canvas = s;
                }
            }
            _ => {}
        }
        if out.len() as u64 * (w * h) as u64 > 4 * MAX_PIXELS {
            return Err("the GIF has more pixels than t2v reads".into());
        }
    }
    Ok(out)
}
