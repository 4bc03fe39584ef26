//! H.264 → frames with OpenH264's decoder (the same library as the encoder, built from source).
//!
//! OpenH264 decodes progressive 8-bit 4:2:0 streams of the Baseline, Main and High profiles —
//! what t2v, ffmpeg/libx264 and phones write — with CAVLC or CABAC and B-frames, and returns
//! pictures in display order. Interlaced, 4:2:2/4:4:4 and high-bit-depth streams are refused
//! with the ffmpeg command that converts them ([`super::demux::CONVERT_HINT`]).
//!
//! The decoded planes are exactly what any conforming decoder gives (tests/video_input.rs
//! compares them with ffmpeg's bit for bit). RGB then follows the range and matrix the SPS's
//! VUI signals (phones tag BT.709), each chroma sample covering its 2×2 luma block; untagged
//! streams are BT.601 limited range, as decoders assume, and the inverse of t2v's own writer.

use super::demux::{self, CONVERT_HINT};
use openh264::decoder::{DecodedYUV, Decoder};
use openh264::formats::YUVSource;

/// One decoded picture, planar 4:2:0, cropped to the picture size.
pub struct Yuv420 {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    /// From the SPS's VUI: full-range samples (else 16–235/240), and the matrix (H.264
    /// `matrix_coefficients`: 1 BT.709, 9/10 BT.2020, anything else BT.601, as ffmpeg assumes
    /// for untagged streams).
    pub full_range: bool,
    pub matrix: u8,
}

impl Yuv420 {
    fn from_decoded(d: &DecodedYUV<'_>) -> Result<Yuv420, String> {
        let (w, h) = d.dimensions();
        let (sy, su, sv) = d.strides();
        if w == 0 || h == 0 {
            return Err("the decoder returned an empty picture".into());
        }
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let plane = |src: &[u8], stride: usize, pw: usize, ph: usize| -> Result<Vec<u8>, String> {
            let mut out = Vec::with_capacity(pw * ph);
            for r in 0..ph {
                let row = src.get(r * stride..r * stride + pw).ok_or("the decoder returned a short plane")?;
                out.extend_from_slice(row);
            }
            Ok(out)
        };
        Ok(Yuv420 {
            width: w,
            height: h,
            y: plane(d.y(), sy, w, h)?,
            u: plane(d.u(), su, cw, ch)?,
            v: plane(d.v(), sv, cw, ch)?,
            full_range: false,
            matrix: 2,
        })
    }

    /// (H, W, 3) RGB by the stream's matrix and range (untagged: BT.601 limited range), each
    /// chroma sample covering its 2×2 block.
    pub fn to_rgb(&self) -> Vec<u8> {
        let (kr, kb) = match self.matrix {
            1 => (0.2126, 0.0722),
            9 | 10 => (0.2627, 0.0593),
            _ => (0.299, 0.114),
        };
        let kg = 1.0 - kr - kb;
        let (ys, yo, cs) = if self.full_range { (1.0, 0.0, 1.0) } else { (255.0 / 219.0, 16.0, 255.0 / 224.0) };
        let (rv, gu, gv, bu) = (2.0 * (1.0 - kr) * cs, 2.0 * kb * (1.0 - kb) / kg * cs, 2.0 * kr * (1.0 - kr) / kg * cs, 2.0 * (1.0 - kb) * cs);
        let (rv, gu, gv, bu, ys) = (rv as f32, gu as f32, gv as f32, bu as f32, ys as f32);
        let (w, h, cw) = (self.width, self.height, self.width.div_ceil(2));
        let mut out = Vec::with_capacity(w * h * 3);
        for r in 0..h {
            for c in 0..w {
                let y = ys * (self.y[r * w + c] as f32 - yo as f32);
                let u = self.u[(r / 2) * cw + c / 2] as f32 - 128.0;
                let v = self.v[(r / 2) * cw + c / 2] as f32 - 128.0;
                let px = [y + rv * v, y - gu * u - gv * v, y + bu * u];
                out.extend(px.iter().map(|&x| x.round().clamp(0.0, 255.0) as u8));
            }
        }
        out
    }
}

