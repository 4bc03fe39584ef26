//! RGB frames → H.264 access units with OpenH264 (Cisco's encoder, built from source by
//! `openh264-sys2`, so nothing is loaded at run time).
//!
//! Settings and why:
//! - Baseline profile with constraint_set1 (OpenH264 writes it), i.e. Constrained Baseline:
//!   plays in every browser and hardware decoder. No B-frames, so decode order = display order
//!   and the MP4 needs no composition offsets.
//! - Constant QP [`QP`]: OpenH264's rate control clamps every frame's and macroblock's QP into
//!   [min, max], and we give it a one-value range. Quality then does not depend on clip length or
//!   a bitrate guess. (diffusers' ffmpeg path uses x264 at CRF 23, which is not comparable.)
//!   Measured on the smooth moving test pattern of tests/video.rs, decoded by ffmpeg, mean error
//!   on top of what yuv420p alone costs, and size of 16 frames at 576×320:
//!   QP 14: +0.24/255, 62 KB; QP 16: +0.31, 56 KB; **QP 18: +0.43, 46 KB**; QP 22: +0.67, 34 KB.
//! - Frame skipping off: every input frame becomes exactly one sample.
//! - OpenH264's log goes to a callback instead of stderr; its error lines become our error text.
//! - BT.601 limited range, signalled in the SPS VUI (and in the MP4 `colr` box), which is what
//!   ffmpeg's default rgb24 → yuv420p conversion produces and decoders assume when untagged.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Mutex;

use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile, QpRange,
    RateControlMode, UsageType, VuiConfig,
};
use openh264::formats::YUVBuffer;
use openh264::OpenH264API;
use openh264_sys2::{
    WelsTraceCallback, ENCODER_OPTION_TRACE_CALLBACK, ENCODER_OPTION_TRACE_CALLBACK_CONTEXT,
    ENCODER_OPTION_TRACE_LEVEL, WELS_LOG_ERROR,
};

/// The quantiser every macroblock is coded with; see the module comment.
pub const QP: u8 = 18;

/// A keyframe every this many seconds keeps long videos seekable; diffusion clips (16–24 frames)
/// are one GOP.
const KEYFRAME_SECONDS: u32 = 2;

/// NAL unit types (H.264 Table 7-1): parameter sets go to `avcC`, IDR slices mark sync samples.
pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;

/// An encoded stream ready for muxing: parameter sets out of band, one sample per frame.
pub struct Stream {
    pub width: u16,
    pub height: u16,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
    pub samples: Vec<Sample>,
}

/// One frame's NAL units (without start codes), excluding SPS/PPS.
pub struct Sample {
    pub nals: Vec<Vec<u8>>,
    pub sync: bool,
}

