//! diffusers' `AutoencoderKLWan.tiled_decode` — what `vae.enable_tiling()` gives: the latent
//! cut into overlapping spatial tiles, each decoded on its own with fresh causal caches (all its
//! latent frames, as `_decode` does the whole latent), the tiles' frames read back to the host,
//! where each tile is blended linearly into the tile above and the tile to its left over their
//! overlap, cropped to the stride and placed; the result is cut to the sample size, unpatchified
//! (Wan 2.2) and clamped. The device holds one tile's decode at a time (its caches scale with the
//! tile's area, not the frame's); the whole video lives on the host.
//!
//! The blending is torch's, in f32: `a * (1 - y / e) + b * (y / e)` with Python floats — the two
//! weights are computed in f64 and rounded to f32 (torch casts a scalar to the tensor's dtype),
//! then two f32 products and an f32 sum, no fused multiply-add. The fixture script re-does the
//! blending this way in numpy and gets diffusers' output bit for bit.

use super::AutoencoderKLWan;
use crate::error::{shape_err, Result};
use crate::ops::layout::crop_hw;

/// `enable_tiling(tile_sample_min_height, tile_sample_min_width, tile_sample_stride_height,
/// tile_sample_stride_width)`, in output pixels. `Default` is diffusers': 256-pixel tiles every
/// 192 pixels (64 pixels of overlap blended).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WanVaeTiling {
    pub tile_sample_min_height: usize,
    pub tile_sample_min_width: usize,
    pub tile_sample_stride_height: usize,
    pub tile_sample_stride_width: usize,
}

impl Default for WanVaeTiling {
    fn default() -> Self {
        WanVaeTiling { tile_sample_min_height: 256, tile_sample_min_width: 256, tile_sample_stride_height: 192, tile_sample_stride_width: 192 }
    }
}

/// A decoded video on the host, (frames, channels, height, width) f32 in [-1, 1]: the layout of
/// [`decode_with`](AutoencoderKLWan::decode_with)'s chunks, all frames. On a planning device
/// `data` is empty (nothing is read back; the sizes are the run's).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedVideo {
    pub data: Vec<f32>,
    pub frames: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// One axis of diffusers' tile grid.
struct Axis {
    /// Each tile's first latent and its length in latents (the last ones cut by the edge).
    tiles: Vec<(usize, usize)>,
    /// Decoder output pixels per latent (before the unpatchify).
    per_latent: usize,
    /// Pixels kept of each tile (`tile_sample_stride // patch_size`).
    stride: usize,
    /// Pixels blended into the tile before (`tile_sample_min // p − stride // p`, none if < 0).
    blend: usize,
    /// Where each tile's kept pixels start in the output.
    offsets: Vec<usize>,
    /// Output pixels: the kept pixels of all tiles, cut to the latent's `size · per_latent`.
    size: usize,
}

impl Axis {
    fn new(what: &str, latent: usize, tile_px: usize, stride_px: usize, scale: usize, patch: usize) -> Result<Axis> {
        let (tile, step) = (tile_px / scale, stride_px / scale);
        if tile == 0 || step == 0 {
            return shape_err(
                "wan_vae.decode_tiled",
                format!("tile_sample_min_{what} {tile_px} and tile_sample_stride_{what} {stride_px} must each be at least the VAE's {scale} pixels per latent"),
            );
        }
        let per_latent = scale / patch;
        let tiles: Vec<(usize, usize)> = (0..latent).step_by(step).map(|s| (s, tile.min(latent - s))).collect();
        let stride = stride_px / patch;
        let mut offsets = Vec::with_capacity(tiles.len());
        let mut at = 0;
        for &(_, n) in &tiles {
            offsets.push(at);
            at += stride.min(n * per_latent);
        }
        Ok(Axis { per_latent, stride, blend: (tile_px / patch).saturating_sub(stride), size: at.min(latent * per_latent), tiles, offsets })
    }
}

/// One tile's decoded frames on the host: `planes` = frames × channels images of h × w.
struct HostTile {
    data: Vec<f32>,
    planes: usize,
    h: usize,
    w: usize,
}

impl HostTile {
    /// Its last `n` rows (all of them if it has fewer): what the tile below blends with.
    fn last_rows(&self, n: usize) -> HostTile {
        let k = n.min(self.h);
        let mut data = Vec::with_capacity(self.planes * k * self.w);
        for p in 0..self.planes {
            let at = (p * self.h + self.h - k) * self.w;
            data.extend_from_slice(&self.data[at..at + k * self.w]);
        }
        HostTile { data, planes: self.planes, h: k, w: self.w }
    }

