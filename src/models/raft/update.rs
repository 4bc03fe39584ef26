//! RAFT's update block (princeton-vl/RAFT `core/update.py`: BasicUpdateBlock =
//! BasicMotionEncoder `encoder`, SepConvGRU `gru`, FlowHead `flow_head`, the upsampling mask
//! `mask`).

use super::{Conv, RaftConfig};
use crate::error::Result;
use crate::ops::elementwise::{relu, scale};
use crate::ops::gru::{gru_reset, gru_update};
use crate::ops::layout::cat;
use crate::tensor::Tensor;
use crate::weights::Scope;

/// Correlation features: 4 levels of a 9×9 window.
pub const CORR_PLANES: usize = 4 * 81;

pub struct BasicMotionEncoder {
    pub convc1: Conv,
    pub convc2: Conv,
    pub convf1: Conv,
    pub convf2: Conv,
    pub conv: Conv,
}

impl BasicMotionEncoder {
    fn load(w: &Scope, c: &RaftConfig) -> Result<BasicMotionEncoder> {
        let m = c.motion;
        Ok(BasicMotionEncoder {
            convc1: Conv::load(&w.at("convc1"), CORR_PLANES, m[0], [1, 1], 1, [0, 0])?,
            convc2: Conv::load(&w.at("convc2"), m[0], m[1], [3, 3], 1, [1, 1])?,
            convf1: Conv::load(&w.at("convf1"), 2, m[2], [7, 7], 1, [3, 3])?,
            convf2: Conv::load(&w.at("convf2"), m[2], m[3], [3, 3], 1, [1, 1])?,
            conv: Conv::load(&w.at("conv"), m[1] + m[3], m[4], [3, 3], 1, [1, 1])?,
        })
    }

    /// [relu(conv([cor, flo])), flow]: (motion + 2) channels.
    fn forward(&self, flow: &Tensor, corr: &Tensor) -> Result<Tensor> {
        let cor = relu(&self.convc1.forward(corr)?)?;
        let cor = relu(&self.convc2.forward(&cor)?)?;
        let flo = relu(&self.convf1.forward(flow)?)?;
        let flo = relu(&self.convf2.forward(&flo)?)?;
        let out = relu(&self.conv.forward(&cat(&[&cor, &flo], 1)?)?)?;
        cat(&[&out, flow], 1)
    }
}

/// SepConvGRU: a (1×5) then a (5×1) GRU. convz and convr of each run as one conv (their weights
/// stacked on the host), the gates in `ops::gru`.
pub struct SepConvGRU {
    /// (stacked z|r conv, q conv) for the horizontal (`*1`) and vertical (`*2`) passes.
    pub passes: [(Conv, Conv); 2],
}

impl SepConvGRU {
    fn load(w: &Scope, hidden: usize, input: usize) -> Result<SepConvGRU> {
        let pass = |i: usize, k: [usize; 2], pad: [usize; 2]| -> Result<(Conv, Conv)> {
            let z = Conv::load_host(&w.at(format!("convz{i}")), hidden + input, hidden, k)?;
            let r = Conv::load_host(&w.at(format!("convr{i}")), hidden + input, hidden, k)?;
            let zr = Conv::from_host(w.w.gpu(), [&z, &r], hidden + input, k, 1, pad)?;
            Ok((zr, Conv::load(&w.at(format!("convq{i}")), hidden + input, hidden, k, 1, pad)?))
        };
        Ok(SepConvGRU { passes: [pass(1, [1, 5], [0, 2])?, pass(2, [5, 1], [2, 0])?] })
    }

    fn forward(&self, mut h: Tensor, x: &Tensor) -> Result<Tensor> {
        for (zr_conv, q_conv) in &self.passes {
            let zr = zr_conv.forward(&cat(&[&h, x], 1)?)?;
            let rh = gru_reset(&zr, &h)?;
            let q = q_conv.forward(&cat(&[&rh, x], 1)?)?;
            h = gru_update(&zr, &h, &q)?;
        }
        Ok(h)
    }
}

pub struct BasicUpdateBlock {
    pub encoder: BasicMotionEncoder,
    pub gru: SepConvGRU,
    /// FlowHead: conv1 (3×3) → ReLU → conv2 (3×3, 2 channels).
    pub flow_head: [Conv; 2],
    /// `mask.0` (3×3) → ReLU → `mask.2` (1×1, 576), scaled by 0.25.
    pub mask: [Conv; 2],
}

impl BasicUpdateBlock {
    pub fn load(w: &Scope, c: &RaftConfig) -> Result<BasicUpdateBlock> {
        let input = c.context + c.motion[4] + 2;
        let fh = w.at("flow_head");
        Ok(BasicUpdateBlock {
            encoder: BasicMotionEncoder::load(&w.at("encoder"), c)?,
            gru: SepConvGRU::load(&w.at("gru"), c.hidden, input)?,
            flow_head: [
                Conv::load(&fh.at("conv1"), c.hidden, c.flow_head, [3, 3], 1, [1, 1])?,
                Conv::load(&fh.at("conv2"), c.flow_head, 2, [3, 3], 1, [1, 1])?,
            ],
            mask: [
                Conv::load(&w.at("mask.0"), c.hidden, c.mask, [3, 3], 1, [1, 1])?,
                Conv::load(&w.at("mask.2"), c.mask, 576, [1, 1], 1, [0, 0])?,
            ],
        })
    }

    /// One iteration: the new hidden state and Δflow.
    pub fn forward(&self, net: Tensor, inp: &Tensor, corr: &Tensor, flow: &Tensor) -> Result<(Tensor, Tensor)> {
        let motion = self.encoder.forward(flow, corr)?;
        let x = cat(&[inp, &motion], 1)?;
        let net = self.gru.forward(net, &x)?;
        let delta = self.flow_head[1].forward(&relu(&self.flow_head[0].forward(&net)?)?)?;
        Ok((net, delta))
    }

    /// `.25 * self.mask(net)`: only the last iteration's is used in test mode.
    pub fn up_mask(&self, net: &Tensor) -> Result<Tensor> {
        scale(&self.mask[1].forward(&relu(&self.mask[0].forward(net)?)?)?, 0.25)
    }
}
