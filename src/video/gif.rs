//! Animated GIF through the `gif` crate: NeuQuant palette per frame, infinite loop.

use std::io::Write;

use ::gif::{Encoder, Frame, Repeat};

/// Delays are whole centiseconds and browsers stretch those under 2 cs to 10 cs.
pub const MAX_FPS: u32 = 50;

/// NeuQuant learns its palette from every `speed`-th pixel. 10 is the crate's suggested balance,
/// but it needs enough samples to place 256 colours: measured mean error per channel on a smooth
/// 72×40 frame 10.4/255 at speed 10 vs 5.8 at speed 1; on 576×320 5.8 vs 5.0, at 39 vs 154 ms a
/// frame. So sample every pixel up to ~16k pixels, then thin out to keep ≥ 16k samples.
fn quant_speed(pixels: usize) -> i32 {
    (pixels / 16_384).clamp(1, 10) as i32
}

/// Streams `rgb` (F, H, W, 3) u8 frames as a looping GIF into `out`.
pub fn encode(out: &mut dyn Write, rgb: &[u8], f: usize, h: u16, w: u16, fps: u32) -> Result<(), String> {
    let frame_len = h as usize * w as usize * 3;
    if rgb.len() != f * frame_len {
        return Err(format!("{} bytes are not {f} frames of {w}x{h} RGB", rgb.len()));
    }
    let mut enc = Encoder::new(out, w, h, &[]).map_err(|e| format!("GIF header: {e}"))?;
    enc.set_repeat(Repeat::Infinite).map_err(|e| format!("GIF loop extension: {e}"))?;
    for (i, px) in rgb.chunks_exact(frame_len).enumerate() {
        let mut frame = Frame::from_rgb_speed(w, h, px, quant_speed(h as usize * w as usize));
        frame.delay = delay_cs(i as u64, fps);
        enc.write_frame(&frame).map_err(|e| format!("GIF frame {i}: {e}"))?;
    }
    enc.into_inner().map_err(|e| format!("GIF trailer: {e}"))?;
    Ok(())
}

/// Frame `i` shows from round(100·i/fps) to round(100·(i+1)/fps) cs (halves up), so rounding
/// errors do not pile up over the clip (fps=8: 13, 12, 13, 12 …).
pub fn delay_cs(i: u64, fps: u32) -> u16 {
    let at = |k: u64| (200 * k + fps as u64) / (2 * fps as u64);
    (at(i + 1) - at(i)) as u16
}