/// Encodes `rgb` (F, H, W, 3) u8 frames; `w` and `h` must be even (checked by the caller).
///
/// Frames are padded to whole macroblocks by repeating their last column and row, and the SPS
/// crops the padding off again (see `sps.rs` for why we do not let OpenH264 pad).
pub fn encode(rgb: &[u8], f: usize, h: usize, w: usize, fps: u32) -> Result<Stream, String> {
    let (Ok(width), Ok(height)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(format!("frame size {w}x{h} is beyond H.264's limits"));
    };
    if !w.is_multiple_of(2) || !h.is_multiple_of(2) || rgb.len() != f * h * w * 3 {
        return Err(format!("{f} frames of {w}x{h} (even sizes only) do not match {} bytes of RGB", rgb.len()));
    }
    let (mut pw, mut ph) = (w.next_multiple_of(16), h.next_multiple_of(16));
    if pw.max(ph) > 3840 || pw.min(ph) > 2160 {
        // The padded size would pass the openh264 crate's size limit (3840x2160) although the
        // picture itself does not: let OpenH264 pad this one (black, see sps.rs) and crop itself.
        (pw, ph) = (w, h);
    }
    // Only a sanity input to OpenH264 once the QP range is a single value; ~1 bit per pixel.
    let bps = (w as u64 * h as u64 * fps as u64).clamp(1_000_000, i32::MAX as u64) as u32;
    let config = EncoderConfig::new()
        .profile(Profile::Baseline)
        .usage_type(UsageType::CameraVideoRealTime)
        .rate_control_mode(RateControlMode::Quality)
        .bitrate(BitRate::from_bps(bps))
        .qp(QpRange::new(QP, QP))
        .max_frame_rate(FrameRate::from_hz(fps as f32))
        .skip_frames(false)
        .complexity(Complexity::High)
        .intra_frame_period(IntraFramePeriod::from_num_frames(fps.saturating_mul(KEYFRAME_SECONDS)))
        .vui(VuiConfig::bt601())
        // One thread: output is then bit-identical run to run, and the CPUs are the GPU driver's.
        .num_threads(1);
    // Declared before the encoder so that it outlives it: the encoder holds a pointer to it.
    let log = Box::new(TraceLog::default());
    let mut encoder =
        Encoder::with_api_config(OpenH264API::from_source(), config).map_err(|e| format!("OpenH264 setup: {e}"))?;
    log.attach(&mut encoder)?;

    let frame_len = h * w * 3;
    let mut sps: Vec<Vec<u8>> = Vec::new();
    let mut pps: Vec<Vec<u8>> = Vec::new();
    let mut samples = Vec::with_capacity(f);
    for (i, frame) in rgb.chunks_exact(frame_len).enumerate() {
        let padded = pad_edges(frame, h, w, ph, pw);
        let yuv = YUVBuffer::from_vec(rgb_to_i420(&padded, ph, pw), pw, ph);
        let bitstream = encoder.encode(&yuv).map_err(|e| log.error(&format!("OpenH264 failed on frame {i}"), e))?;
        match bitstream.frame_type() {
            FrameType::Skip | FrameType::Invalid => {
                return Err(format!(
                    "OpenH264 produced no picture for frame {i} ({:?}) although frame skipping is off",
                    bitstream.frame_type()
                ))
            }
            _ => {}
        }
        let mut nals = Vec::new();
        let mut sync = false;
        for l in 0..bitstream.num_layers() {
            let Some(layer) = bitstream.layer(l) else { continue };
            for n in 0..layer.nal_count() {
                let Some(unit) = layer.nal_unit(n) else { continue };
                let nal = strip_start_code(unit);
                let Some(&header) = nal.first() else { continue };
                match header & 0x1f {
                    NAL_SPS => push_unique(&mut sps, nal),
                    NAL_PPS => push_unique(&mut pps, nal),
                    t => {
                        sync |= t == NAL_IDR;
                        nals.push(nal.to_vec());
                    }
                }
            }
        }
        if nals.is_empty() {
            return Err(format!("OpenH264 returned no slice data for frame {i}"));
        }
        samples.push(Sample { nals, sync });
        if i == 0 {
            // Initialisation (in the first encode) resets the log level to quiet; errors in
            // later frames should still explain themselves.
            log.attach(&mut encoder)?;
        }
    }
    if sps.is_empty() || pps.is_empty() {
        return Err("OpenH264 emitted no SPS/PPS".into());
    }
    if (pw, ph) != (w, h) {
        sps = sps
            .iter()
            .map(|s| super::sps::with_crop(s, (pw - w) as u32, (ph - h) as u32))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cropping the SPS to {w}x{h}: {e}"))?;
    }
    Ok(Stream { width, height, sps, pps, samples })
}

/// Collects OpenH264's error-level log lines (its only account of why a call failed).
#[derive(Default)]
struct TraceLog(Mutex<Vec<String>>);

impl TraceLog {
    /// Routes the encoder's log here. OpenH264 accepts these two options before initialisation,
    /// which happens inside the first `encode`, so parameter-validation errors are caught too.
    fn attach(&self, encoder: &mut Encoder) -> Result<(), String> {
        let mut callback: WelsTraceCallback = Some(trace_to_log);
        let mut ctx = self as *const TraceLog as *mut c_void;
        let mut level: c_int = WELS_LOG_ERROR as c_int;
        // SAFETY: the pointers passed are read during the call only (OpenH264 copies the values);
        // `self` outlives `encoder` (see `encode`), so the stored context stays valid.
        let rc = unsafe {
            let raw = encoder.raw_api();
            raw.set_option(ENCODER_OPTION_TRACE_LEVEL, (&raw mut level).cast())
                | raw.set_option(ENCODER_OPTION_TRACE_CALLBACK_CONTEXT, (&raw mut ctx).cast())
                | raw.set_option(ENCODER_OPTION_TRACE_CALLBACK, (&raw mut callback).cast())
        };
        if rc != 0 {
            return Err(format!("OpenH264 rejected its log settings (code {rc})"));
        }
        Ok(())
    }

