use super::{TemporalConvLayer, Transformer2DModel, TransformerTemporalModel};
use crate::error::Result;
use crate::nn::ResnetBlock2D;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// What every UNet3D block repeats per layer: resnet → temp_conv (→ attn → temp_attn in the
/// cross-attention blocks). Keys: `resnets.i`, `temp_convs.i`, `attentions.i`, `temp_attentions.i`.
pub struct Layer3D {
    pub resnet: ResnetBlock2D,
    pub temp_conv: TemporalConvLayer,
    pub attn: Option<(Transformer2DModel, TransformerTemporalModel)>,
}

/// Shapes a block needs to build its layers.
#[derive(Clone, Copy)]
pub struct Dims {
    pub temb: usize,
    pub groups: usize,
    pub eps: f32,
    pub head_dim: usize,
    pub cross_dim: usize,
}

impl Layer3D {
    pub fn load(w: &Scope, i: usize, cin: usize, cout: usize, d: Dims, cross_attn: bool) -> Result<Layer3D> {
        let heads = cout / d.head_dim;
        Ok(Layer3D {
            resnet: ResnetBlock2D::load(&w.at(format!("resnets.{i}")), cin, cout, Some(d.temb), d.groups, d.eps)?,
            temp_conv: TemporalConvLayer::load(&w.at(format!("temp_convs.{i}")), cout, d.groups)?,
            attn: if cross_attn {
                Some((
                    Transformer2DModel::load(&w.at(format!("attentions.{i}")), cout, heads, d.head_dim, d.cross_dim, d.groups)?,
                    TransformerTemporalModel::load(&w.at(format!("temp_attentions.{i}")), cout, heads, d.head_dim, d.groups)?,
                ))
            } else {
                None
            },
        })
    }

    /// Takes `x` so the layer's input (in up blocks a wide skip concatenation) is freed once
    /// the resnet has read it; each later stage replaces `h`, freeing the one before.
    pub fn forward(&self, x: Tensor, temb: &Tensor, context: &Tensor, frames: usize) -> Result<Tensor> {
        let mut h = self.resnet.forward_owned(x, Some(temb))?;
        h = self.temp_conv.forward(&h, frames)?;
        if let Some((spatial, temporal)) = &self.attn {
            h = spatial.forward(&h, context)?;
            h = temporal.forward(&h, frames)?;
        }
        Ok(h)
    }
}
