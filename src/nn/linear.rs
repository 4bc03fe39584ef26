use crate::error::Result;
use crate::ops::matmul::linear;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// `torch.nn.Linear`: weight [out, in], optional bias [out].
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn load(w: &Scope, inp: usize, out: usize, bias: bool) -> Result<Linear> {
        Ok(Linear {
            weight: w.tensor("weight", &[out, inp])?,
            bias: if bias { Some(w.vector("bias", out)?) } else { None },
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        linear(x, &self.weight, self.bias.as_ref())
    }

    pub fn out_features(&self) -> usize {
        self.weight.dim(0)
    }
}
