//! Decoded video as the pipelines return it, and the per-frame VAE decode the UNet pipelines
//! share.

use super::Progress;
use crate::error::Result;
use crate::models::vae::AutoencoderKL;
use crate::ops::elementwise::scale;
use crate::tensor::Tensor;

/// Decoded video: (F, H, W, 3) floats in [0, 1], as diffusers' `output_type="np"` (batch 1).
pub struct Frames {
    pub data: Vec<f32>,
    pub frames: usize,
    pub height: usize,
    pub width: usize,
}

impl Frames {
    pub fn empty() -> Frames {
        Frames { data: Vec::new(), frames: 0, height: 0, width: 0 }
    }

    /// Appends `n` frames given channels-first as `(3, n, H, W)` (or `(n, 3, H, W)` with
    /// `frames_first`) in the VAE's [-1, 1], after diffusers' postprocess `(x/2 + 0.5).clamp(0, 1)`.
    pub fn push_rgb(&mut self, v: &[f32], n: usize, h: usize, w: usize, frames_first: bool) {
        let plane = h * w;
        for f in 0..n {
            for px in 0..plane {
                for ch in 0..3 {
                    let i = if frames_first { (f * 3 + ch) * plane + px } else { (ch * n + f) * plane + px };
                    self.data.push((v[i] / 2.0 + 0.5).clamp(0.0, 1.0));
                }
            }
        }
        (self.frames, self.height, self.width) = (self.frames + n, h, w);
    }
}

/// Latent frames `z` (F, 4, h, w), unscaled → frames, one frame through the VAE at a time so
/// the decoder's full-resolution activations exist for a single frame only.
pub fn decode_per_frame(vae: &AutoencoderKL, z: &Tensor, progress: &mut dyn Progress) -> Result<Frames> {
    let f = z.dim(0);
    let z = scale(z, 1.0 / vae.config.scaling_factor)?;
    progress.stage("decoding", f);
    let mut out = Frames::empty();
    for i in 0..f {
        progress.check_cancelled()?;
        let img = vae.decode(&z.narrow0(i, 1)?)?;
        let (h, w) = (img.dim(2), img.dim(3));
        // A plan reads nothing back (and a planned frame would be zeros).
        if !img.gpu().is_planning() {
            out.push_rgb(&img.to_f32()?, 1, h, w, true);
        }
        progress.tick();
    }
    Ok(out)
}
