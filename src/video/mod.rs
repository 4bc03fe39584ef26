//! Video output: MP4 (H.264), animated GIF, a directory of PNG frames, or the raw frames as a
//! NumPy `.npy` array (float32, (F, H, W, 3) — diffusers' `output_type="np"` without the batch
//! axis, for measuring against other implementations without 8-bit quantisation).
//!
//! Frames arrive as the pipeline's `output_type="np"` result for one batch item: `f32` in
//! layout (F, H, W, 3), values in [0, 1] (`(x/2+0.5).clamp(0,1)` of the VAE output).
//!
//! Two quantisations to u8, each matching the diffusers path a user would compare against:
//! - MP4: `export_to_video` does `(frame * 255).astype(np.uint8)`, i.e. **truncation**.
//! - GIF and PNG: these come from PIL images in diffusers (`output_type="pil"` →
//!   `numpy_to_pil`: `(images * 255).round().astype("uint8")`), i.e. **round half to even**.
//!
//! Every output file is written under a temporary name in its destination directory and renamed
//! into place only once complete ([`write_atomic`]), so a failure never leaves a half-written
//! file where a finished one is expected.

mod gif;
mod h264;
mod mp4;
mod png;
mod read;
mod sps;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

pub use h264::QP;
pub use read::{read_frames, VideoFrames};

/// diffusers' `export_to_video(fps=10)` default.
pub const DEFAULT_FPS: u32 = 10;

/// Output container, chosen from the path by [`Format::from_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mp4,
    Gif,
    PngFrames,
    Npy,
}

impl Format {
    /// `.mp4` → MP4, `.gif` → GIF (case-insensitive; the name decides even if a directory has
    /// it, and writing then fails); an existing directory or a path without an extension → a
    /// directory of PNG frames. Anything else is an error naming what is supported,
    /// rather than a guess that would write, say, H.264 into a file called `out.webm`.
    pub fn from_path(path: &Path) -> Result<Format> {
        match path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()) {
            Some(ext) if ext == "mp4" => Ok(Format::Mp4),
            Some(ext) if ext == "gif" => Ok(Format::Gif),
            Some(ext) if ext == "npy" => Ok(Format::Npy),
            None => Ok(Format::PngFrames),
            Some(_) if path.is_dir() => Ok(Format::PngFrames),
            Some(ext) => Err(Error::Other(format!(
                "{}: cannot write video as '.{ext}'; use a .mp4, .gif or .npy path, or a directory (no extension) for \
                 PNG frames",
                path.display()
            ))),
        }
    }
}

/// Checks that `path` can take an output: a known format, an existing parent directory, and
/// for a file no directory in its place. The writers check this before encoding; a caller that
/// generates for minutes should check it before generating, so a typo costs nothing.
pub fn check_output_path(path: &Path) -> Result<Format> {
    let format = Format::from_path(path)?;
    check_parent(path)?;
    if format != Format::PngFrames && path.is_dir() {
        return Err(Error::Other(format!("{}: is a directory; give a file path", path.display())));
    }
    Ok(format)
}

/// Writes `frames` (F, H, W, 3) in [0, 1] to `path` in the format its extension names (see
/// [`Format::from_path`]); `fps` is ignored for PNG frames. Returns the files written.
pub fn write(path: &Path, frames: &[f32], f: usize, h: usize, w: usize, fps: u32) -> Result<Vec<PathBuf>> {
    match Format::from_path(path)? {
        Format::Mp4 => write_mp4(path, frames, f, h, w, fps).map(|()| vec![path.to_path_buf()]),
        Format::Gif => write_gif(path, frames, f, h, w, fps).map(|()| vec![path.to_path_buf()]),
        Format::PngFrames => write_png_frames(path, frames, f, h, w),
        Format::Npy => write_npy(path, frames, f, h, w).map(|()| vec![path.to_path_buf()]),
    }
}

/// The frames as a NumPy array file (format 1.0, little-endian float32, shape (F, H, W, 3)).
pub fn write_npy(path: &Path, frames: &[f32], f: usize, h: usize, w: usize) -> Result<()> {
    check_frames(path, frames, f, h, w)?;
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({f}, {h}, {w}, 3), }}");
    // magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64 bytes
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * frames.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    frames.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
    write_atomic(path, |out| out.write_all(&bytes).map_err(|e| io_err(path, "write", e)))
}

