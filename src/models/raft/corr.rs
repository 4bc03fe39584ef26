//! RAFT's CorrBlock (princeton-vl/RAFT `core/corr.py`): the all-pairs correlation of the two
//! frames' 1/8 features, F1ᵀF2/√D, as a GEMM (one row per query pixel), and its 4-level pyramid
//! (2×2 average pools over the second frame's grid). The level-0 volume is (HW/64)² floats —
//! 156 MB at 832×480 — so it is kept as chunks of query rows, each within one storage binding;
//! a lookup reads each pixel's own row only, so chunks never meet.

use crate::error::{Error, Result};
use crate::ops::corr::{corr_lookup, corr_pool};
use crate::ops::elementwise::scale;
use crate::ops::layout::permute;
use crate::ops::matmul::linear;
use crate::tensor::{DType, Tensor};

pub const LEVELS: usize = 4;
pub const RADIUS: usize = 4;

pub struct CorrBlock {
    /// Per chunk: its first query pixel and the 4 levels' [rows, h_l, w_l].
    chunks: Vec<(usize, Vec<Tensor>)>,
    h: usize,
    w: usize,
}

impl CorrBlock {
    /// fmap1, fmap2: [1, D, h, w].
    pub fn new(fmap1: &Tensor, fmap2: &Tensor) -> Result<CorrBlock> {
        let (d, h, w) = (fmap1.dim(1), fmap1.dim(2), fmap1.dim(3));
        let hw = h * w;
        if h >> (LEVELS - 1) == 0 || w >> (LEVELS - 1) == 0 {
            return Err(Error::Other(format!("RAFT: a {h}×{w} feature grid has no level-{} correlation pyramid (frames must pad to at least 64 px a side)", LEVELS - 1)));
        }
        let gpu = fmap1.gpu().clone();
        let row_bytes = 4 * hw as u64;
        if row_bytes + 512 > gpu.max_binding() {
            return Err(Error::Other(format!(
                "RAFT: one correlation row of a {h}×{w} feature grid ({row_bytes} bytes) exceeds the adapter's largest storage binding ({} bytes)",
                gpu.max_binding()
            )));
        }
        // F1ᵀ scaled by 1/√D before the product (a power of two for D = 4^k, so the same as
        // torch's division after it), F2ᵀ as the GEMM's weight: rows of F1ᵀ·F2.
        let f1 = scale(&permute(&fmap1.reshape(&[d, hw])?, &[1, 0])?, 1.0 / (d as f32).sqrt())?;
        let f2 = permute(&fmap2.reshape(&[d, hw])?, &[1, 0])?;
        let per = (((gpu.max_binding() - 512) / row_bytes) as usize).clamp(1, hw);
        let mut chunks = Vec::new();
        for r0 in (0..hw).step_by(per) {
            let rows = per.min(hw - r0);
            let mut level = linear(&f1.narrow0(r0, rows)?, &f2, None)?.reshape(&[rows, h, w])?;
            let mut levels = Vec::with_capacity(LEVELS);
            for _ in 1..LEVELS {
                let next = corr_pool(&level)?;
                levels.push(level);
                level = next;
            }
            levels.push(level);
            chunks.push((r0, levels));
        }
        Ok(CorrBlock { chunks, h, w })
    }

    /// CorrBlock.__call__: coords [2, h, w] → [1, 4·81, h, w].
    pub fn lookup(&self, coords: &Tensor) -> Result<Tensor> {
        let out = Tensor::empty(coords.gpu(), &[LEVELS * 81, self.h, self.w], DType::F32)?;
        for (r0, levels) in &self.chunks {
            for (i, level) in levels.iter().enumerate() {
                corr_lookup(level, coords, *r0, i, RADIUS, &out)?;
            }
        }
        out.reshape(&[1, LEVELS * 81, self.h, self.w])
    }
}
