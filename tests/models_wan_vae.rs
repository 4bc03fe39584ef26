//! AutoencoderKLWan's decode path against diffusers 0.42.1 (fixtures by
//! tools/reference/wan_fixtures.py: tests/fixtures/wan/tiny-wan/vae, a Wan 2.1-shaped VAE with a
//! small base_dim, and its dumps in tests/fixtures/wan/modules/vae.*; tiny-wan22-ti2v/vae, a Wan
//! 2.2-shaped one — residual up blocks, patch 2, z 48 — with modules/vae22.*), relative L2 ≤ 1e-4
//! in f32. `*.tiled_decode.*`: the same VAEs' decode with `enable_tiling` (diffusers' tiled_decode).

mod common;

use common::fixtures::{dump_at, fixtures, Dump};
use common::{assert_close, gpu, rel_l2, upload};
use t2v::models::wan_vae::{AutoencoderKLWan, AutoencoderKLWanConfig, DecodedVideo, WanVaeTiling};
use t2v::weights::{Placement, Weights};
use t2v::gpu::AdapterSelector;
use t2v::{DType, Gpu, Tensor};

const TOL: f64 = 1e-4;
/// f16 caches: a few f16 roundings (2⁻¹¹ relative) of activations along the decoder.
const F16_CACHE_TOL: f64 = 2e-3;

fn wan() -> std::path::PathBuf {
    fixtures().join("wan")
}

fn vae() -> AutoencoderKLWan {
    AutoencoderKLWan::from_dir(&gpu(), &wan().join("tiny-wan/vae"), Placement { matrices: DType::F32 }).expect("load tiny Wan VAE")
}

fn vae22() -> AutoencoderKLWan {
    AutoencoderKLWan::from_dir(&gpu(), &wan().join("tiny-wan22-ti2v/vae"), Placement { matrices: DType::F32 }).expect("load tiny Wan 2.2 VAE")
}

fn module(name: &str) -> Dump {
    dump_at(&wan().join("modules").join(format!("{name}.safetensors")), name)
}

/// The dumps of one module, by case name (e.g. `vae.decode` → t1h4w6, t4h2w3, …).
fn cases(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(wan().join("modules"))
        .expect("tests/fixtures/wan/modules")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix(&format!("{prefix}.")).and_then(|c| c.strip_suffix(".safetensors")).map(str::to_string))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no {prefix}.* dumps in tests/fixtures/wan/modules");
    v
}

/// (1, C, F, H, W) as diffusers holds it → the engine's (F, C, H, W) frames.
fn folded(shape: &[usize], v: &[f64]) -> (Vec<usize>, Vec<f64>) {
    assert_eq!(shape.len(), 5);
    assert_eq!(shape[0], 1);
    let (c, f, s) = (shape[1], shape[2], shape[3] * shape[4]);
    let mut out = vec![0.0; v.len()];
    for ci in 0..c {
        for fi in 0..f {
            out[(fi * c + ci) * s..(fi * c + ci + 1) * s].copy_from_slice(&v[(ci * f + fi) * s..(ci * f + fi + 1) * s]);
        }
    }
    (vec![f, c, shape[3], shape[4]], out)
}

#[track_caller]
fn check_folded(what: &str, d: &Dump, key: &str, got: &Tensor) {
    let (shape, v) = d.get(key);
    let (fs, want) = folded(shape, v);
    assert_eq!(got.shape(), &fs[..], "{what}: shape");
    let got = got.to_f32().unwrap();
    println!("{what}: relative L2 {:.2e}", rel_l2(&got, &want));
    assert_close(what, &got, &want, TOL);
}

/// Frames first..first+n of a dumped (1, C, F, H, W) tensor against `got` (n, C, H, W).
#[track_caller]
fn check_frames(what: &str, d: &Dump, key: &str, first: usize, got: &Tensor) {
    let (shape, v) = d.get(key);
    let (fs, want) = folded(shape, v);
    let n = got.dim(0);
    let per: usize = fs[1..].iter().product();
    assert_eq!(got.shape()[1..], fs[1..], "{what}: shape");
    assert!(first + n <= fs[0], "{what}: frames {first}..{} of {}", first + n, fs[0]);
    let got = got.to_f32().unwrap();
    let want = &want[first * per..(first + n) * per];
    println!("{what}: relative L2 {:.2e}", rel_l2(&got, want));
    assert_close(what, &got, want, TOL);
}

