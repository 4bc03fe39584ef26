//! Wan's 3-D rotary position embedding (shaders/rope.wgsl), diffusers' `WanRotaryPosEmbed` +
//! `apply_rotary_emb`: interleaved channel pairs, tables built in f64 on the host and rounded
//! once to f32, applied in place to q or k [B, L, H·D] for a token grid (F', H', W').
//!
//! Head channels split into t/h/w = D − 4·(D//6), 2·(D//6), 2·(D//6) (44/42/42 of 128), in that
//! order. (Older diffusers split the concatenated tables by D − 2·(D//3), D//3, D//3,
//! which differs when D mod 6 = 4; 0.42.1 splits by the build dims. The kernel takes the split
//! columns as parameters so either could be expressed.)

use super::{chunk_ranges, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::gpu::Gpu;
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

const SRC: &str = include_str!("../../shaders/rope.wgsl");
const THETA: f64 = 10000.0;

/// The column layout of a head of `head_dim` channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    d: usize,
    /// Dims of the t, h, w tables (each even).
    build: [usize; 3],
    /// First columns of the h and w parts.
    split_h: usize,
    split_w: usize,
}

impl Columns {
    fn new(d: usize) -> Result<Columns> {
        if d == 0 || !d.is_multiple_of(2) {
            return shape_err("rope", format!("attention_head_dim {d} must be even and non-zero (channel pairs are rotated)"));
        }
        let hw = 2 * (d / 6);
        let t = d - 2 * hw;
        Ok(Columns { d, build: [t, hw, hw], split_h: t, split_w: t + hw })
    }

    /// Frequency of pair j (columns 2j, 2j+1) as its build table has it: 1/θ^(2i/dim) in f64.
    fn freq(&self, j: usize) -> f64 {
        let c = 2 * j;
        let (start, dim) = if c < self.build[0] {
            (0, self.build[0])
        } else if c < self.build[0] + self.build[1] {
            (self.build[0], self.build[1])
        } else {
            (self.build[0] + self.build[1], self.build[2])
        };
        let exponent = (c - start) as f64 / dim as f64;
        1.0 / THETA.powf(exponent)
    }

    /// Which grid axis (0 frames, 1 height, 2 width) gives column c its position.
    fn axis(&self, c: usize) -> usize {
        if c < self.split_h {
            0
        } else if c < self.split_w {
            1
        } else {
            2
        }
    }
}

/// Rotary tables for one token grid, on the device: (cos, sin) of pos·freq_j for every axis
/// position (F' + H' + W' rows) and pair j (D/2 columns).
pub struct RopeTables {
    table: Tensor,
    cols: Columns,
    grid: [usize; 3],
}

impl RopeTables {
    /// Tables for heads of `head_dim` channels over a post-patch grid (F', H', W');
    /// `max_seq_len` is diffusers' `rope_max_seq_len` (its tables have that many positions).
    pub fn new(gpu: &Arc<Gpu>, head_dim: usize, grid: [usize; 3], max_seq_len: usize) -> Result<RopeTables> {
        let cols = Columns::new(head_dim)?;
        if let Some(&n) = grid.iter().find(|&&n| n > max_seq_len) {
            return shape_err(
                "rope",
                format!("post-patch grid {grid:?} has {n} positions on one axis, more than rope_max_seq_len {max_seq_len}"),
            );
        }
        let table = compact_table(&cols, grid);
        let rows = grid.iter().sum::<usize>();
        let table = Tensor::from_f32(gpu, &[rows, head_dim / 2, 2], &table)?;
        Ok(RopeTables { table, cols, grid })
    }

    pub fn grid(&self) -> [usize; 3] {
        self.grid
    }

    pub fn head_dim(&self) -> usize {
        self.cols.d
    }
}

/// Axis rows (F' frames, H' heights, W' widths) × D/2 pairs × (cos, sin), rounded to f32.
fn compact_table(cols: &Columns, grid: [usize; 3]) -> Vec<f32> {
    let half = cols.d / 2;
    let mut out = Vec::with_capacity(grid.iter().sum::<usize>() * cols.d);
    for &n in &grid {
        for pos in 0..n {
            for j in 0..half {
                let a = pos as f64 * cols.freq(j);
                out.push(a.cos() as f32);
                out.push(a.sin() as f32);
            }
        }
    }
    out
}

/// diffusers' rope output for a grid, per token [L, D] (cos, sin), rounded to f32: the
/// specification the device tables are checked against.
pub fn rope_reference(head_dim: usize, grid: [usize; 3]) -> Result<(Vec<f32>, Vec<f32>)> {
    let cols = Columns::new(head_dim)?;
    let l = grid.iter().product::<usize>();
    let (mut cos, mut sin) = (Vec::with_capacity(l * head_dim), Vec::with_capacity(l * head_dim));
    for f in 0..grid[0] {
        for h in 0..grid[1] {
            for w in 0..grid[2] {
                let pos = [f, h, w];
                for c in 0..head_dim {
                    let a = pos[cols.axis(c)] as f64 * cols.freq(c / 2);
                    cos.push(a.cos() as f32);
                    sin.push(a.sin() as f32);
                }
            }
        }
    }
    Ok((cos, sin))
}

/// Rotates q or k [B, L, heads·D] in place, L = F'·H'·W' tokens in (f, h, w) order.
pub fn rope_inplace(x: &Tensor, tables: &RopeTables, heads: usize) -> Result<()> {
    let op = "rope";
    let d = tables.cols.d;
    let l = tables.grid.iter().product::<usize>();
    let s = x.shape();
    if x.dtype() != DType::F32 || s.len() != 3 || s[1] != l || s[2] != heads * d {
        return shape_err(
            op,
            format!("expects f32 [B, {l}, {heads}·{d}] for grid {:?}, got {s:?} {}", tables.grid, x.dtype().name()),
        );
    }
    let rows = s[0] * l;
    if rows == 0 || d == 0 {
        return Ok(());
    }
    let gpu = x.gpu();
    let tw = tables.table.whole(op)?;
    if !tw.shift.is_multiple_of(2) {
        return shape_err(op, "rotary table view is not vec2-aligned");
    }
    let kern = gpu.kernel("rope", SRC, "rope_inplace", &[])?;
    let width = heads * d;
    for (lo, hi) in chunk_ranges(rows, units_per_binding(gpu, 4 * width as u64)) {
        let xw = x.window(lo * width, hi * width, op)?;
        let pairs = (hi - lo) * width / 2;
        let params = [
            pairs as u32,
            (d / 2) as u32,
            heads as u32,
            l as u32,
            lo as u32,
            xw.shift,
            tw.shift / 2,
            tables.grid[1] as u32,
            tables.grid[2] as u32,
            tables.grid[0] as u32,
            tables.cols.split_h as u32,
            tables.cols.split_w as u32,
        ];
        gpu.dispatch(&kern, &params, vec![(1, xw.binding), (2, tw.binding.clone())], groups(gpu, pairs.div_ceil(256)));
    }
    Ok(())
}
