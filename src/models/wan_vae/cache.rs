//! The decoder's causal caches (diffusers' `feat_cache`, `CACHE_T = 2`), held explicitly so a
//! memory plan can see them: one slot per 3-frame causal conv (and per upsample3d time_conv),
//! each keeping the last ≤ 2 frames of that conv's *input* stream across latent chunks.
//!
//! A slot is a fixed [2, C, H, W] buffer used as a two-frame ring, allocated at its first use
//! (in the first chunk) and written in place afterwards: no allocation or concatenation per
//! chunk. Its frames are handed to the conv as separate views (see `ops::conv3d`).
//!
//! Slots are f32 (diffusers' numbers) or, to halve the largest part of the decode's memory
//! (3.6 GiB at 832×480), f16: cached activations are then rounded to f16 as they are stored.

use crate::error::{shape_err, Result};
use crate::ops::conv3d::store_f16;
use crate::ops::layout::copy_into;
use crate::tensor::{DType, Tensor};

pub struct CacheSlot {
    dtype: DType,
    frames: Option<Tensor>,
    len: usize,
    newest: usize,
    /// upsample3d: the first chunk passed through without its time_conv (diffusers' "Rep").
    pub(crate) passed_first: bool,
}

impl CacheSlot {
    /// The cached frames, oldest first, each a (1, C, H, W) view.
    pub fn frames(&self) -> Result<Vec<Tensor>> {
        let Some(buf) = &self.frames else { return Ok(Vec::new()) };
        let order = match self.len {
            0 => vec![],
            1 => vec![self.newest],
            _ => vec![1 - self.newest, self.newest],
        };
        order.iter().map(|&i| buf.narrow0(i, 1)).collect()
    }

    /// Appends the frames of `x` (F, C, H, W) to the stream, keeping the last two.
    pub fn push(&mut self, x: &Tensor) -> Result<()> {
        let s = x.shape();
        if s.len() != 4 || s[0] == 0 {
            return shape_err("wan_vae cache", format!("frames (F, C, H, W) expected, got {s:?}"));
        }
        let buf = match &self.frames {
            Some(b) if b.shape()[1..] == s[1..] => b.clone(),
            Some(b) => return shape_err("wan_vae cache", format!("cached frames {:?} cannot continue with {s:?}", b.shape())),
            None => {
                let b = Tensor::empty(x.gpu(), &[2, s[1], s[2], s[3]], self.dtype)?;
                self.frames = Some(b.clone());
                b
            }
        };
        let f = s[0];
        let store = |src: &Tensor, dst: &Tensor| match dst.dtype() {
            DType::F16 => store_f16(src, dst),
            DType::F32 => copy_into(src, dst),
        };
        if f >= 2 {
            store(&x.narrow0(f - 2, 2)?, &buf)?;
            (self.len, self.newest) = (2, 1);
        } else {
            let at = if self.len == 0 { 0 } else { 1 - self.newest };
            store(x, &buf.narrow0(at, 1)?)?;
            self.newest = at;
            self.len = (self.len + 1).min(2);
        }
        Ok(())
    }

    /// Device bytes this slot holds (0 before its first use).
    pub fn bytes(&self) -> u64 {
        self.frames.as_ref().map_or(0, |b| b.bytes())
    }
}

/// Every cache slot of one decode, in diffusers' call order (conv_in, mid block, up blocks,
/// conv_out). Start a fresh one per video; it lives across all its latent chunks.
pub struct CausalCache {
    pub slots: Vec<CacheSlot>,
}

impl CausalCache {
    /// `dtype` F32 (exact) or F16 (half the bytes; activations rounded when cached).
    pub fn new(slots: usize, dtype: DType) -> CausalCache {
        CausalCache { slots: (0..slots).map(|_| CacheSlot { dtype, frames: None, len: 0, newest: 0, passed_first: false }).collect() }
    }

    pub fn bytes(&self) -> u64 {
        self.slots.iter().map(|s| s.bytes()).sum()
    }

    pub(crate) fn slot(&mut self, i: usize) -> Result<&mut CacheSlot> {
        let n = self.slots.len();
        self.slots.get_mut(i).ok_or_else(|| crate::Error::Shape { op: "wan_vae cache", msg: format!("slot {i} of a {n}-slot cache (a cache from another model?)") })
    }
}