#[test]
fn post_quant_conv_matches_diffusers() {
    let v = vae();
    for case in cases("vae.post_quant_conv") {
        let d = module(&format!("vae.post_quant_conv.{case}"));
        let y = v.post_quant(&d.input("arg0")).unwrap();
        check_folded(&format!("post_quant_conv {case}"), &d, "out", &y);
    }
}

#[test]
fn denormalize_matches_the_pipeline() {
    let v = vae();
    for case in cases("vae.decode") {
        let d = module(&format!("vae.decode.{case}"));
        d.check("arg0", &v.denormalize(&d.input("latents")).unwrap(), 1e-6);
    }
}

#[test]
fn decoder_chunks_match_diffusers() {
    // One decode of 3 latent frames at 2×4, chunk by chunk: chunk 0 is the first latent frame
    // (1 frame out, upsample3d passes through), chunks 1 and 2 continue from the caches.
    let v = vae();
    let mut cache = v.new_cache();
    for ci in 0..3 {
        let d = module(&format!("vae.decoder.chunk{ci}"));
        assert_eq!(v.decoder.slots, d.meta_usize("feat_cache_used"), "cache slots used per chunk");
        let (shape, x) = d.get("arg0");
        let (fs, x) = folded(shape, x);
        let x = upload(&fs, &x.iter().map(|&a| a as f32).collect::<Vec<_>>());
        let mut seen = Vec::new();
        let out = v
            .decoder
            .forward_observed(&x, &mut cache, false, &mut |name, first, t| {
                check_frames(&format!("chunk {ci} {name} from frame {first}"), &d, &format!("inner.{name}"), first, t);
                seen.push(name.to_string());
                Ok(())
            })
            .unwrap();
        for stage in ["conv_in", "mid_block", "up_blocks.0", "up_blocks.1", "up_blocks.2", "up_blocks.3"] {
            assert!(seen.iter().any(|s| s == stage), "chunk {ci}: {stage} not observed ({seen:?})");
        }
        check_folded(&format!("chunk {ci} out"), &d, "out", &out);
    }
}

#[test]
fn decode_matches_diffusers() {
    // Non-square latents with 1, 3 and 4 latent frames → 1, 9, 13 frames.
    let v = vae();
    let cs = cases("vae.decode");
    assert!(cs.len() >= 3, "{cs:?}");
    for case in cs {
        let d = module(&format!("vae.decode.{case}"));
        let y = v.decode(&d.input("arg0")).unwrap();
        check_folded(&format!("decode {case}"), &d, "out.sample", &y);
        let m = y.to_f32().unwrap().iter().fold(0.0f32, |a, &b| a.max(b.abs()));
        assert!(m <= 1.0, "decode {case}: output not clamped ({m})");
    }
}

#[test]
fn wan22_decoder_chunks_match_diffusers() {
    // The residual up blocks (DupUp3D of each block's input; in chunk 0 it drops the frame the
    // un-doubled upsample3d does not make) and conv_out's 12 patch channels, before unpatchify.
    let v = vae22();
    assert!(v.config.is_residual && v.config.patch() == 2 && v.config.spatial_scale() == 16);
    let mut cache = v.new_cache();
    for ci in 0..3 {
        let d = module(&format!("vae22.decoder.chunk{ci}"));
        let (shape, x) = d.get("arg0");
        let (fs, x) = folded(shape, x);
        let x = upload(&fs, &x.iter().map(|&a| a as f32).collect::<Vec<_>>());
        let mut seen = 0;
        let out = v
            .decoder
            .forward_observed(&x, &mut cache, false, &mut |name, first, t| {
                check_frames(&format!("2.2 chunk {ci} {name} from frame {first}"), &d, &format!("inner.{name}"), first, t);
                seen += 1;
                Ok(())
            })
            .unwrap();
        assert!(seen >= 6, "chunk {ci}: {seen} stages observed");
        check_folded(&format!("2.2 chunk {ci} out"), &d, "out", &out);
    }
}

