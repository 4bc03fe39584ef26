use crate::error::Result;
use crate::ops::layout::cat;
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

    /// A weight too big for one storage binding (Wan 14B's time projection and feed-forward
    /// matrices on lavapipe's 128 MiB) is bound as row blocks, each block's outputs computed as
    /// a linear of its own and the blocks concatenated on the last dimension: every output
    /// element is the same dot product, only the column range per dispatch differs.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = &self.weight;
        let limit = w.gpu().max_binding().saturating_sub(4096).max(1);
        if w.bytes() <= limit || w.shape().len() != 2 {
            return linear(x, w, self.bias.as_ref());
        }
        let (n, k) = (w.dim(0), w.dim(1));
        let per = (limit / (k as u64 * w.dtype().size()).max(1)).max(1) as usize;
        let count = n.div_ceil(per);
        let mut parts = Vec::with_capacity(count);
        let mut at = 0;
        for i in 0..count {
            let rows = n / count + usize::from(i < n % count);
            let bias = self.bias.as_ref().map(|b| b.narrow0(at, rows)).transpose()?;
            parts.push(linear(x, &w.narrow0(at, rows)?, bias.as_ref())?);
            at += rows;
        }
        let refs: Vec<&Tensor> = parts.iter().collect();
        cat(&refs, x.shape().len().saturating_sub(1))
    }

    pub fn out_features(&self) -> usize {
        self.weight.dim(0)
    }
}
