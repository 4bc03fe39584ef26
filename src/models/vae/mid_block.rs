use crate::error::Result;
use crate::nn::{GroupNorm, Linear, ResnetBlock2D};
use crate::ops::attention::attention;
use crate::ops::elementwise::add_inplace;
use crate::ops::layout::permute;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// The VAE's single-head self-attention over pixels (diffusers `Attention` with group_norm,
/// residual_connection, bias on q/k/v; old checkpoints spell the keys query/key/value/proj_attn).
pub struct VaeAttention {
    pub group_norm: GroupNorm,
    pub to_q: Linear,
    pub to_k: Linear,
    pub to_v: Linear,
    pub to_out: Linear,
}

impl VaeAttention {
    pub fn load(w: &Scope, c: usize, groups: usize) -> Result<Self> {
        Ok(VaeAttention {
            group_norm: GroupNorm::load(&w.at("group_norm"), groups, c, 1e-6)?,
            to_q: Linear::load(&w.at("to_q"), c, c, true)?,
            to_k: Linear::load(&w.at("to_k"), c, c, true)?,
            to_v: Linear::load(&w.at("to_v"), c, c, true)?,
            to_out: Linear::load(&w.at("to_out.0"), c, c, true)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3));
        let t = permute(&self.group_norm.forward(x, false)?.reshape(&[n, c, h * w])?, &[0, 2, 1])?;
        let (q, k, v) = (self.to_q.forward(&t)?, self.to_k.forward(&t)?, self.to_v.forward(&t)?);
        let o = self.to_out.forward(&attention(&q, &k, &v, 1, false)?)?;
        let y = permute(&o, &[0, 2, 1])?.reshape(&[n, c, h, w])?;
        add_inplace(&y, x)?;
        Ok(y)
    }
}

/// `UNetMidBlock2D` as the VAE uses it: resnet → attention → resnet (eps 1e-6, no temb).
pub struct UNetMidBlock2D {
    pub resnets: [ResnetBlock2D; 2],
    pub attention: Option<VaeAttention>,
}

impl UNetMidBlock2D {
    pub fn load(w: &Scope, c: usize, groups: usize, add_attention: bool) -> Result<Self> {
        let resnet = |i: usize| ResnetBlock2D::load(&w.at(format!("resnets.{i}")), c, c, None, groups, 1e-6);
        Ok(UNetMidBlock2D {
            resnets: [resnet(0)?, resnet(1)?],
            attention: if add_attention { Some(VaeAttention::load(&w.at("attentions.0"), c, groups)?) } else { None },
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.resnets[0].forward(x, None)?;
        if let Some(a) = &self.attention {
            h = a.forward(&h)?;
        }
        self.resnets[1].forward(&h, None)
    }
}