#[test]
fn wan22_decode_matches_diffusers() {
    // post_quant_conv, the de-normalisation with 48 channels, and decode → unpatchify → clamp at
    // 1, 3 and 4 latent frames (1, 9, 13 frames of 16× the latent size).
    let v = vae22();
    for case in cases("vae22.post_quant_conv") {
        let d = module(&format!("vae22.post_quant_conv.{case}"));
        check_folded(&format!("2.2 post_quant_conv {case}"), &d, "out", &v.post_quant(&d.input("arg0")).unwrap());
    }
    let cs = cases("vae22.decode");
    assert!(cs.len() >= 3, "{cs:?}");
    for case in cs {
        let d = module(&format!("vae22.decode.{case}"));
        d.check("arg0", &v.denormalize(&d.input("latents")).unwrap(), 1e-6);
        let y = v.decode(&d.input("arg0")).unwrap();
        check_folded(&format!("2.2 decode {case}"), &d, "out.sample", &y);
        let m = y.to_f32().unwrap().iter().fold(0.0f32, |a, &b| a.max(b.abs()));
        assert!(m <= 1.0, "decode {case}: output not clamped ({m})");
    }
}

#[test]
fn decode_with_f16_caches() {
    // The 16-bit cache option: activations are rounded to f16 when cached, so this is held to
    // f16's precision, not to diffusers' f32 (a precision datum, printed).
    let mut v = vae();
    v.cache_dtype = DType::F16;
    for case in cases("vae.decode") {
        let d = module(&format!("vae.decode.{case}"));
        let y = v.decode(&d.input("arg0")).unwrap();
        let (shape, want) = d.get("out.sample");
        let (_, want) = folded(shape, want);
        let e = rel_l2(&y.to_f32().unwrap(), &want);
        println!("decode {case} with f16 caches: relative L2 {e:.2e}");
        assert!(e <= F16_CACHE_TOL, "decode {case} with f16 caches: relative L2 {e:.3e} > {F16_CACHE_TOL:.0e}");
    }
}

#[test]
fn decode_with_hands_out_chunks_in_order() {
    let v = vae();
    let case = cases("vae.decode").into_iter().find(|c| c.starts_with("t4")).expect("a 4-latent-frame decode dump");
    let d = module(&format!("vae.decode.{case}"));
    let mut sizes = Vec::new();
    v.decode_with(&d.input("arg0"), &mut |t| {
        sizes.push(t.dim(0));
        Ok(())
    })
    .unwrap();
    assert_eq!(sizes, [1, 4, 4, 4]);
    assert_eq!(v.config.frames_for(4), 13);
}

/// The `enable_tiling(...)` settings a tiled-decode dump was made with.
fn tiling_of(d: &Dump) -> WanVaeTiling {
    WanVaeTiling {
        tile_sample_min_height: d.meta_usize("tile_sample_min_height"),
        tile_sample_min_width: d.meta_usize("tile_sample_min_width"),
        tile_sample_stride_height: d.meta_usize("tile_sample_stride_height"),
        tile_sample_stride_width: d.meta_usize("tile_sample_stride_width"),
    }
}

/// The frames of a host video listed in `frames` against a dumped (1, C, F', H, W) sample.
#[track_caller]
fn check_video(what: &str, d: &Dump, frames: &[usize], got: &DecodedVideo) {
    let (shape, want) = d.get("out.sample");
    let (fs, want) = folded(shape, want);
    assert_eq!([frames.len(), got.channels, got.height, got.width], fs[..], "{what}: shape");
    let per = got.channels * got.height * got.width;
    assert_eq!(got.data.len(), got.frames * per, "{what}: data");
    let got: Vec<f32> = frames.iter().flat_map(|&f| got.data[f * per..(f + 1) * per].iter().copied()).collect();
    println!("{what}: relative L2 {:.2e}", rel_l2(&got, &want));
    assert_close(what, &got, &want, TOL);
    let m = got.iter().fold(0.0f32, |a, &b| a.max(b.abs()));
    assert!(m <= 1.0, "{what}: output not clamped ({m})");
}

