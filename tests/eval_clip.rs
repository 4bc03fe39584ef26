//! The CLIP scorer against transformers (fixtures: tools/reference/clip_fixtures.py):
//! CLIPImageProcessorPil's preprocessing (PIL bicubic resize, centre crop, rescale, normalise)
//! on images smaller and larger than 224 and non-square both ways — bit for bit; the tiny
//! CLIPModel's get_image_features / get_text_features at rel-L2 ≤ 1e-4; and every metric against
//! NumPy's computation on the same embeddings and frames.

mod common;
use common::fixtures::{dump_at, fixtures, image, read_raw};
use common::{gpu, rel_l2};
use t2v::models::clip::preprocess::{preprocess, resize_and_crop};
use t2v::models::clip::{ClipModel, PreprocessConfig};
use t2v::eval::metrics;
use t2v::weights::Placement;
use t2v::DType;


/// `features.safetensors` without its u8 `frames` (read by [`frames`]).
fn features() -> common::fixtures::Dump {
    let path = fixtures().join("clip/features.safetensors");
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("eval-clip");
    std::fs::create_dir_all(&dir).unwrap();
    let floats: Vec<_> = read_raw(&path).into_iter().filter(|r| r.1 == "F32").collect();
    let copy = dir.join(format!("features-{}.safetensors", std::process::id()));
    common::fixtures::write_raw(&copy, &floats);
    dump_at(&copy, "clip features")
}

/// The fixture's frames (F, H, W, 3) u8 and their shape.
fn frames() -> (Vec<u8>, Vec<usize>) {
    let r = read_raw(&fixtures().join("clip/features.safetensors")).into_iter().find(|r| r.0 == "frames").unwrap();
    (r.3, r.2)
}

fn cases() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("clip/cases.json")).unwrap()).unwrap()
}

fn sizes(v: &serde_json::Value) -> Vec<(usize, usize)> {
    v.as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap() as usize, p[1].as_u64().unwrap() as usize)).collect()
}

#[test]
fn preprocessing_equals_clip_image_processor() {
    // The default CLIPImageProcessor: shortest edge 224, crop 224, OpenAI mean/std.
    let c = cases();
    let raw = read_raw(&fixtures().join("clip/preprocess.safetensors"));
    let get = |name: &str| raw.iter().find(|r| r.0 == name).unwrap_or_else(|| panic!("no {name}")).3.clone();
    let cfg = PreprocessConfig::clip_default(224);
    let seed0 = c["preprocess_seed0"].as_u64().unwrap();
    for (i, (h, w)) in sizes(&c["preprocess_sizes"]).into_iter().enumerate() {
        let img = image(h, w, seed0 + i as u64);
        let (crop, ch, cw) = resize_and_crop(&cfg, &img, h, w).unwrap();
        assert_eq!((ch, cw), (224, 224));
        let want = get(&format!("crop_{h}x{w}"));
        let diff = crop.iter().zip(&want).filter(|(a, b)| a != b).count();
        let max = crop.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
        eprintln!("{h}×{w} → 224²: {diff} of {} bytes differ from PIL (max {max})", want.len());
        // PIL's fixed-point arithmetic reproduced: not one uint8 step anywhere.
        assert_eq!(diff, 0, "{h}×{w}: {diff} bytes differ (max {max} uint8 steps)");
    }
    for (h, w) in sizes(&c["pixels_sizes"]) {
        let i = sizes(&c["preprocess_sizes"]).iter().position(|&s| s == (h, w)).unwrap();
        let img = image(h, w, seed0 + i as u64);
        let (px, _, _) = preprocess(&cfg, &img, h, w).unwrap();
        let want: Vec<f32> = bytemuck::pod_collect_to_vec(&get(&format!("pixels_{h}x{w}")));
        let max = px.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max == 0.0, "{h}×{w}: pixel_values differ by up to {max}");
    }
}

