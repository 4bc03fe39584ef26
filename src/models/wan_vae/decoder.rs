use super::attention_block::WanAttentionBlock;
use super::cache::CausalCache;
use super::causal_conv::CausalConv3d;
use super::norm::WanRmsNorm;
use super::residual_block::WanResidualBlock;
use super::up_blocks::WanUpBlock;
use super::AutoencoderKLWanConfig;
use crate::error::{shape_err, Result};
use crate::ops::layout::copy_into;
use crate::tensor::{DType, Tensor};
use crate::weights::Scope;

/// `WanMidBlock` (num_layers 1): resnet → attention → resnet.
pub struct WanMidBlock {
    pub resnets: [WanResidualBlock; 2],
    pub attention: WanAttentionBlock,
}

impl WanMidBlock {
    pub fn load(w: &Scope, c: usize, slots: &mut usize) -> Result<WanMidBlock> {
        let r0 = WanResidualBlock::load(&w.at("resnets.0"), c, c, slots)?;
        let attention = WanAttentionBlock::load(&w.at("attentions.0"), c)?;
        let r1 = WanResidualBlock::load(&w.at("resnets.1"), c, c, slots)?;
        Ok(WanMidBlock { resnets: [r0, r1], attention })
    }

    pub fn forward(&self, x: Tensor, cache: &mut CausalCache) -> Result<Tensor> {
        let x = self.resnets[0].forward(x, cache)?;
        let x = self.attention.forward(x)?;
        self.resnets[1].forward(x, cache)
    }
}

/// `WanDecoder3d`: conv_in → mid block → up blocks → norm_out · SiLU → conv_out (Wan 2.2:
/// residual up blocks, and conv_out's channels are pixel patches the VAE unpatchifies).
pub struct WanDecoder3d {
    pub conv_in: CausalConv3d,
    pub mid_block: WanMidBlock,
    pub up_blocks: Vec<WanUpBlock>,
    pub norm_out: WanRmsNorm,
    pub conv_out: CausalConv3d,
    z_dim: usize,
    /// Cache slots used (diffusers' feat_cache entries that are ever filled: 32 for Wan 2.1).
    pub slots: usize,
    /// First up block after the last one that doubles the frames (2 for Wan 2.1).
    per_frame_from: usize,
}

impl WanDecoder3d {
    pub fn load(w: &Scope, c: &AutoencoderKLWanConfig) -> Result<WanDecoder3d> {
        let dims = c.decoder_dims();
        let up = c.temperal_upsample();
        let mut slots = 0;
        let conv_in = CausalConv3d::load(&w.at("conv_in"), c.z_dim, dims[0], 3, 3, &mut slots)?;
        let mid_block = WanMidBlock::load(&w.at("mid_block"), dims[0], &mut slots)?;
        let levels = c.dim_mult.len();
        let mut up_blocks = Vec::new();
        for i in 0..levels {
            // Wan 2.1: every upsampler halved the channels of the level before (Wan 2.2's keep them).
            let cin = if i > 0 && !c.is_residual { dims[i] / 2 } else { dims[i] };
            let upsample = (i + 1 < levels).then(|| up[i]);
            up_blocks.push(WanUpBlock::load(&w.at(format!("up_blocks.{i}")), cin, dims[i + 1], c.num_res_blocks, upsample, c.is_residual, &mut slots)?);
        }
        let last = dims[levels];
        let norm_out = WanRmsNorm::load(&w.at("norm_out"), last, false)?;
        let conv_out = CausalConv3d::load(&w.at("conv_out"), last, c.out_channels, 3, 3, &mut slots)?;
        let per_frame_from = up.iter().take(levels - 1).rposition(|&t| t).map_or(0, |i| i + 1);
        Ok(WanDecoder3d { conv_in, mid_block, up_blocks, norm_out, conv_out, z_dim: c.z_dim, slots, per_frame_from })
    }

    /// One chunk of latent frames (n, z_dim, h, w) (after post_quant_conv), continuing the
    /// stream held in `cache` → frames (n', out_channels, H, W): n' = 1 for the very first
    /// latent frame, 4 per later one (Wan 2.1). `clamp` fuses the decode's final clamp.
    pub fn forward(&self, x: &Tensor, cache: &mut CausalCache, clamp: bool) -> Result<Tensor> {
        self.forward_observed(x, cache, clamp, &mut |_, _, _| Ok(()))
    }

    /// [`forward`](Self::forward) showing `observe` each stage's output ("conv_in", "mid_block",
    /// "up_blocks.N") with the index of its first frame within the chunk's frames at that level
    /// (the stages after the last temporal upsampler run one frame at a time, see below).
    pub fn forward_observed(&self, x: &Tensor, cache: &mut CausalCache, clamp: bool, observe: &mut dyn FnMut(&str, usize, &Tensor) -> Result<()>) -> Result<Tensor> {
        if x.shape().len() != 4 || x.dim(1) != self.z_dim || x.dim(0) == 0 {
            return shape_err("wan_vae decoder", format!("latent frames (n, {}, h, w) expected, got {:?}", self.z_dim, x.shape()));
        }
        if cache.slots.len() != self.slots {
            return shape_err("wan_vae decoder", format!("cache has {} slots, this decoder uses {}", cache.slots.len(), self.slots));
        }
        let mut h = self.conv_in.forward(x, cache, false)?;
        observe("conv_in", 0, &h)?;
        h = self.mid_block.forward(h, cache)?;
        observe("mid_block", 0, &h)?;
        for (i, b) in self.up_blocks[..self.per_frame_from].iter().enumerate() {
            h = b.forward(h, cache)?;
            observe(&format!("up_blocks.{i}"), 0, &h)?;
        }
        // Past the last temporal upsampler every stage is per frame or a causal conv with its
        // cache, so the chunk's frames can go through one at a time with the same result (the
        // cache carries the stream) — a quarter of the full-resolution transients of a later
        // chunk (4 frames of 96 channels at 832×480 are 613 MB per activation).
        let n = h.dim(0);
        if n == 1 {
            return self.tail(h, cache, clamp, 0, observe);
        }
        let mut out: Option<Tensor> = None;
        for j in 0..n {
            let y = self.tail(h.narrow0(j, 1)?, cache, clamp, j, observe)?;
            let o = match &out {
                Some(o) => o.clone(),
                None => {
                    let o = Tensor::empty(y.gpu(), &[n, y.dim(1), y.dim(2), y.dim(3)], DType::F32)?;
                    out = Some(o.clone());
                    o
                }
            };
            copy_into(&y, &o.narrow0(j, 1)?)?;
        }
        out.ok_or_else(|| crate::Error::Shape { op: "wan_vae decoder", msg: "no frames".into() })
    }

    /// The up blocks from `per_frame_from` on, norm_out · SiLU and conv_out.
    fn tail(&self, mut h: Tensor, cache: &mut CausalCache, clamp: bool, frame: usize, observe: &mut dyn FnMut(&str, usize, &Tensor) -> Result<()>) -> Result<Tensor> {
        for (i, b) in self.up_blocks.iter().enumerate().skip(self.per_frame_from) {
            h = b.forward(h, cache)?;
            observe(&format!("up_blocks.{i}"), frame, &h)?;
        }
        let n = self.norm_out.forward(&h, true)?;
        drop(h);
        self.conv_out.forward(&n, cache, clamp)
    }
}
