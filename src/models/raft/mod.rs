//! RAFT (Teed & Deng, ECCV 2020; princeton-vl/RAFT `core/raft.py`), RAFT-large as VBench runs it
//! for dynamic degree and its static filter: `small=False`, fp32, test mode, 20 iterations.
//! Modules are named and nested like `raft-things.pth`'s state dict (`module.` stripped):
//! `fnet` / `cnet` ([`extractor::BasicEncoder`], instance / batch norm), `update_block`
//! ([`update::BasicUpdateBlock`]: `encoder.convc1…`, `gru.convz1…`, `flow_head.conv1…`,
//! `mask.0/2`), the correlation pyramid in [`corr`]. Every width is read from the checkpoint's
//! shapes (RAFT-large's are literals in RAFT's code; the fixtures use the same code narrowed).
//! Everything runs on t2v's kernels: conv2d (rectangular for the GRU), group norm as instance
//! norm, the correlation GEMM, `ops::corr`, `ops::gru`, `ops::flow_upsample`.

pub mod corr;
pub mod extractor;
pub mod update;

use crate::error::{shape_err, Error, Result};
use crate::ops::conv2d::conv2d_rect;
use crate::ops::elementwise::{add, lincomb2, relu, tanh};
use crate::ops::flow_upsample::convex_upsample;
use crate::tensor::Tensor;
use crate::weights::{Placement, Scope, Weights};
use crate::{DType, Gpu};
use extractor::{BasicEncoder, EncoderWidths};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use update::BasicUpdateBlock;

/// VBench's RAFT checkpoint on the hub: a third-party copy of princeton-vl's `raft-things.pth`
/// (BSD-3-Clause; the authors host it on Dropbox only — VBENCH.md §5).
pub const DEFAULT_REPO: &str = "ddrfan/RAFT";
pub const DEFAULT_FILE: &str = "raft-things.pth";
/// What `--raft-model` defaults to: `repo:file`.
pub const DEFAULT_MODEL: &str = "ddrfan/RAFT:raft-things.pth";
/// VBench's `iters=20`.
pub const ITERS: usize = 20;

/// A convolution with its geometry (torch's `nn.Conv2d(cin, cout, (kh, kw), stride, padding)`).
pub struct Conv {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: usize,
    pub pad: [usize; 2],
}

/// A conv's parameters on the host (to stack several into one conv).
pub struct HostConv {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub cout: usize,
}

impl Conv {
    pub fn load(w: &Scope, cin: usize, cout: usize, k: [usize; 2], stride: usize, pad: [usize; 2]) -> Result<Conv> {
        Ok(Conv { weight: w.tensor("weight", &[cout, cin, k[0], k[1]])?, bias: w.vector("bias", cout)?, stride, pad })
    }

    pub fn load_host(w: &Scope, cin: usize, cout: usize, k: [usize; 2]) -> Result<HostConv> {
        Ok(HostConv { weight: w.w.host_f32(&w.key("weight"), &[cout, cin, k[0], k[1]])?, bias: w.w.host_f32(&w.key("bias"), &[cout])?, cout })
    }

    /// Convs over the same input stacked along output channels (one conv, same per-channel math).
    pub fn from_host(gpu: &Arc<Gpu>, parts: [&HostConv; 2], cin: usize, k: [usize; 2], stride: usize, pad: [usize; 2]) -> Result<Conv> {
        let cout: usize = parts.iter().map(|p| p.cout).sum();
        let weight: Vec<f32> = parts.iter().flat_map(|p| p.weight.iter().copied()).collect();
        let bias: Vec<f32> = parts.iter().flat_map(|p| p.bias.iter().copied()).collect();
        Ok(Conv { weight: Tensor::from_f32(gpu, &[cout, cin, k[0], k[1]], &weight)?, bias: Tensor::from_f32(gpu, &[cout], &bias)?, stride, pad })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        conv2d_rect(x, &self.weight, Some(&self.bias), self.stride, self.pad)
    }
}

/// RAFT-large's widths, or a checkpoint's (read from its shapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftConfig {
    pub fnet: EncoderWidths,
    pub cnet: EncoderWidths,
    /// GRU state (`hidden_dim`) and context (`context_dim`): cnet.out = hidden + context.
    pub hidden: usize,
    pub context: usize,
    /// convc1, convc2, convf1, convf2, conv (RAFT-large: 256, 192, 128, 64, 126).
    pub motion: [usize; 5],
    pub flow_head: usize,
    pub mask: usize,
}

