//! The Text2Video-Zero motion-field warp (shaders/warp.wgsl): torch's `grid_sample` with
//! mode "nearest", padding "reflection", align_corners False, and the translation grids
//! diffusers' `create_motion_field_and_warp_latents` builds for it (computed on the host:
//! h·w·2 floats per frame, made once per video).

use super::{chunk_ranges, groups, units_per_binding};
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};

const SRC: &str = include_str!("../../shaders/warp.wgsl");

/// `grid_sample(x, grid, mode="nearest", padding_mode="reflection")`: x (N, C, H, W), grid
/// (N, Ho, Wo, 2) of normalised (x, y) → (N, C, Ho, Wo).
pub fn grid_sample_nearest_reflection(x: &Tensor, grid: &Tensor) -> Result<Tensor> {
    let op = "grid_sample";
    let (s, g) = (x.shape(), grid.shape());
    if s.len() != 4 || g.len() != 4 || g[0] != s[0] || g[3] != 2 || x.dtype() != DType::F32 || grid.dtype() != DType::F32 {
        return shape_err(op, format!("expected f32 x (N, C, H, W) and grid (N, Ho, Wo, 2), got {s:?} and {g:?}"));
    }
    let (n, c, h, w, oh, ow) = (s[0], s[1], s[2], s[3], g[1], g[2]);
    let y = Tensor::empty(x.gpu(), &[n, c, oh, ow], DType::F32)?;
    if y.numel() == 0 {
        return Ok(y);
    }
    let gpu = x.gpu();
    let k = gpu.kernel("warp", SRC, "grid_sample_nearest_reflection", &[])?;
    let per = units_per_binding(gpu, 4 * (c * h * w).max(c * oh * ow).max(2 * oh * ow) as u64);
    for (lo, hi) in chunk_ranges(n, per) {
        let xw = x.window(lo * c * h * w, hi * c * h * w, op)?;
        let gw = grid.window(lo * oh * ow * 2, hi * oh * ow * 2, op)?;
        let yw = y.window(lo * c * oh * ow, hi * c * oh * ow, op)?;
        let cnt = (hi - lo) * c * oh * ow;
        let params = [cnt as u32, c as u32, h as u32, w as u32, oh as u32, ow as u32, xw.shift, gw.shift, yw.shift];
        gpu.dispatch(&k, &params, vec![(1, xw.binding), (2, gw.binding), (3, yw.binding)], groups(gpu, cnt.div_ceil(256)));
    }
    Ok(y)
}

/// diffusers' translation grid for one frame, (h, w, 2): the flow (dx, dy) = (λx·id, λy·id)
/// pixels on a 512×512 field, coordinates normalised to [-1, 1] by 512, then bilinearly resized
/// (align_corners False) to the latent's h × w — each step in torch's float32 order.
pub fn motion_grid(h: usize, w: usize, dx: f32, dy: f32) -> Vec<f32> {
    const FIELD: usize = 512;
    // coords0 + flow, /512, ·2 − 1, per column (x) or row (y): the field is a translation.
    let norm = |i: usize, d: f32| ((i as f32 + d) / FIELD as f32) * 2.0 - 1.0;
    // upsample_bilinear2d's source index and weights for one axis of `out` samples.
    let axis = |out: usize| -> Vec<(usize, usize, f32, f32)> {
        let scale = FIELD as f32 / out as f32;
        (0..out)
            .map(|o| {
                let src = (scale * (o as f32 + 0.5) - 0.5).max(0.0);
                let i0 = (src as usize).min(FIELD - 1);
                let i1 = i0 + usize::from(i0 < FIELD - 1);
                let l1 = src - i0 as f32;
                (i0, i1, 1.0 - l1, l1)
            })
            .collect()
    };
    let (rows, cols) = (axis(h), axis(w));
    let mut g = Vec::with_capacity(h * w * 2);
    for &(y0, y1, h0, h1) in &rows {
        for &(x0, x1, w0, w1) in &cols {
            let gx = h0 * (w0 * norm(x0, dx) + w1 * norm(x1, dx)) + h1 * (w0 * norm(x0, dx) + w1 * norm(x1, dx));
            let gy = h0 * (w0 * norm(y0, dy) + w1 * norm(y0, dy)) + h1 * (w0 * norm(y1, dy) + w1 * norm(y1, dy));
            g.push(gx);
            g.push(gy);
        }
    }
    g
}

/// diffusers' `create_motion_field_and_warp_latents`: latent i of `x` (N, C, h, w) moved by
/// (λx, λy) · `frame_ids[i]` with [`grid_sample_nearest_reflection`].
pub fn warp_latents(x: &Tensor, strength_x: f64, strength_y: f64, frame_ids: &[usize]) -> Result<Tensor> {
    let s = x.shape();
    if s.len() != 4 || frame_ids.len() != s[0] {
        return shape_err("warp_latents", format!("{} frame ids for latents {s:?}", frame_ids.len()));
    }
    let (h, w) = (s[2], s[3]);
    let mut grid = Vec::with_capacity(s[0] * h * w * 2);
    for &id in frame_ids {
        // torch: motion_field_strength · frame_id in Python floats, stored float32.
        grid.extend(motion_grid(h, w, (strength_x * id as f64) as f32, (strength_y * id as f64) as f32));
    }
    let g = Tensor::from_f32(x.gpu(), &[s[0], h, w, 2], &grid)?;
    grid_sample_nearest_reflection(x, &g)
}