#[test]
fn tiled_decode_matches_diffusers() {
    // Tiny tiles overlapping both ways at odd latent sizes (edge tiles cut short, so some blends
    // are limited by the smaller tile), 1 and 2 latent frames; Wan 2.2 blends in patch space.
    for (model, v) in [("vae", vae()), ("vae22", vae22())] {
        let cs = cases(&format!("{model}.tiled_decode"));
        assert!(cs.len() >= 2, "{cs:?}");
        for case in cs {
            let d = module(&format!("{model}.tiled_decode.{case}"));
            let tiling = tiling_of(&d);
            let z = d.input("arg0");
            let (t, h, w) = (z.dim(2), z.dim(3), z.dim(4));
            assert!(v.uses_tiling(h, w, &tiling), "{model} {case}: diffusers tiled this latent");
            let tiles = v.tiles(h, w, &tiling).unwrap();
            assert_eq!(tiles, d.meta_usize("tiles"), "{model} {case}: tiles");
            let mut chunks = 0;
            let y = v
                .decode_tiled_with(&z, &tiling, &mut || {
                    chunks += 1;
                    Ok(())
                })
                .unwrap();
            assert_eq!(chunks, tiles * t, "{model} {case}: one call per latent frame of every tile");
            assert_eq!(y.frames, v.config.frames_for(t));
            let frames: Vec<usize> = serde_json::from_str(&d.meta["frames"]).unwrap();
            check_video(&format!("{model} tiled decode {case} ({tiles} tiles, frames {frames:?})"), &d, &frames, &y);
        }
    }
}

#[test]
fn latents_within_a_tile_decode_untiled() {
    // diffusers' _decode tiles only a latent wider or taller than a tile: at exactly a tile's
    // size (and with the default 256-pixel tiles) decode_tiled is the plain decode.
    for (model, v, case, exact) in [("vae", vae(), "t1h4w6", (32, 48)), ("vae22", vae22(), "t3h2w2", (32, 32))] {
        let d = module(&format!("{model}.decode.{case}"));
        let z = d.input("arg0");
        let (h, w) = (z.dim(3), z.dim(4));
        let plain = v.decode(&z).unwrap().to_f32().unwrap();
        let k = v.config.spatial_scale();
        let at_size = WanVaeTiling { tile_sample_min_height: exact.0, tile_sample_min_width: exact.1, tile_sample_stride_height: k, tile_sample_stride_width: k };
        for tiling in [WanVaeTiling::default(), at_size] {
            assert!(!v.uses_tiling(h, w, &tiling), "{model} {case} {tiling:?}");
            assert_eq!(v.tiles(h, w, &tiling).unwrap(), 1);
            let y = v.decode_tiled(&z, &tiling).unwrap();
            let frames: Vec<usize> = (0..y.frames).collect();
            check_video(&format!("{model} {case} within a tile {tiling:?}"), &d, &frames, &y);
            assert_eq!(y.data, plain, "{model} {case}: not the plain decode");
        }
        // a latent's pixels narrower and it is tiled
        let smaller = WanVaeTiling { tile_sample_min_width: exact.1 - k, ..at_size };
        assert!(v.uses_tiling(h, w, &smaller));
        assert!(v.tiles(h, w, &smaller).unwrap() > 1);
    }
}

#[test]
fn tiling_settings_below_a_latent_are_clear_errors() {
    let v = vae();
    let z = upload(&[1, 16, 1, 2, 5], &[0.0; 160]);
    let bad = WanVaeTiling { tile_sample_min_height: 16, tile_sample_min_width: 16, tile_sample_stride_height: 8, tile_sample_stride_width: 4 };
    let e = v.decode_tiled(&z, &bad).unwrap_err().to_string();
    assert!(e.contains("tile_sample_stride_width 4") && e.contains("8 pixels per latent"), "{e}");
    assert!(v.tiles(2, 5, &bad).is_err());
    let e = v.decode_tiled(&upload(&[1, 16, 2, 5], &[0.0; 160]), &WanVaeTiling::default()).unwrap_err().to_string();
    assert!(e.contains("(1, 16, T, h, w)"), "{e}");
}

