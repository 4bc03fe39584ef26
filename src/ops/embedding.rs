//! Sinusoidal timestep embedding (shaders/embedding.wgsl), diffusers' `get_timestep_embedding`
//! with scale 1 and max_period 10000, as UNet3DConditionModel's `time_proj` (dim 320,
//! flip_sin_to_cos=True, downscale_freq_shift=0) uses it.

use super::groups;
use crate::error::{shape_err, Result};
use crate::gpu::Gpu;
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

const SRC: &str = include_str!("../../shaders/embedding.wgsl");
const WG: usize = 64;
const MAX_PERIOD: f64 = 10000.0;

/// `Timesteps(dim, flip_sin_to_cos, downscale_freq_shift)`: the frequency table is built on the
/// host once and stays on the device.
pub struct TimestepEmbedding {
    dim: usize,
    flip_sin_to_cos: bool,
    /// f32 [dim / 2]; absent when dim < 2 (the output is then all padding).
    freqs: Option<Tensor>,
    gpu: Arc<Gpu>,
}

/// torch's frequencies: exponent = f32(−ln max_period) · i / f32(half − shift), each step
/// rounded to f32 as torch's f32 tensor ops do, then exp rounded to f32. torch's vectorised expf
/// is within 1 ulp of this correctly rounded exp.
pub fn timestep_freqs(dim: usize, downscale_freq_shift: f32) -> Vec<f32> {
    let half = dim / 2;
    let scale = -(MAX_PERIOD.ln()) as f32;
    let denom = (half as f64 - downscale_freq_shift as f64) as f32;
    (0..half).map(|i| (((scale * i as f32) / denom) as f64).exp() as f32).collect()
}

impl TimestepEmbedding {
    pub fn new(gpu: &Arc<Gpu>, dim: usize, flip_sin_to_cos: bool, downscale_freq_shift: f32) -> Result<Self> {
        let op = "timestep_embedding";
        if dim == 0 {
            return shape_err(op, "embedding dim must be at least 1");
        }
        let half = dim / 2;
        if half > 0 && (half as f32 - downscale_freq_shift) == 0.0 {
            return shape_err(op, format!("downscale_freq_shift {downscale_freq_shift} divides by zero for dim {dim}"));
        }
        let table = timestep_freqs(dim, downscale_freq_shift);
        let freqs = if half > 0 { Some(Tensor::from_f32(gpu, &[half], &table)?) } else { None };
        Ok(TimestepEmbedding { dim, flip_sin_to_cos, freqs, gpu: gpu.clone() })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// timesteps f32 [B] → embeddings f32 [B, dim].
    pub fn forward(&self, timesteps: &Tensor) -> Result<Tensor> {
        let op = "timestep_embedding";
        if timesteps.shape().len() != 1 || timesteps.dtype() != DType::F32 {
            return shape_err(
                op,
                format!("timesteps must be f32 [B], got {:?} {}", timesteps.shape(), timesteps.dtype().name()),
            );
        }
        let b = timesteps.dim(0);
        let out = Tensor::empty(&self.gpu, &[b, self.dim], DType::F32)?;
        let n = b * self.dim;
        if n == 0 {
            return Ok(out);
        }
        let tw = timesteps.whole(op)?;
        let fw = match &self.freqs {
            Some(t) => t.whole(op)?,
            None => crate::tensor::Window { binding: self.gpu.unused_binding(), shift: 0 },
        };
        let ow = out.whole(op)?;
        let kern = self.gpu.kernel("embedding", SRC, "timestep_embedding", &[])?;
        let params = [
            n as u32,
            self.dim as u32,
            (self.dim / 2) as u32,
            tw.shift,
            fw.shift,
            ow.shift,
            self.flip_sin_to_cos as u32,
        ];
        self.gpu.dispatch(
            &kern,
            &params,
            vec![(1, tw.binding), (2, fw.binding), (3, ow.binding)],
            groups(&self.gpu, n.div_ceil(WG)),
        );
        Ok(out)
    }
}

/// UNet3DConditionModel's `time_proj` for one guided step: 2 timesteps × 320.
pub(crate) fn bench_cases(gpu: &Arc<Gpu>, _frames: usize) -> Result<Vec<crate::bench::Case>> {
    use crate::bench::Case;
    let emb = TimestepEmbedding::new(gpu, 320, true, 0.0)?;
    let t = Tensor::from_f32(gpu, &[2], &[981.0, 981.0])?;
    Ok(vec![Case::new("timestep_embedding", "[2] → [2, 320]".into(), 20.0 * 640.0, (2 * 4 + 640 * 4 + 160 * 4) as f64, move || {
        emb.forward(&t).map(drop)
    })])
}
