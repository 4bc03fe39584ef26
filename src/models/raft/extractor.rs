//! RAFT's feature and context encoders (princeton-vl/RAFT `core/extractor.py`: BasicEncoder,
//! ResidualBlock): `fnet` with InstanceNorm2d (no affine), `cnet` with BatchNorm2d (eval: running
//! statistics). Widths come from the checkpoint ([`EncoderWidths`]).

use super::Conv;
use crate::error::Result;
use crate::ops::elementwise::{add, add_bcast, mul_bcast, relu};
use crate::ops::group_norm::group_norm;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// BasicEncoder's widths: conv1 / layer1, layer2, layer3, conv2 (RAFT-large: 64, 96, 128 and 256
/// for fnet, 256 = hidden + context for cnet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderWidths {
    pub layers: [usize; 3],
    pub out: usize,
}

/// `nn.InstanceNorm2d(C)` (eps 1e-5, biased variance, no affine) is GroupNorm with one channel
/// per group and unit gain; `nn.BatchNorm2d` in eval is x·α + β per channel, with ATen's
/// α = γ/√(var + eps), β = b − mean·α.
pub enum Norm {
    Instance { ones: Tensor, zeros: Tensor },
    Batch { alpha: Tensor, beta: Tensor },
}

impl Norm {
    fn load(w: &Scope, c: usize, batch: bool) -> Result<Norm> {
        let gpu = w.w.gpu();
        if !batch {
            return Ok(Norm::Instance { ones: Tensor::from_f32(gpu, &[c], &vec![1.0; c])?, zeros: Tensor::zeros(gpu, &[c], crate::DType::F32)? });
        }
        let get = |n: &str| w.w.host_f32(&w.key(n), &[c]);
        let (gamma, b, mean, var) = (get("weight")?, get("bias")?, get("running_mean")?, get("running_var")?);
        // num_batches_tracked (an int64 training counter) is not used in eval.
        w.w.ignore(&w.key("num_batches_tracked"));
        // |var|: a real running variance is ≥ 0; synthetic weights draw it symmetric.
        let alpha: Vec<f32> = (0..c).map(|i| (1.0f32 / (var[i].abs() + 1e-5f32).sqrt()) * gamma[i]).collect();
        let beta: Vec<f32> = (0..c).map(|i| b[i] - mean[i] * alpha[i]).collect();
        Ok(Norm::Batch { alpha: Tensor::from_f32(gpu, &[c], &alpha)?, beta: Tensor::from_f32(gpu, &[c], &beta)? })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Norm::Instance { ones, zeros } => group_norm(x, ones, zeros, x.dim(1), 1e-5, false),
            Norm::Batch { alpha, beta } => {
                let plane = x.dim(2) * x.dim(3);
                add_bcast(&mul_bcast(x, alpha, plane)?, beta, plane)
            }
        }
    }
}

pub struct ResidualBlock {
    pub conv1: Conv,
    pub conv2: Conv,
    pub norm1: Norm,
    pub norm2: Norm,
    /// `downsample.0` (1×1 conv with the stride) and `norm3` (its norm, `downsample.1`).
    pub downsample: Option<(Conv, Norm)>,
}

impl ResidualBlock {
    fn load(w: &Scope, cin: usize, c: usize, stride: usize, batch: bool) -> Result<ResidualBlock> {
        let downsample = if stride == 1 {
            None
        } else {
            Some((Conv::load(&w.at("downsample.0"), cin, c, [1, 1], stride, [0, 0])?, Norm::load(&w.at("norm3"), c, batch)?))
        };
        if batch && stride != 1 {
            // nn.Sequential(conv, self.norm3) registers the same BatchNorm twice.
            for k in ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"] {
                w.w.ignore(&w.key(&format!("downsample.1.{k}")));
            }
        }
        Ok(ResidualBlock {
            conv1: Conv::load(&w.at("conv1"), cin, c, [3, 3], stride, [1, 1])?,
            conv2: Conv::load(&w.at("conv2"), c, c, [3, 3], 1, [1, 1])?,
            norm1: Norm::load(&w.at("norm1"), c, batch)?,
            norm2: Norm::load(&w.at("norm2"), c, batch)?,
            downsample,
        })
    }

    fn forward(&self, x: Tensor) -> Result<Tensor> {
        let y = relu(&self.norm1.forward(&self.conv1.forward(&x)?)?)?;
        let y = relu(&self.norm2.forward(&self.conv2.forward(&y)?)?)?;
        let x = match &self.downsample {
            Some((conv, norm)) => norm.forward(&conv.forward(&x)?)?,
            None => x,
        };
        relu(&add(&x, &y)?)
    }
}

pub struct BasicEncoder {
    pub conv1: Conv,
    pub norm1: Norm,
    pub layers: Vec<[ResidualBlock; 2]>,
    pub conv2: Conv,
}

impl BasicEncoder {
    pub fn load(w: &Scope, widths: EncoderWidths, batch: bool) -> Result<BasicEncoder> {
        let c0 = widths.layers[0];
        let mut layers = Vec::new();
        let mut cin = c0;
        for (i, &c) in widths.layers.iter().enumerate() {
            let l = w.at(format!("layer{}", i + 1));
            let stride = if i == 0 { 1 } else { 2 };
            layers.push([ResidualBlock::load(&l.at("0"), cin, c, stride, batch)?, ResidualBlock::load(&l.at("1"), c, c, 1, batch)?]);
            cin = c;
        }
        Ok(BasicEncoder {
            conv1: Conv::load(&w.at("conv1"), 3, c0, [7, 7], 2, [3, 3])?,
            norm1: Norm::load(&w.at("norm1"), c0, batch)?,
            layers,
            conv2: Conv::load(&w.at("conv2"), cin, widths.out, [1, 1], 1, [0, 0])?,
        })
    }

    /// Images [N, 3, H, W] (RAFT's 2·(I/255) − 1) → features [N, out, H/8, W/8].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = relu(&self.norm1.forward(&self.conv1.forward(x)?)?)?;
        for [a, b] in &self.layers {
            x = b.forward(a.forward(x)?)?;
        }
        self.conv2.forward(&x)
    }
}
