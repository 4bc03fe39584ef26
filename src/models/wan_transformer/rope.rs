//! `rope`: diffusers' WanRotaryPosEmbed. Its tables depend only on the token grid, so they are
//! built (in f64 on the host, `ops::rope`) once per grid and kept: every step and both guidance
//! passes of a video reuse them, and a forward pass uploads nothing once they exist.

use crate::error::Result;
use crate::gpu::Gpu;
use crate::ops::rope::RopeTables;
use std::sync::{Arc, Mutex};

pub struct WanRotaryPosEmbed {
    pub head_dim: usize,
    pub max_seq_len: usize,
    cached: Mutex<Option<Arc<RopeTables>>>,
}

impl WanRotaryPosEmbed {
    pub fn new(head_dim: usize, max_seq_len: usize) -> WanRotaryPosEmbed {
        WanRotaryPosEmbed { head_dim, max_seq_len, cached: Mutex::new(None) }
    }

    /// Drops the kept tables. A pipeline calls this when a video starts and ends, so each run
    /// makes (and its memory plan sees) the same allocations, and the tables do not outlive
    /// the denoising loop.
    pub fn reset(&self) {
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The tables for a post-patch grid (F', H', W'): the cached ones when the grid is the same.
    pub fn tables(&self, gpu: &Arc<Gpu>, grid: [usize; 3]) -> Result<Arc<RopeTables>> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = cached.as_ref().filter(|t| t.grid() == grid) {
            return Ok(t.clone());
        }
        // Free the old grid's tables before making the new ones.
        *cached = None;
        let t = Arc::new(RopeTables::new(gpu, self.head_dim, grid, self.max_seq_len)?);
        *cached = Some(t.clone());
        Ok(t)
    }
}