#[test]
fn towers_match_transformers() {
    let c = cases();
    let dir = fixtures().join("clip/tiny-clip");
    let f = features();
    let model = ClipModel::from_dir(&gpu(), &dir, Placement { matrices: DType::F32 }).unwrap();
    // Vision: from transformers' pixel_values, and from the frames through t2v's preprocessing.
    let (shape, _) = f.get("pixel_values");
    let b = shape[0];
    let got: Vec<f32> = model.image_features_pixels(&f.host("pixel_values"), b).unwrap().concat();
    let e = rel_l2(&got, f.want("image_embeds"));
    eprintln!("get_image_features: rel-L2 {e:.2e}");
    assert!(e <= 1e-4, "image features: rel-L2 {e:.3e}");
    let (frames, fs) = frames();
    let (fh, fw) = (fs[1], fs[2]);
    let mut px = Vec::new();
    for i in 0..b {
        px.extend(preprocess(&model.preprocess, &frames[i * fh * fw * 3..(i + 1) * fh * fw * 3], fh, fw).unwrap().0);
    }
    assert_eq!(px, f.host("pixel_values"), "t2v's preprocessing of the frames differs from transformers'");
    let e2 = rel_l2(&model.image_features(&frames, b, fh, fw).unwrap().concat(), f.want("image_embeds"));
    assert!(e2 <= 1e-4, "image features from frames: rel-L2 {e2:.3e}");
    // Text: the tokenizer gives transformers' ids, and the pooled, projected features match.
    let want_ids: Vec<Vec<u32>> =
        c["input_ids"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()).collect();
    for (p, ids) in c["prompts"].as_array().unwrap().iter().zip(&want_ids) {
        assert_eq!(&model.tokenizer.encode(p.as_str().unwrap()).unwrap().ids, ids, "tokenizer on {p}");
    }
    let got: Vec<f32> = model.text_features_ids(&want_ids).unwrap().concat();
    let e3 = rel_l2(&got, f.want("text_embeds"));
    eprintln!("get_text_features: rel-L2 {e3:.2e}");
    assert!(e3 <= 1e-4, "text features: rel-L2 {e3:.3e}");
}

#[test]
fn pooling_follows_the_configs_eos_token_id() {
    // eos_token_id 2 (OpenAI's configs): argmax, the first of equal maxima.
    assert_eq!(t2v::models::clip::pool_index(&[49406, 320, 49407, 49407, 49407], 2), 2);
    // Otherwise the first eos_token_id, even when a larger id exists.
    assert_eq!(t2v::models::clip::pool_index(&[49406, 320, 49407, 49408, 49407], 49407), 2);
    assert_eq!(t2v::models::clip::pool_index(&[49406, 320, 5, 0, 0], 5), 2);
}

#[test]
fn metrics_match_numpy() {
    let c = cases();
    let f = features();
    let d = f.get("image_embeds").0[1];
    let img: Vec<Vec<f32>> = f.host("image_embeds").chunks(d).map(<[f32]>::to_vec).collect();
    let txt: Vec<Vec<f32>> = f.host("text_embeds").chunks(d).map(<[f32]>::to_vec).collect();
    let (frames, s) = frames();
    for (t, want) in txt.iter().zip(c["metrics_per_prompt"].as_array().unwrap()) {
        let got = metrics::scores(&img, t, &frames, s[0], s[1], s[2]);
        let close = |name: &str, g: f64| {
            let w = want[name].as_f64().unwrap();
            assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{name}: {g} vs NumPy {w}");
        };
        close("clipsim", got.clipsim);
        close("fetv_clipscore", got.fetv_clipscore);
        close("clip_temp", got.clip_temp.unwrap());
        close("flicker", got.flicker.unwrap());
    }
    // One frame: no temporal numbers.
    let one = metrics::scores(&img[..1], &txt[0], &frames[..s[1] * s[2] * 3], 1, s[1], s[2]);
    assert_eq!((one.clip_temp, one.flicker), (None, None));
}