    fn error(&self, what: &str, e: openh264::Error) -> String {
        let lines = self.0.lock().map(|l| l.join("; ")).unwrap_or_default();
        if lines.is_empty() {
            format!("{what}: {e}")
        } else {
            format!("{what}: {lines}")
        }
    }
}

unsafe extern "C" fn trace_to_log(ctx: *mut c_void, _level: c_int, msg: *const c_char) {
    if ctx.is_null() || msg.is_null() {
        return;
    }
    // SAFETY: `ctx` is the `TraceLog` registered in `attach`, alive while the encoder is; `msg`
    // is a NUL-terminated string owned by OpenH264 for the duration of the call.
    let (log, msg) = unsafe { (&*(ctx as *const TraceLog), CStr::from_ptr(msg)) };
    if let Ok(mut lines) = log.0.lock() {
        lines.push(msg.to_string_lossy().trim().to_string());
    }
}

fn push_unique(sets: &mut Vec<Vec<u8>>, nal: &[u8]) {
    if !sets.iter().any(|s| s == nal) {
        sets.push(nal.to_vec());
    }
}

/// OpenH264 emits Annex B units, each prefixed by `00 00 01` or `00 00 00 01`.
fn strip_start_code(unit: &[u8]) -> &[u8] {
    let zeros = unit.iter().take_while(|&&b| b == 0).count();
    if zeros >= 2 && unit.get(zeros) == Some(&1) {
        &unit[zeros + 1..]
    } else {
        unit
    }
}

/// Copies an `h`×`w` RGB frame into `ph`×`pw` (≥), repeating the last column and row: smooth
/// padding that costs almost no bits and does not disturb the visible pixels.
fn pad_edges(rgb: &[u8], h: usize, w: usize, ph: usize, pw: usize) -> Vec<u8> {
    if (ph, pw) == (h, w) {
        return rgb.to_vec();
    }
    let mut out = Vec::with_capacity(ph * pw * 3);
    for y in 0..ph {
        let row = &rgb[y.min(h - 1) * w * 3..][..w * 3];
        out.extend_from_slice(row);
        for _ in w..pw {
            out.extend_from_slice(&row[(w - 1) * 3..]);
        }
    }
    out
}

/// RGB u8 → planar I420, BT.601 limited range (ffmpeg's default for rgb24 → yuv420p). Chroma is
/// the conversion of each 2×2 block's mean colour, centred between its four luma samples.
pub fn rgb_to_i420(rgb: &[u8], h: usize, w: usize) -> Vec<u8> {
    let (cw, ch) = (w / 2, h / 2);
    let mut out = vec![0u8; w * h + 2 * cw * ch];
    let (y_plane, uv) = out.split_at_mut(w * h);
    let (u_plane, v_plane) = uv.split_at_mut(cw * ch);
    let px = |y: usize, x: usize| {
        let i = (y * w + x) * 3;
        (rgb[i] as f32, rgb[i + 1] as f32, rgb[i + 2] as f32)
    };
    for y in 0..h {
        for x in 0..w {
            let (r, g, b) = px(y, x);
            y_plane[y * w + x] = (16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0).round() as u8;
        }
    }
    for cy in 0..ch {
        for cx in 0..cw {
            let (mut r, mut g, mut b) = (0.0, 0.0, 0.0);
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let p = px(2 * cy + dy, 2 * cx + dx);
                r += p.0;
                g += p.1;
                b += p.2;
            }
            let (r, g, b) = (r / 4.0, g / 4.0, b / 4.0);
            u_plane[cy * cw + cx] = (128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0).round() as u8;
            v_plane[cy * cw + cx] = (128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0).round() as u8;
        }
    }
    out
}
