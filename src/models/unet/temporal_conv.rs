use crate::error::Result;
use crate::nn::GroupNorm;
use crate::ops::conv_temporal::{conv_temporal, FrameLayout};
use crate::ops::elementwise::add_inplace;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// ModelScope's `TemporalConvLayer`: four × (GroupNorm pooled over frames → SiLU → Conv3d
/// (3,1,1)) and a residual. Works on the folded (B·F, C, H, W) layout directly, so the
/// permutes diffusers does around it are not needed. GroupNorm eps is PyTorch's default 1e-5.
pub struct TemporalConvLayer {
    /// (norm, conv weight [C, C, 3, 1, 1], conv bias) for conv1..conv4.
    pub stages: Vec<(GroupNorm, Tensor, Tensor)>,
}

impl TemporalConvLayer {
    pub fn load(w: &Scope, channels: usize, groups: usize) -> Result<TemporalConvLayer> {
        let mut stages = Vec::new();
        for (i, conv_idx) in [(1, 2), (2, 3), (3, 3), (4, 3)] {
            let s = w.at(format!("conv{i}"));
            let norm = GroupNorm::load(&s.at(0), groups, channels, 1e-5)?;
            let c = s.at(conv_idx);
            stages.push((norm, c.tensor("weight", &[channels, channels, 3, 1, 1])?, c.vector("bias", channels)?));
        }
        Ok(TemporalConvLayer { stages })
    }

    pub fn forward(&self, x: &Tensor, frames: usize) -> Result<Tensor> {
        let mut h = x.clone();
        for (norm, w, b) in &self.stages {
            h = conv_temporal(&norm.forward_frames(&h, frames, true)?, frames, FrameLayout::Folded, w, Some(b))?;
        }
        add_inplace(&h, x)?;
        Ok(h)
    }
}