#[test]
fn bad_configs_and_inputs_are_clear_errors() {
    // Wan 2.2's shapes: patch channels, DupUp3D repeats, the spatial factor it implies
    let c = AutoencoderKLWanConfig { patch_size: Some(2), ..Default::default() };
    assert!(c.validate().unwrap_err().contains("patch_size"));
    let c = AutoencoderKLWanConfig { is_residual: true, base_dim: 6, dim_mult: vec![1, 2, 4, 3], ..Default::default() };
    assert!(c.validate().unwrap_err().contains("DupUp3D"), "{:?}", c.validate());
    let c = AutoencoderKLWanConfig { scale_factor_spatial: Some(16), ..Default::default() };
    assert!(c.validate().unwrap_err().contains("scale_factor_spatial"));
    let c = AutoencoderKLWanConfig { temperal_downsample: vec![true], ..Default::default() };
    assert!(c.validate().unwrap_err().contains("temperal_downsample"));
    let c = AutoencoderKLWanConfig { z_dim: 4, ..Default::default() };
    assert!(c.validate().unwrap_err().contains("latents_mean"));

    let v = vae();
    let e = v.decode(&upload(&[1, 8, 1, 2, 2], &[0.0; 32])).unwrap_err().to_string();
    assert!(e.contains("(1, 16, T, h, w)"), "{e}");
    let e = v.denormalize(&upload(&[1, 8, 1, 2, 2], &[0.0; 32])).unwrap_err().to_string();
    assert!(e.contains("(B, 16, T, h, w)"), "{e}");

    // A config that does not match the weights names the key and both shapes.
    let dir = common::fixtures::scratch_copy("wan/tiny-wan/vae", "bad-config");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    cfg["base_dim"] = serde_json::json!(cfg["base_dim"].as_u64().unwrap() + 1);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let e = AutoencoderKLWan::from_dir(&gpu(), &dir, Placement { matrices: DType::F32 }).err().expect("mismatched config must fail").to_string();
    assert!(e.contains("decoder.conv_in.weight") && e.contains("expected"), "{e}");
}

/// The real Wan 2.1 VAE at 832×480 (latent 104×60), planned shape-only: the causal caches
/// and the peak of the first and of a later chunk. Prints the figures the pipeline's plan uses.
#[test]
fn plan_wan21_decode_at_480p() {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    for cache_dtype in [DType::F32, DType::F16] {
        // A fresh planning device each: a pool warmed by the other run would serve f16 slots
        // from bigger freed f32 buffers.
        let planner = Gpu::planner(&AdapterSelector::from_env()).unwrap();
        let w = Weights::synthetic(&planner, "vae", Placement { matrices: DType::F16 });
        let mut v = AutoencoderKLWan::load(AutoencoderKLWanConfig::default(), &w).unwrap();
        assert_eq!(v.decoder.slots, 32, "Wan 2.1 uses 32 cache slots (WAN.md §4.4)");
        v.cache_dtype = cache_dtype;
        let weights = planner.memory().live;
        let x = Tensor::empty(&planner, &[3, 16, 60, 104], DType::F32).unwrap();
        let mut cache = v.new_cache();
        let mut line = format!("Wan 2.1 VAE decode @832x480, weights {:.1} MiB (f16), {} caches", mib(weights), cache_dtype.name());
        for (i, frames) in [(0, 1), (1, 4), (2, 4)] {
            planner.reset_peak();
            let (base, cache0) = (planner.memory().live, cache.bytes());
            let out = v.decoder.forward(&x.narrow0(i, 1).unwrap(), &mut cache, true).unwrap();
            assert_eq!(out.shape(), &[frames, 3, 480, 832]);
            let peak = planner.memory().peak_live - base;
            line += &format!(
                "; chunk {i}: cache {:.1} MiB after, peak {:.1} MiB above the inputs and the cache before ({:.1} MiB transient)",
                mib(cache.bytes()),
                mib(peak),
                mib(peak - (cache.bytes() - cache0))
            );
        }
        println!("{line}");
        // Every slot holds 2 frames of its conv input: Σ 2·C·h·w elements = 151,328·h·w
        // (WAN.md §4.6: 944.3 M elements at 60×104, 3.78 GB in f32).
        assert_eq!(cache.bytes(), 151_328 * 60 * 104 * cache_dtype.size());
        println!("largest binding {:?}", planner.largest_binding());
    }
}

