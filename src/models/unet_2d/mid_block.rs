use super::{Dims, Transformer2DModel};
use crate::error::Result;
use crate::nn::ResnetBlock2D;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `UNetMidBlock2DCrossAttn`: resnets.0 → attentions.0 → resnets.1.
pub struct UNetMidBlock2DCrossAttn {
    pub resnets: [ResnetBlock2D; 2],
    pub attention: Transformer2DModel,
}

impl UNetMidBlock2DCrossAttn {
    pub fn load(w: &Scope, c: usize, d: Dims) -> Result<Self> {
        let resnet = |i: usize| ResnetBlock2D::load(&w.at(format!("resnets.{i}")), c, c, Some(d.temb), d.groups, d.eps);
        Ok(UNetMidBlock2DCrossAttn { resnets: [resnet(0)?, resnet(1)?], attention: d.transformer(&w.at("attentions.0"), c)? })
    }

    pub fn forward(&self, x: &Tensor, temb: &Tensor, context: &Tensor, cross_frame: Option<usize>) -> Result<Tensor> {
        let mut h = self.resnets[0].forward(x, Some(temb))?;
        h = self.attention.forward(&h, context, cross_frame)?;
        self.resnets[1].forward_owned(h, Some(temb))
    }
}