    /// Its last `n` columns: what the tile to its right blends with.
    fn last_cols(&self, n: usize) -> HostTile {
        let k = n.min(self.w);
        let mut data = Vec::with_capacity(self.planes * self.h * k);
        for r in 0..self.planes * self.h {
            data.extend_from_slice(&self.data[r * self.w + self.w - k..(r + 1) * self.w]);
        }
        HostTile { data, planes: self.planes, h: self.h, w: k }
    }
}

/// torch's `a * (1 - t / e) + b * (t / e)` with Python-float weights on f32 tensors.
fn blend_weights(t: usize, e: usize) -> (f32, f32) {
    let r = t as f64 / e as f64;
    ((1.0 - r) as f32, r as f32)
}

/// diffusers' `blend_v(a, b, blend)`: the first rows of `b` fade in from `a`'s last rows.
fn blend_v(a: &HostTile, b: &mut HostTile, blend: usize) {
    let e = a.h.min(b.h).min(blend);
    for y in 0..e {
        let (wa, wb) = blend_weights(y, e);
        for p in 0..b.planes {
            let ra = (p * a.h + a.h - e + y) * a.w;
            let rb = (p * b.h + y) * b.w;
            for x in 0..b.w {
                b.data[rb + x] = a.data[ra + x] * wa + b.data[rb + x] * wb;
            }
        }
    }
}

/// diffusers' `blend_h(a, b, blend)`: the first columns of `b` fade in from `a`'s last columns.
fn blend_h(a: &HostTile, b: &mut HostTile, blend: usize) {
    let e = a.w.min(b.w).min(blend);
    for x in 0..e {
        let (wa, wb) = blend_weights(x, e);
        for r in 0..b.planes * b.h {
            let (ia, ib) = (r * a.w + a.w - e + x, r * b.w + x);
            b.data[ib] = a.data[ia] * wa + b.data[ib] * wb;
        }
    }
}

impl AutoencoderKLWan {
    /// diffusers' condition for `_decode` to hand over to `tiled_decode`: the latent is wider or
    /// taller than a tile (`tile_sample_min // scale_factor_spatial` latents).
    pub fn uses_tiling(&self, latent_h: usize, latent_w: usize, tiling: &WanVaeTiling) -> bool {
        let k = self.config.spatial_scale();
        latent_w > tiling.tile_sample_min_width / k || latent_h > tiling.tile_sample_min_height / k
    }

    /// How many tiles [`decode_tiled`](Self::decode_tiled) decodes one after the other (1 when
    /// the latent is not tiled); each calls `on_chunk` once per latent frame.
    pub fn tiles(&self, latent_h: usize, latent_w: usize, tiling: &WanVaeTiling) -> Result<usize> {
        if !self.uses_tiling(latent_h, latent_w, tiling) {
            return Ok(1);
        }
        let (k, p) = (self.config.spatial_scale(), self.config.patch());
        let rows = Axis::new("height", latent_h, tiling.tile_sample_min_height, tiling.tile_sample_stride_height, k, p)?;
        let cols = Axis::new("width", latent_w, tiling.tile_sample_min_width, tiling.tile_sample_stride_width, k, p)?;
        Ok(rows.tiles.len() * cols.tiles.len())
    }

    /// `vae.enable_tiling(...)` then `vae.decode(z)`: one video's latents (1, z, T, h, w), already
    /// de-normalised → its frames on the host, (F, 3, H, W) in [-1, 1]. A latent no bigger than a
    /// tile is decoded as [`decode_with`](Self::decode_with) does (diffusers does not tile it).
    pub fn decode_tiled(&self, z: &crate::Tensor, tiling: &WanVaeTiling) -> Result<DecodedVideo> {
        self.decode_tiled_with(z, tiling, &mut || Ok(()))
    }