/// The tiled decode of the real Wan 2.1 VAE at 832×480 (latent 104×60: 3×5 tiles of ≤ 32×32
/// latents with diffusers' default tiling), planned shape-only with 3 latent frames (the caches
/// are full from the second chunk on) against the untiled decode: the device holds one tile.
#[test]
fn plan_wan21_tiled_decode_at_480p() {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let mut peaks = Vec::new();
    for tiled in [false, true] {
        let planner = Gpu::planner(&AdapterSelector::from_env()).unwrap();
        let w = Weights::synthetic(&planner, "vae", Placement { matrices: DType::F16 });
        let v = AutoencoderKLWan::load(AutoencoderKLWanConfig::default(), &w).unwrap();
        let z = Tensor::empty(&planner, &[1, 16, 3, 60, 104], DType::F32).unwrap();
        let tiling = WanVaeTiling::default();
        assert!(v.uses_tiling(60, 104, &tiling));
        assert_eq!(v.tiles(60, 104, &tiling).unwrap(), 15);
        planner.reset_peak();
        let base = planner.memory().live;
        if tiled {
            let y = v.decode_tiled(&z, &tiling).unwrap();
            assert_eq!((y.frames, y.channels, y.height, y.width), (9, 3, 480, 832));
            assert!(y.data.is_empty(), "a planning device reads nothing back");
        } else {
            v.decode_with(&z, &mut |_| Ok(())).unwrap();
        }
        assert_eq!(planner.memory().live, base, "everything but the input freed");
        peaks.push(planner.memory().peak_live - base);
    }
    println!("Wan 2.1 VAE decode @832x480, 3 latent frames: peak {:.1} MiB untiled, {:.1} MiB tiled (256/192 tiles)", mib(peaks[0]), mib(peaks[1]));
    assert!(peaks[1] * 4 < peaks[0], "tiled {} vs untiled {}", peaks[1], peaks[0]);
}

/// The Wan 2.2 VAE as TI2V-5B ships it (WAN.md §4.1; statistics don't matter for plans).
fn wan22_vae_config() -> AutoencoderKLWanConfig {
    AutoencoderKLWanConfig {
        base_dim: 160,
        decoder_base_dim: Some(256),
        z_dim: 48,
        is_residual: true,
        in_channels: 12,
        out_channels: 12,
        patch_size: Some(2),
        scale_factor_spatial: Some(16),
        latents_mean: vec![0.0; 48],
        latents_std: vec![1.0; 48],
        ..Default::default()
    }
}

/// The real Wan 2.2 VAE at 1280×704 (latent 80×44), planned shape-only like the 2.1 one above:
/// its caches (WAN.md §4.6: 6.43 GB in f32) and the chunks' peaks.
#[test]
fn plan_wan22_decode_at_720p() {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    for cache_dtype in [DType::F32, DType::F16] {
        let planner = Gpu::planner(&AdapterSelector::from_env()).unwrap();
        let w = Weights::synthetic(&planner, "vae", Placement { matrices: DType::F16 });
        let mut v = AutoencoderKLWan::load(wan22_vae_config(), &w).unwrap();
        v.cache_dtype = cache_dtype;
        let weights = planner.memory().live;
        let x = Tensor::empty(&planner, &[3, 48, 44, 80], DType::F32).unwrap();
        let mut cache = v.new_cache();
        let mut line = format!("Wan 2.2 VAE decode @1280x704, weights {:.1} MiB (f16), {} caches, {} slots", mib(weights), cache_dtype.name(), v.decoder.slots);
        for (i, frames) in [(0, 1), (1, 4), (2, 4)] {
            planner.reset_peak();
            let (base, cache0) = (planner.memory().live, cache.bytes());
            let out = v.decoder.forward(&x.narrow0(i, 1).unwrap(), &mut cache, true).unwrap();
            assert_eq!(out.shape(), &[frames, 12, 352, 640]);
            let peak = planner.memory().peak_live - base;
            line += &format!("; chunk {i}: cache {:.1} MiB after, peak {:.1} MiB above ({:.1} MiB transient)", mib(cache.bytes()), mib(peak), mib(peak - (cache.bytes() - cache0)));
        }
        println!("{line}");
    }
}

