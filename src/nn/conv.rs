use crate::error::Result;
use crate::ops::conv2d::conv2d_padded;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `torch.nn.Conv2d` with square kernels. `pad_end` is extra zero padding on the bottom and
/// right only (the VAE encoder's Downsample2D pads (0, 1, 0, 1)).
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: usize,
    pub pad: usize,
    pub pad_end: usize,
}

impl Conv2d {
    pub fn load(w: &Scope, cin: usize, cout: usize, k: usize, stride: usize, pad: usize) -> Result<Conv2d> {
        Ok(Conv2d { weight: w.tensor("weight", &[cout, cin, k, k])?, bias: w.vector("bias", cout)?, stride, pad, pad_end: pad })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        conv2d_padded(x, &self.weight, Some(&self.bias), self.stride, self.pad, self.pad_end)
    }
}