    /// [`decode_tiled`](Self::decode_tiled) calling `on_chunk` after every latent frame of every
    /// tile (progress, cancellation): [`tiles`](Self::tiles) × T calls.
    ///
    /// On a planning device it makes the same allocations in the same order (tile by tile, each
    /// with its own caches) and skips the readbacks and the host blending: the returned video
    /// has its sizes and no data.
    pub fn decode_tiled_with(&self, z: &crate::Tensor, tiling: &WanVaeTiling, on_chunk: &mut dyn FnMut() -> Result<()>) -> Result<DecodedVideo> {
        let s = z.shape();
        if s.len() != 5 {
            return shape_err("wan_vae.decode", format!("latents must be (1, {}, T, h, w), got {s:?}", self.config.z_dim));
        }
        let (t, h, w) = (s[2], s[3], s[4]);
        let planning = z.gpu().is_planning();
        let (k, p) = (self.config.spatial_scale(), self.config.patch());
        let mut video = DecodedVideo { data: Vec::new(), frames: self.config.frames_for(t), channels: self.config.image_channels(), height: k * h, width: k * w };
        if !self.uses_tiling(h, w, tiling) {
            self.decode_with(z, &mut |chunk| {
                if !planning {
                    video.data.extend(chunk.to_f32()?);
                }
                on_chunk()
            })?;
            return Ok(video);
        }
        let rows = Axis::new("height", h, tiling.tile_sample_min_height, tiling.tile_sample_stride_height, k, p)?;
        let cols = Axis::new("width", w, tiling.tile_sample_min_width, tiling.tile_sample_stride_width, k, p)?;
        (video.height, video.width) = (rows.size * p, cols.size * p);
        if !planning {
            video.data = vec![0.0; video.frames * video.channels * video.height * video.width];
        }
        // post_quant_conv is 1×1×1: applied once to the whole latent, then cut, it gives each
        // tile what diffusers' per-tile call gives.
        let x = self.post_quant(z)?;
        let channels = self.config.out_channels;
        let mut above: Vec<Option<HostTile>> = (0..cols.tiles.len()).map(|_| None).collect();
        for (i, &(r0, rn)) in rows.tiles.iter().enumerate() {
            let mut left: Option<HostTile> = None;
            for (j, &(c0, cn)) in cols.tiles.iter().enumerate() {
                let (th, tw) = (rn * rows.per_latent, cn * cols.per_latent);
                let mut tile = HostTile { data: Vec::new(), planes: video.frames * channels, h: th, w: tw };
                {
                    let latent = crop_hw(&x, r0, c0, rn, cn)?;
                    let mut cache = self.new_cache();
                    let mut made = 0;
                    for f in 0..t {
                        let out = self.decoder.forward(&latent.narrow0(f, 1)?, &mut cache, false)?;
                        if out.shape()[1..] != [channels, th, tw] {
                            return shape_err("wan_vae.decode_tiled", format!("a {rn}×{cn} latent tile decoded to {:?}", out.shape()));
                        }
                        made += out.dim(0);
                        if !planning {
                            tile.data.extend(out.to_f32()?);
                        }
                        drop(out);
                        on_chunk()?;
                    }
                    if made != video.frames {
                        return shape_err("wan_vae.decode_tiled", format!("{t} latent frames decoded to {made} frames, expected {}", video.frames));
                    }
                }
                if planning {
                    continue;
                }
                if let Some(a) = &above[j] {
                    blend_v(a, &mut tile, rows.blend);
                }
                if let Some(a) = &left {
                    blend_h(a, &mut tile, cols.blend);
                }
                place(&tile, &mut video, (rows.offsets[i], cols.offsets[j]), (rows.stride, cols.stride), (rows.size, cols.size), channels, p);
                above[j] = Some(tile.last_rows(rows.blend));
                left = Some(tile.last_cols(cols.blend));
            }
        }
        Ok(video)
    }
}

/// The kept part of a blended tile (its first `stride` rows and columns) into the video at
/// `at` (decoder pixels), cut to `size`, unpatchified (channel c·p² + pw·p + ph → pixel
/// (y·p + ph, x·p + pw)) and clamped to [-1, 1].
fn place(tile: &HostTile, video: &mut DecodedVideo, at: (usize, usize), stride: (usize, usize), size: (usize, usize), channels: usize, p: usize) {
    let rows = stride.0.min(tile.h).min(size.0.saturating_sub(at.0));
    let cols = stride.1.min(tile.w).min(size.1.saturating_sub(at.1));
    let (vh, vw) = (video.height, video.width);
    for plane in 0..tile.planes {
        let (f, ch) = (plane / channels, plane % channels);
        let (c, pw, ph) = (ch / (p * p), ch % (p * p) / p, ch % p);
        let out = (f * video.channels + c) * vh * vw;
        for y in 0..rows {
            let src = (plane * tile.h + y) * tile.w;
            let dst = out + ((at.0 + y) * p + ph) * vw + pw;
            for x in 0..cols {
                video.data[dst + (at.1 + x) * p] = tile.data[src + x].clamp(-1.0, 1.0);
            }
        }
    }
}