impl Default for RaftConfig {
    fn default() -> Self {
        let enc = |out| EncoderWidths { layers: [64, 96, 128], out };
        RaftConfig { fnet: enc(256), cnet: enc(256), hidden: 128, context: 128, motion: [256, 192, 128, 64, 126], flow_head: 256, mask: 256 }
    }
}

impl RaftConfig {
    /// RAFT-large with every width divided by `d` (2, 4, 8 or 16): `tiny-random` and tests.
    pub fn narrowed(d: usize) -> RaftConfig {
        let c = RaftConfig::default();
        let n = |x: usize| x / d;
        let enc = |e: EncoderWidths| EncoderWidths { layers: e.layers.map(n), out: n(e.out) };
        RaftConfig { fnet: enc(c.fnet), cnet: enc(c.cnet), hidden: n(128), context: n(128), motion: [n(256), n(192), n(128), n(64), n(128) - 2], flow_head: n(256), mask: n(256) }
    }

    /// The widths of a stored checkpoint under `prefix` (e.g. "module"), from its shapes.
    pub fn from_weights(w: &Weights, prefix: &str) -> Result<RaftConfig> {
        let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        let out = |k: &str| -> Result<usize> {
            let s = w.stored_shape(&key(&format!("{k}.weight"))).ok_or_else(|| Error::Other(format!("RAFT checkpoint {}: no '{}.weight'", w.component, key(k))))?;
            Ok(s[0])
        };
        let enc = |e: &str| -> Result<EncoderWidths> {
            Ok(EncoderWidths { layers: [out(&format!("{e}.layer1.0.conv1"))?, out(&format!("{e}.layer2.0.conv1"))?, out(&format!("{e}.layer3.0.conv1"))?], out: out(&format!("{e}.conv2"))? })
        };
        let (fnet, cnet) = (enc("fnet")?, enc("cnet")?);
        let hidden = out("update_block.gru.convz1")?;
        if cnet.out <= hidden {
            return shape_err("raft", format!("cnet's {} output channels do not hold the GRU's {hidden} plus a context", cnet.out));
        }
        let u = |k: &str| out(&format!("update_block.{k}"));
        Ok(RaftConfig {
            fnet,
            cnet,
            hidden,
            context: cnet.out - hidden,
            motion: [u("encoder.convc1")?, u("encoder.convc2")?, u("encoder.convf1")?, u("encoder.convf2")?, u("encoder.conv")?],
            flow_head: u("flow_head.conv1")?,
            mask: u("mask.0")?,
        })
    }
}

/// What the frame size means for RAFT's 4-level pyramid on the 1/8 grid of the padded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFit {
    /// Every level at least 2×2.
    Fits,
    /// The coarsest level has a side of 1 (padded side 64–120 px): RAFT's `bilinear_sampler`
    /// divides by W − 1 = 0 and torch's flow is NaN everywhere; VBench then compares NaN scores.
    NanFlow,
    /// Padded side below 64 px: torch's avg_pool2d refuses the empty level (VBench fails).
    TooSmall,
}

impl FrameFit {
    pub fn of(h: usize, w: usize) -> FrameFit {
        let (hp, wp) = (h.div_ceil(8) * 8, w.div_ceil(8) * 8);
        let coarsest = (hp / 8).min(wp / 8) >> 3;
        match coarsest {
            0 => FrameFit::TooSmall,
            1 => FrameFit::NanFlow,
            _ => FrameFit::Fits,
        }
    }
}

/// RAFT's InputPadder(mode='sintel'): (top, bottom, left, right) replicate padding to a multiple of 8.
pub fn sintel_padding(h: usize, w: usize) -> [usize; 4] {
    let (ph, pw) = ((((h / 8) + 1) * 8 - h) % 8, (((w / 8) + 1) * 8 - w) % 8);
    [ph / 2, ph - ph / 2, pw / 2, pw - pw / 2]
}