/// H.264 (Constrained Baseline, yuv420p, BT.601 limited range) in an MP4 with the index before
/// the media data, so browsers can start playing before the whole file has arrived.
///
/// Width and height must be even: 4:2:0 chroma covers 2×2 luma pixels and the SPS can only crop
/// whole chroma samples. Odd sizes are refused rather than padded, so the video always has
/// exactly the generated size (diffusion sizes are multiples of 8 anyway). Any even size works,
/// down to 2×2: frames are padded to whole 16×16 macroblocks and cropped back through the SPS.
pub fn write_mp4(path: &Path, frames: &[f32], f: usize, h: usize, w: usize, fps: u32) -> Result<()> {
    check_frames(path, frames, f, h, w)?;
    check_fps(path, fps)?;
    check_parent(path)?;
    if !w.is_multiple_of(2) || !h.is_multiple_of(2) {
        return Err(Error::Other(format!(
            "{}: H.264 4:2:0 needs an even width and height, got {w}x{h}; write a .gif or PNG frames instead, \
             or generate at an even size (the pipeline's sizes are multiples of 8)",
            path.display()
        )));
    }
    let rgb = to_u8_trunc(frames);
    let stream = h264::encode(&rgb, f, h, w, fps).map_err(|msg| Error::Other(format!("{}: {msg}", path.display())))?;
    let file = mp4::mux(&stream, fps).map_err(|msg| Error::Other(format!("{}: {msg}", path.display())))?;
    write_atomic(path, |out| out.write_all(&file).map_err(|e| io_err(path, "write", e)))
}

/// Looping animated GIF, one NeuQuant palette per frame (GIF allows 256 colours per frame).
///
/// GIF delays are in 1/100 s, so 100/fps is rounded per frame with the error carried forward
/// (fps=8 → 13, 12, 13, 12 cs): the total duration stays exact. Above 50 fps a frame would last
/// under 2 cs, which browsers replace with 10 cs, so such rates are refused.
pub fn write_gif(path: &Path, frames: &[f32], f: usize, h: usize, w: usize, fps: u32) -> Result<()> {
    check_frames(path, frames, f, h, w)?;
    check_fps(path, fps)?;
    check_parent(path)?;
    if fps > gif::MAX_FPS {
        return Err(Error::Other(format!(
            "{}: GIF frame delays are whole 1/100 s and browsers stretch delays under 2/100 s, so at most {} fps \
             plays correctly (got {fps}); use .mp4 for higher rates",
            path.display(),
            gif::MAX_FPS
        )));
    }
    let (w16, h16) = match (u16::try_from(w), u16::try_from(h)) {
        (Ok(w16), Ok(h16)) => (w16, h16),
        _ => return Err(Error::Other(format!("{}: GIF sizes are at most 65535x65535, got {w}x{h}", path.display()))),
    };
    let rgb = to_u8_round(frames);
    write_atomic(path, |out| {
        gif::encode(out, &rgb, f, h16, w16, fps).map_err(|msg| Error::Other(format!("{}: {msg}", path.display())))
    })
}

/// One RGB PNG per frame, `dir/frame_0000.png` …, exactly the u8 values of diffusers' PIL output.
///
/// `dir` is created if missing (its parent must exist). All frames are encoded before any file
/// is written. Frames from an earlier, longer run with higher numbers are left in place: they are
/// the user's files, and deleting files we did not write is worse than leaving them.
pub fn write_png_frames(dir: &Path, frames: &[f32], f: usize, h: usize, w: usize) -> Result<Vec<PathBuf>> {
    check_frames(dir, frames, f, h, w)?;
    check_parent(dir)?;
    let (w32, h32) = match (u32::try_from(w), u32::try_from(h)) {
        (Ok(w32), Ok(h32)) => (w32, h32),
        _ => return Err(Error::Other(format!("{}: PNG size {w}x{h} does not fit in 32 bits", dir.display()))),
    };
    let rgb = to_u8_round(frames);
    let frame_len = h * w * 3;
    let encoded = rgb
        .chunks_exact(frame_len)
        .enumerate()
        .map(|(i, px)| {
            png::encode(px, w32, h32).map_err(|msg| Error::Other(format!("{}: frame {i}: {msg}", dir.display())))
        })
        .collect::<Result<Vec<_>>>()?;

    let created = if dir.is_dir() {
        false
    } else {
        fs::create_dir(dir).map_err(|e| io_err(dir, "create directory", e))?;
        true
    };
    let mut written = Vec::with_capacity(f);
    for (i, bytes) in encoded.iter().enumerate() {
        let path = dir.join(format!("frame_{i:04}.png"));
        if let Err(e) = write_atomic(&path, |out| out.write_all(bytes).map_err(|e| io_err(&path, "write", e))) {
            // A half-filled directory that we created ourselves is not worth keeping.
            if created {
                for p in &written {
                    let _ = fs::remove_file(p);
                }
                let _ = fs::remove_dir(dir);
            }
            return Err(e);
        }
        written.push(path);
    }
    Ok(written)
}

