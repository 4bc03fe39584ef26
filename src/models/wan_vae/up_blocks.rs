use super::cache::CausalCache;
use super::resample::WanResample;
use super::residual_block::WanResidualBlock;
use crate::error::Result;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `WanUpBlock` (Wan 2.1): num_res_blocks + 1 residual blocks, then an optional upsampler
/// (`upsamplers.0`) that halves the channels.
pub struct WanUpBlock {
    pub resnets: Vec<WanResidualBlock>,
    pub upsampler: Option<WanResample>,
}

impl WanUpBlock {
    /// `upsample`: None, Some(false) = upsample2d, Some(true) = upsample3d.
    pub fn load(w: &Scope, cin: usize, cout: usize, num_res_blocks: usize, upsample: Option<bool>, slots: &mut usize) -> Result<WanUpBlock> {
        let mut resnets = Vec::new();
        for j in 0..=num_res_blocks {
            resnets.push(WanResidualBlock::load(&w.at(format!("resnets.{j}")), if j == 0 { cin } else { cout }, cout, slots)?);
        }
        let upsampler = match upsample {
            Some(temporal) => Some(WanResample::load(&w.at("upsamplers.0"), cout, cout / 2, temporal, slots)?),
            None => None,
        };
        Ok(WanUpBlock { resnets, upsampler })
    }

    pub fn forward(&self, mut x: Tensor, cache: &mut CausalCache) -> Result<Tensor> {
        for r in &self.resnets {
            x = r.forward(x, cache)?;
        }
        match &self.upsampler {
            Some(u) => u.forward(x, cache),
            None => Ok(x),
        }
    }
}