/// Every kernel variant a Wan 2.1 decode builds (f32 and f16 caches, f16 weights, with and
/// without SHADER_F16) parses, validates and translates to MSL and HLSL, as
/// tests/kernels_portable.rs checks for the other pipelines.
#[test]
fn decode_kernels_translate_to_msl_and_hlsl() {
    use t2v::gpu::Caps;
    let mut all = std::collections::BTreeMap::new();
    for f16 in [true, false] {
        let caps = Caps { shader_f16: f16, subgroup: true, timestamp_query: true, coop: None, subgroup_max: 32 };
        let g = Gpu::planner_as(&AdapterSelector::from_env(), wgpu::DeviceType::DiscreteGpu, caps, 32).unwrap();
        for cache_dtype in [DType::F32, DType::F16] {
            let w = Weights::synthetic(&g, "vae", Placement { matrices: DType::F16 });
            let mut v = AutoencoderKLWan::load(AutoencoderKLWanConfig::default(), &w).unwrap();
            v.cache_dtype = cache_dtype;
            let z = Tensor::empty(&g, &[1, 16, 3, 6, 10], DType::F32).unwrap();
            v.decode(&v.denormalize(&z).unwrap()).unwrap();
            // Wan 2.2's decoder: residual up blocks (dup_up) and the unpatchify
            let w = Weights::synthetic(&g, "vae", Placement { matrices: DType::F16 });
            let mut v = AutoencoderKLWan::load(wan22_vae_config(), &w).unwrap();
            v.cache_dtype = cache_dtype;
            let z = Tensor::empty(&g, &[1, 48, 3, 2, 3], DType::F32).unwrap();
            v.decode(&v.denormalize(&z).unwrap()).unwrap();
        }
        all.extend(g.planned_kernels());
    }
    assert!(all.keys().any(|k| k.contains("T0_F16=1")), "no f16-cache conv3d variant planned: {:?}", all.keys());
    for entry in ["dup_up", "unpatchify_frames"] {
        assert!(all.keys().any(|k| k.contains(entry)), "no {entry} variant planned: {:?}", all.keys());
    }
    let mut failures = Vec::new();
    for (k, src) in &all {
        let r = (|| -> Result<(), String> {
            let module = naga::front::wgsl::parse_str(src).map_err(|e| format!("parse: {}", e.emit_to_string(src)))?;
            let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
                .validate(&module)
                .map_err(|e| format!("validate: {}", e.emit_to_string(src)))?;
            let msl = naga::back::msl::Options { lang_version: (2, 4), ..Default::default() };
            naga::back::msl::write_string(&module, &info, &msl, &naga::back::msl::PipelineOptions::default()).map_err(|e| format!("MSL: {e}"))?;
            let hlsl = naga::back::hlsl::Options { shader_model: naga::back::hlsl::ShaderModel::V6_2, ..Default::default() };
            let mut out = String::new();
            naga::back::hlsl::Writer::new(&mut out, &hlsl, &Default::default()).write(&module, &info, None).map_err(|e| format!("HLSL: {e}"))?;
            Ok(())
        })();
        if let Err(e) = r {
            failures.push(format!("{k}: {e}"));
        }
    }
    println!("{} Wan VAE decode kernel variants translated", all.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