/// Writes a file through `write` into a temporary sibling of `path` (same directory, so the
/// rename cannot cross file systems), syncs it and renames it over `path`. On any error the
/// temporary file is removed and `path` is untouched: either the old file or none stays there.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let Some(name) = path.file_name() else {
        return Err(Error::Other(format!("{}: not a file path", path.display())));
    };
    if path.is_dir() {
        return Err(Error::Other(format!("{}: is a directory; give a file path", path.display())));
    }
    let parent = check_parent(path)?;

    // pid + counter: two processes (or threads) writing the same output never share a temp file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = parent.join(format!(".{}.{}-{n}.tmp", name.to_string_lossy(), std::process::id()));
    let file = File::options().write(true).create_new(true).open(&tmp).map_err(|e| io_err(&tmp, "create", e))?;
    let guard = RemoveOnDrop(Some(tmp.clone()));

    let mut out = BufWriter::new(file);
    write(&mut out)?;
    let file = out.into_inner().map_err(|e| io_err(&tmp, "write", e.into_error()))?;
    file.sync_all().map_err(|e| io_err(&tmp, "sync", e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| io_err(path, &format!("rename {} to", tmp.display()), e))?;
    guard.disarm();
    Ok(())
}

struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// The directory `path` goes into, which must exist ("." for a bare file name).
fn check_parent(path: &Path) -> Result<&Path> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::Other(format!(
            "{}: directory {} does not exist; create it first",
            path.display(),
            parent.display()
        )));
    }
    Ok(parent)
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Other(format!("{}: could not {what}: {e}", path.display()))
}

fn check_frames(path: &Path, frames: &[f32], f: usize, h: usize, w: usize) -> Result<()> {
    if f == 0 {
        return Err(Error::Other(format!("{}: no frames to write (F = 0)", path.display())));
    }
    if h == 0 || w == 0 {
        return Err(Error::Other(format!("{}: empty frame size {w}x{h}", path.display())));
    }
    let want = f.checked_mul(h).and_then(|n| n.checked_mul(w)).and_then(|n| n.checked_mul(3));
    if want != Some(frames.len()) {
        return Err(Error::Other(format!(
            "{}: got {} values but F·H·W·3 = {f}·{h}·{w}·3{}; frames must be laid out (F, H, W, 3)",
            path.display(),
            frames.len(),
            want.map(|n| format!(" = {n}")).unwrap_or_else(|| " overflows".into())
        )));
    }
    Ok(())
}

fn check_fps(path: &Path, fps: u32) -> Result<()> {
    if fps == 0 {
        return Err(Error::Other(format!("{}: fps must be at least 1", path.display())));
    }
    Ok(())
}

/// `(frame * 255).astype(np.uint8)` as in diffusers' `export_to_video`: f32 product, truncated.
/// Inputs are already clamped to [0, 1] by the pipeline; outside it Rust's `as` saturates where
/// numpy would wrap, and NaN becomes 0 as numpy's cast gives on x86.
pub fn to_u8_trunc(frames: &[f32]) -> Vec<u8> {
    frames.iter().map(|&x| (x * 255.0) as u8).collect()
}

/// `(images * 255).round().astype("uint8")` as in diffusers' `numpy_to_pil`; numpy rounds half
/// to even (0.5 → 127.5 → 128, but 1.5/255 → 2).
pub fn to_u8_round(frames: &[f32]) -> Vec<u8> {
    frames.iter().map(|&x| (x * 255.0).round_ties_even() as u8).collect()
}
