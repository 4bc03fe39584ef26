use super::cache::CausalCache;
use super::resample::WanResample;
use super::residual_block::WanResidualBlock;
use crate::error::Result;
use crate::ops::elementwise::add_inplace;
use crate::ops::shuffle::dup_up;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// An up block of the decoder: num_res_blocks + 1 residual blocks, then an optional upsampler.
/// Wan 2.1's `WanUpBlock`: the upsampler (`upsamplers.0`) halves the channels. Wan 2.2's
/// `WanResidualUpBlock`: the upsampler (`upsampler`) keeps them, and the block's input, spread
/// by `DupUp3D` to the output's frames, size and channels, is added to the output.
pub struct WanUpBlock {
    pub resnets: Vec<WanResidualBlock>,
    pub upsampler: Option<WanResample>,
    /// Wan 2.2: the DupUp3D shortcut (output channels, temporal factor, spatial factor).
    pub shortcut: Option<(usize, usize, usize)>,
}

impl WanUpBlock {
    /// `upsample`: None, Some(false) = upsample2d, Some(true) = upsample3d; `residual`: Wan 2.2.
    pub fn load(w: &Scope, cin: usize, cout: usize, num_res_blocks: usize, upsample: Option<bool>, residual: bool, slots: &mut usize) -> Result<WanUpBlock> {
        let mut resnets = Vec::new();
        for j in 0..=num_res_blocks {
            resnets.push(WanResidualBlock::load(&w.at(format!("resnets.{j}")), if j == 0 { cin } else { cout }, cout, slots)?);
        }
        let (key, out) = if residual { ("upsampler", cout) } else { ("upsamplers.0", cout / 2) };
        let upsampler = match upsample {
            Some(temporal) => Some(WanResample::load(&w.at(key), cout, out, temporal, slots)?),
            None => None,
        };
        let shortcut = match (residual, upsample) {
            (true, Some(temporal)) => Some((cout, if temporal { 2 } else { 1 }, 2)),
            _ => None,
        };
        Ok(WanUpBlock { resnets, upsampler, shortcut })
    }

    pub fn forward(&self, mut x: Tensor, cache: &mut CausalCache) -> Result<Tensor> {
        // The shortcut reads the block's input (no op here writes into its input's buffer); in
        // the first chunk, where the upsampler passes frame 0 through un-doubled, DupUp3D drops
        // its first f_t − 1 frames to match (diffusers' first_chunk).
        let shortcut = match self.shortcut {
            Some(s) => Some((s, x.clone(), self.upsampler.as_ref().map_or(Ok(false), |u| u.first_call(cache))?)),
            None => None,
        };
        for r in &self.resnets {
            x = r.forward(x, cache)?;
        }
        if let Some(u) = &self.upsampler {
            x = u.forward(x, cache)?;
        }
        if let Some(((out, ft, fs), input, first)) = shortcut {
            let s = dup_up(&input, out, ft, fs, if first { ft - 1 } else { 0 })?;
            drop(input);
            add_inplace(&x, &s)?;
        }
        Ok(x)
    }
}