/// An RGB u8 frame (H, W, 3) as RAFT's input: replicate-padded (sintel) and 2·(I/255) − 1,
/// (3, H', W') f32.
pub fn prepare_frame(rgb: &[u8], h: usize, w: usize) -> (Vec<f32>, usize, usize) {
    let [top, bottom, left, right] = sintel_padding(h, w);
    let (hp, wp) = (h + top + bottom, w + left + right);
    let mut out = vec![0f32; 3 * hp * wp];
    for c in 0..3 {
        for y in 0..hp {
            let sy = y.saturating_sub(top).min(h - 1);
            for x in 0..wp {
                let sx = x.saturating_sub(left).min(w - 1);
                out[(c * hp + y) * wp + x] = 2.0 * (rgb[(sy * w + sx) * 3 + c] as f32 / 255.0) - 1.0;
            }
        }
    }
    (out, hp, wp)
}

/// Intermediates of one forward, read back for the tests (the first pair's fixture dump).
#[derive(Default)]
pub struct RaftTrace {
    /// fnet of both images (2, D, h, w), cnet's tanh / ReLU halves, the lookup of iteration 1.
    pub fmap: Vec<f32>,
    pub net: Vec<f32>,
    pub inp: Vec<f32>,
    pub corr1: Vec<f32>,
    pub flow_low: Vec<f32>,
}

pub struct Raft {
    pub config: RaftConfig,
    pub fnet: BasicEncoder,
    pub cnet: BasicEncoder,
    pub update_block: BasicUpdateBlock,
}

impl Raft {
    pub fn load(w: &Scope, config: RaftConfig) -> Result<Raft> {
        let c = &config;
        Ok(Raft {
            fnet: BasicEncoder::load(&w.at("fnet"), c.fnet, false)?,
            cnet: BasicEncoder::load(&w.at("cnet"), c.cnet, true)?,
            update_block: BasicUpdateBlock::load(&w.at("update_block"), c)?,
            config,
        })
    }

    /// `RAFT.forward(image1, image2, iters, test_mode=True)` on prepared frames (3, h, w) (see
    /// [`prepare_frame`]; h, w multiples of 8): the upsampled flow (1, 2, h, w).
    pub fn forward(&self, image1: &[f32], image2: &[f32], h: usize, w: usize, iters: usize, mut trace: Option<&mut RaftTrace>) -> Result<Tensor> {
        if h % 8 != 0 || w % 8 != 0 || image1.len() != 3 * h * w || image2.len() != 3 * h * w {
            return shape_err("raft", format!("two (3, {h}, {w}) frames with sides multiple of 8 expected"));
        }
        if FrameFit::of(h, w) != FrameFit::Fits {
            return shape_err("raft", format!("{h}×{w} frames are below RAFT's 128-px pyramid (FrameFit::of)"));
        }
        let gpu = self.fnet.conv2.weight.gpu().clone();
        let c = &self.config;
        let (h8, w8) = (h / 8, w / 8);
        let both: Vec<f32> = image1.iter().chain(image2).copied().collect();
        let fmap = self.fnet.forward(&Tensor::from_f32(&gpu, &[2, 3, h, w], &both)?)?;
        let corr = corr::CorrBlock::new(&fmap.narrow0(0, 1)?, &fmap.narrow0(1, 1)?)?;
        let cnet = self.cnet.forward(&Tensor::from_f32(&gpu, &[1, 3, h, w], image1)?)?.reshape(&[c.cnet.out, h8, w8])?;
        let mut net = tanh(&cnet.narrow0(0, c.hidden)?)?.reshape(&[1, c.hidden, h8, w8])?;
        let inp = relu(&cnet.narrow0(c.hidden, c.context)?)?.reshape(&[1, c.context, h8, w8])?;
        drop(cnet);
        if let Some(t) = trace.as_deref_mut() {
            (t.fmap, t.net, t.inp) = (fmap.to_f32()?, net.to_f32()?, inp.to_f32()?);
        }
        drop(fmap);
        // coords_grid: (x, y) planes of the 1/8 grid.
        let mut grid = vec![0f32; 2 * h8 * w8];
        for y in 0..h8 {
            for x in 0..w8 {
                grid[y * w8 + x] = x as f32;
                grid[h8 * w8 + y * w8 + x] = y as f32;
            }
        }
        let coords0 = Tensor::from_f32(&gpu, &[1, 2, h8, w8], &grid)?;
        let mut coords1 = Tensor::from_f32(&gpu, &[1, 2, h8, w8], &grid)?;
        for itr in 0..iters {
            let lookup = corr.lookup(&coords1.reshape(&[2, h8, w8])?)?;
            if itr == 1 {
                if let Some(t) = trace.as_deref_mut() {
                    t.corr1 = lookup.to_f32()?;
                }
            }
            let flow = lincomb2(&coords1, 1.0, &coords0, -1.0)?;
            let (n, delta) = self.update_block.forward(net, &inp, &lookup, &flow)?;
            net = n;
            coords1 = add(&coords1, &delta)?;
        }
        let flow = lincomb2(&coords1, 1.0, &coords0, -1.0)?;
        if let Some(t) = trace {
            t.flow_low = flow.to_f32()?;
        }
        convex_upsample(&flow, &self.update_block.up_mask(&net)?)
    }
}

