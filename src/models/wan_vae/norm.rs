use crate::error::Result;
use crate::ops::channel_norm::channel_norm;
use crate::tensor::{DType, Tensor};
use crate::weights::Scope;

/// `WanRMS_norm`: L2 normalisation over channels · √C · gamma (no bias in the VAE). gamma is
/// stored (C, 1, 1, 1) in residual blocks and norm_out, (C, 1, 1) in the attention block.
pub struct WanRmsNorm {
    pub gamma: Tensor,
}

impl WanRmsNorm {
    pub fn load(w: &Scope, channels: usize, images: bool) -> Result<WanRmsNorm> {
        let shape: &[usize] = if images { &[channels, 1, 1] } else { &[channels, 1, 1, 1] };
        Ok(WanRmsNorm { gamma: w.w.tensor_as(&w.key("gamma"), shape, DType::F32)? })
    }

    /// x (F, C, H, W); `silu` fuses the activation that follows every norm but the attention's.
    pub fn forward(&self, x: &Tensor, silu: bool) -> Result<Tensor> {
        channel_norm(x, &self.gamma, silu)
    }
}