/// Decodes every picture of an MP4's H.264 track, in display order.
pub fn decode_mp4(data: &[u8]) -> Result<Vec<Yuv420>, String> {
    decode_mp4_with_rate(data).map(|(pics, _)| pics)
}

/// [`decode_mp4`] and the track's frame rate (see [`demux::AvcTrack::fps`]).
pub fn decode_mp4_with_rate(data: &[u8]) -> Result<(Vec<Yuv420>, Option<f64>), String> {
    let track = demux::read_avc(data)?;
    let fps = track.fps();
    if track.samples.is_empty() {
        return Err("the video track has no frames".into());
    }
    let profile = match track.profile {
        66 => "Baseline",
        77 => "Main",
        88 => "Extended",
        100 => "High",
        110 => "High 10",
        122 => "High 4:2:2",
        244 => "High 4:4:4",
        _ => "unknown",
    };
    if matches!(track.profile, 110 | 122 | 244 | 44) {
        return Err(format!("H.264 {profile} profile (more than 8 bits or 4:2:0) is not supported; {CONVERT_HINT}"));
    }
    let mut dec = Decoder::new().map_err(|e| format!("starting the H.264 decoder: {e}"))?;
    let mut frames = Vec::with_capacity(track.samples.len());
    let fail = |i: usize, e: openh264::Error| format!("H.264 {profile} profile, sample {i}: the decoder failed ({e}); {CONVERT_HINT}");
    let mut head = Vec::new();
    for s in track.sps.iter().chain(&track.pps) {
        head.extend_from_slice(&[0, 0, 0, 1]);
        head.extend_from_slice(s);
    }
    dec.decode(&head).map_err(|e| format!("H.264 parameter sets rejected ({e}); {CONVERT_HINT}"))?;
    // OpenH264 (no-delay mode) returns each sample's picture as it is decoded, i.e. in decode
    // order; the container's presentation times give the display order.
    let mut unit = Vec::new();
    let mut one_per_sample = true;
    for (i, range) in track.samples.iter().enumerate() {
        unit.clear();
        demux::to_annex_b(&data[range.clone()], track.length_size, &mut unit).map_err(|e| format!("sample {i}: {e}"))?;
        match dec.decode(&unit).map_err(|e| fail(i, e))? {
            Some(pic) => frames.push((track.presentation[i], Yuv420::from_decoded(&pic)?)),
            None => one_per_sample = false,
        }
    }
    for pic in dec.flush_remaining().map_err(|e| fail(track.samples.len(), e))? {
        one_per_sample = false;
        frames.push((i64::MAX, Yuv420::from_decoded(&pic)?));
    }
    if frames.is_empty() {
        return Err(format!("no picture could be decoded from {} samples; {CONVERT_HINT}", track.samples.len()));
    }
    if one_per_sample {
        frames.sort_by_key(|(t, _)| *t); // stable: equal times keep decode order
    } else if track.presentation.windows(2).any(|w| w[1] < w[0]) {
        // Reordered frames whose pictures we cannot pair with their samples.
        return Err(format!("{} samples gave {} pictures out of order; {CONVERT_HINT}", track.samples.len(), frames.len()));
    }
    // Range and matrix from the (first) SPS; one that cannot be read leaves the defaults.
    let (full_range, matrix) = super::sps::signal_type(&track.sps[0]).unwrap_or((false, 2));
    let frames: Vec<Yuv420> = frames.into_iter().map(|(_, f)| Yuv420 { full_range, matrix, ..f }).collect();
    if let Some(f) = frames.iter().find(|f| (f.width, f.height) != (frames[0].width, frames[0].height)) {
        return Err(format!("the picture size changes within the video ({}x{} then {}x{}); {CONVERT_HINT}", frames[0].width, frames[0].height, f.width, f.height));
    }
    Ok((frames, fps))
}