/// A loaded RAFT checkpoint.
pub struct RaftModel {
    pub raft: Raft,
}

impl RaftModel {
    /// From a weight file: `raft-things.pth` (torch.save zip of the DataParallel state dict:
    /// keys `module.…`), or safetensors with or without the prefix.
    pub fn load(gpu: &Arc<Gpu>, path: &Path) -> Result<RaftModel> {
        let file = if path.is_dir() { find_file(path)? } else { path.to_path_buf() };
        let w = Weights::open_files(gpu, &file.display().to_string(), std::slice::from_ref(&file), Placement { matrices: DType::F32 })?;
        let prefix = if w.stored_shape("module.fnet.conv1.weight").is_some() { "module" } else { "" };
        let config = RaftConfig::from_weights(&w, prefix)?;
        let raft = Raft::load(&w.at(prefix), config)?;
        w.finish()?;
        Ok(RaftModel { raft })
    }
}

fn find_file(dir: &Path) -> Result<PathBuf> {
    for name in ["raft-things.safetensors", "model.safetensors", "raft-things.pth"] {
        if dir.join(name).is_file() {
            return Ok(dir.join(name));
        }
    }
    Err(Error::Other(format!("{}: no raft-things.pth, raft-things.safetensors or model.safetensors in the folder", dir.display())))
}

/// The weight file of `--raft-model`: a local file or folder, `tiny-random` (RAFT-large's
/// architecture at 1/8 widths, random, made on first use: offline runs, meaningless scores), or
/// `owner/repo:file` on the hub (fetched into the Hugging Face cache; `owner/repo` alone means
/// its `raft-things.pth`).
pub fn resolve_with(model: &str, gpu: &Arc<Gpu>) -> Result<PathBuf> {
    if model == crate::weights::tiny_random::NAME {
        return ensure_tiny_random(gpu);
    }
    let path = Path::new(model);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    let (repo, file) = model.split_once(':').unwrap_or((model, DEFAULT_FILE));
    if !repo.contains('/') {
        return Err(Error::Other(format!("RAFT model '{model}' is neither a file, a folder nor a hub repo like {DEFAULT_MODEL}")));
    }
    let dir = crate::weights::hub::fetch_files(repo, &[], &[file])?;
    Ok(dir.join(file))
}

/// Bump when the generated model changes.
const TINY_VERSION: &str = "1";

/// The tiny-random RAFT: every width / 8, random weights written as safetensors (keys as
/// raft-things.pth without `module.`).
pub fn ensure_tiny_random(gpu: &Arc<Gpu>) -> Result<PathBuf> {
    use crate::weights::tiny_random::{cache_root, generate};
    let dir = cache_root().join(format!("{}-raft-v{TINY_VERSION}", crate::weights::tiny_random::NAME));
    let dir = generate(&dir, "model.safetensors", &|tmp| {
        let w = Weights::synthetic(gpu, "raft", Placement { matrices: DType::F32 });
        Raft::load(&w.at(""), RaftConfig::narrowed(8))?;
        std::fs::create_dir_all(tmp).map_err(|e| Error::Other(format!("creating {}: {e}", tmp.display())))?;
        let st = tmp.join("model.safetensors");
        crate::weights::write_f32(&st, &w.synthesized()).map_err(|e| Error::Other(format!("writing {}: {e}", st.display())))
    })?;
    Ok(dir.join("model.safetensors"))
}
