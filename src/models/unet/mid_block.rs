use super::layer::Dims;
use super::{TemporalConvLayer, Transformer2DModel, TransformerTemporalModel};
use crate::error::Result;
use crate::nn::ResnetBlock2D;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `UNetMidBlock3DCrossAttn`: resnet0 → temp_conv0 → attn → temp_attn → resnet1 → temp_conv1.
pub struct UNetMidBlock3DCrossAttn {
    pub resnets: [ResnetBlock2D; 2],
    pub temp_convs: [TemporalConvLayer; 2],
    pub attn: Transformer2DModel,
    pub temp_attn: TransformerTemporalModel,
}

impl UNetMidBlock3DCrossAttn {
    pub fn load(w: &Scope, c: usize, d: Dims) -> Result<Self> {
        let heads = c / d.head_dim;
        let resnet = |i: usize| ResnetBlock2D::load(&w.at(format!("resnets.{i}")), c, c, Some(d.temb), d.groups, d.eps);
        let temp = |i: usize| TemporalConvLayer::load(&w.at(format!("temp_convs.{i}")), c, d.groups);
        Ok(UNetMidBlock3DCrossAttn {
            resnets: [resnet(0)?, resnet(1)?],
            temp_convs: [temp(0)?, temp(1)?],
            attn: Transformer2DModel::load(&w.at("attentions.0"), c, heads, d.head_dim, d.cross_dim, d.groups)?,
            temp_attn: TransformerTemporalModel::load(&w.at("temp_attentions.0"), c, heads, d.head_dim, d.groups)?,
        })
    }

    pub fn forward(&self, x: &Tensor, temb: &Tensor, context: &Tensor, frames: usize) -> Result<Tensor> {
        let mut h = self.resnets[0].forward(x, Some(temb))?;
        h = self.temp_convs[0].forward(&h, frames)?;
        h = self.attn.forward(&h, context)?;
        h = self.temp_attn.forward(&h, frames)?;
        h = self.resnets[1].forward(&h, Some(temb))?;
        self.temp_convs[1].forward(&h, frames)
    }
}
