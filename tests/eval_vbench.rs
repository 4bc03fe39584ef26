//! VBench's quality dimensions against the reference implementations (fixtures:
//! tools/reference/vbench_fixtures.py): VBench's torchvision preprocessing float for float, the
//! networks' features at rel-L2 ≤ 1e-4, each metric equal to VBench's formula to 1e-5.

mod common;
use common::fixtures::{fixtures, read_raw, Raw};
use t2v::eval::vbench_preprocess::{self as vp, Filter};

fn cases() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("vbench/cases.json")).unwrap()).unwrap()
}

fn raw(file: &str) -> Vec<Raw> {
    read_raw(&fixtures().join("vbench").join(file))
}

fn get<'a>(r: &'a [Raw], name: &str) -> &'a Raw {
    r.iter().find(|x| x.0 == name).unwrap_or_else(|| panic!("no {name}"))
}

fn f32s(r: &Raw) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(&r.3)
}

/// Exact equality, reporting how many values differ and by how much.
#[track_caller]
fn assert_identical(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let diff = got.iter().zip(want).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
    let max = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    eprintln!("{what}: {diff} of {} values differ (max {max:e})", want.len());
    assert_eq!(diff, 0, "{what}: {diff} values differ from torch (max {max:e})");
}

#[test]
fn preprocessing_equals_torchvision() {
    let c = cases();
    let r = raw("preprocess.safetensors");
    let (clip_px, dino_px) = (c["clip_px"].as_u64().unwrap() as usize, c["dino_px"].as_u64().unwrap() as usize);
    let dino_cases: Vec<&str> = c["dino_cases"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for case in c["pre_cases"].as_array().unwrap() {
        let name = case[0].as_str().unwrap();
        let (t, h, w) = (case[1].as_u64().unwrap() as usize, case[2].as_u64().unwrap() as usize, case[3].as_u64().unwrap() as usize);
        let frames = vp::frames_from_rgb(&get(&r, &format!("in_{name}")).3, t, h, w);
        let clip = vp::clip_transform(&frames, t, h, w, clip_px).unwrap();
        assert_eq!(get(&r, &format!("clip_{name}")).2, vec![t, 3, clip.height, clip.width]);
        assert_identical(&format!("clip_transform({clip_px}) of {h}×{w}"), &clip.data, &f32s(get(&r, &format!("clip_{name}"))));
        if dino_cases.contains(&name) {
            let dino = vp::dino_transform(&frames, t, h, w, dino_px).unwrap();
            assert_eq!(get(&r, &format!("dino_{name}")).2, vec![t, 3, dino.height, dino.width]);
            assert_identical(&format!("dino_transform({dino_px}) of {h}×{w}"), &dino.data, &f32s(get(&r, &format!("dino_{name}"))));
        }
    }
    // DINO's position-embedding resize: bicubic with scale factors (n + 0.1)/N.
    for case in c["pos_cases"].as_array().unwrap() {
        let name = case[0].as_str().unwrap();
        let (n, gh, gw) = (case[1].as_u64().unwrap() as usize, case[2].as_u64().unwrap() as usize, case[3].as_u64().unwrap() as usize);
        let input = get(&r, &format!("pos_in_{name}"));
        let d = input.2[1];
        let scale = ((gh as f64 + 0.1) / n as f64, (gw as f64 + 0.1) / n as f64);
        let got = vp::interpolate_scale(&f32s(input), d, n, n, scale, Filter::Bicubic).unwrap();
        assert_identical(&format!("pos-embed {n}² → {gh}×{gw}"), &got, &f32s(get(&r, &format!("pos_out_{name}"))));
    }
}

fn video_cases() -> Vec<(String, usize, usize, usize)> {
    cases()["video_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_str().unwrap().to_string(), c[1].as_u64().unwrap() as usize, c[2].as_u64().unwrap() as usize, c[3].as_u64().unwrap() as usize))
        .collect()
}

#[test]
fn background_consistency_matches_vbench() {
    use t2v::eval::{vbench, MetricSet, Scorer, ScorerSpec};
    let c = cases();
    let r = raw("background.safetensors");
    let dir = fixtures().join("clip/tiny-clip");
    let spec = ScorerSpec { clip_model: dir.display().to_string(), metrics: MetricSet::default(), dino_model: String::new(), aesthetic_clip: String::new(), aesthetic_head: String::new(), raft_model: String::new() };
    let scorer = Scorer::load_spec(&common::gpu(), &spec, None).unwrap();
    for (name, t, h, w) in video_cases() {
        let rgb = &get(&r, &format!("frames_{name}")).3;
        let frames = t2v::eval::vbench_preprocess::frames_from_rgb(rgb, t, h, w);
        let got = t2v::eval::vbench_clip_features(&scorer.clip, &frames, t, h, w).unwrap();
        let want = f32s(get(&r, &format!("features_{name}")));
        let want64: Vec<f64> = want.iter().map(|&x| x as f64).collect();
        let e = common::rel_l2(&got.concat(), &want64);
        let value = scorer.score(rgb, t, h, w, 8.0, "a prompt").unwrap().background_consistency.unwrap();
        let reference = c["background"][&name].as_f64().unwrap();
        eprintln!("{name} ({t}×{h}×{w}): CLIP features rel-L2 {e:.2e}; background_consistency {value:.8} vs VBench {reference:.8} ({:.1e})", (value - reference).abs());
        assert!(e <= 1e-4, "{name}: features rel-L2 {e:.3e}");
        assert!((value - reference).abs() <= 1e-5, "{name}: {value} vs {reference}");
        // The formula alone, on the reference's own features.
        let on_ref = vbench::consistency(&want.chunks(want.len() / t).map(<[f32]>::to_vec).collect::<Vec<_>>()).unwrap();
        assert!((on_ref - reference).abs() <= 1e-6, "{name}: formula {on_ref} vs {reference}");
    }
}

fn dino() -> t2v::models::dino::DinoModel {
    use t2v::weights::Placement;
    t2v::models::dino::DinoModel::from_dir(&common::gpu(), &fixtures().join("vbench/tiny-dino"), Placement { matrices: t2v::DType::F32 }).unwrap()
}

/// A tensor of the dino dump as f32 (the inputs are stored f16, exactly).
fn dino_tensor(r: &[Raw], name: &str) -> Vec<f32> {
    let t = get(r, name);
    match t.1.as_str() {
        "F16" => bytemuck::pod_collect_to_vec::<u8, half::f16>(&t.3).iter().map(|h| h.to_f32()).collect(),
        _ => f32s(t),
    }
}

#[test]
fn dino_features_match_facebookresearch_dino() {
    let c = cases();
    let r = raw("dino.safetensors");
    let model = dino();
    for case in c["dino_fwd_cases"].as_array().unwrap() {
        let name = case[0].as_str().unwrap();
        let (b, h, w) = (case[1].as_u64().unwrap() as usize, case[2].as_u64().unwrap() as usize, case[3].as_u64().unwrap() as usize);
        let got = model.features(&dino_tensor(&r, &format!("dino_in_{name}")), b, h, w).unwrap().concat();
        let want: Vec<f64> = dino_tensor(&r, &format!("dino_out_{name}")).iter().map(|&x| x as f64).collect();
        let e = common::rel_l2(&got, &want);
        eprintln!("DINO {name} ({b}×3×{h}×{w}, grid {}×{}): CLS rel-L2 {e:.2e}", h / 16, w / 16);
        assert!(e <= 1e-4, "{name}: rel-L2 {e:.3e}");
    }
}

#[test]
fn subject_consistency_matches_vbench() {
    let c = cases();
    let r = raw("dino.safetensors");
    let frames_r = raw("background.safetensors");
    let model = dino();
    for (name, t, h, w) in video_cases() {
        let frames = t2v::eval::vbench_preprocess::frames_from_rgb(&get(&frames_r, &format!("frames_{name}")).3, t, h, w);
        let got = t2v::eval::vbench_dino_features(&model, &frames, t, h, w).unwrap();
        let want: Vec<f64> = f32s(get(&r, &format!("sc_features_{name}"))).iter().map(|&x| x as f64).collect();
        let e = common::rel_l2(&got.concat(), &want);
        let value = t2v::eval::vbench::consistency(&got).unwrap();
        let reference = c["subject"][&name].as_f64().unwrap();
        eprintln!("{name}: DINO features rel-L2 {e:.2e}; subject_consistency {value:.8} vs VBench {reference:.8} ({:.1e})", (value - reference).abs());
        assert!(e <= 1e-4, "{name}: features rel-L2 {e:.3e}");
        assert!((value - reference).abs() <= 1e-5, "{name}: {value} vs {reference}");
    }
}

#[test]
fn aesthetic_quality_matches_vbench() {
    use t2v::eval::{MetricSet, Scorer, ScorerSpec};
    let c = cases();
    let frames_r = raw("background.safetensors");
    let clip = fixtures().join("clip/tiny-clip").display().to_string();
    let metrics = MetricSet { aesthetic_quality: true, ..MetricSet::none() };
    let head = fixtures().join("vbench").join(c["aesthetic_head"].as_str().unwrap()).display().to_string();
    // The LAION head as torch.save wrote it (.pth, keys weight/bias), on the scorer's own CLIP.
    let spec = ScorerSpec { clip_model: clip.clone(), metrics, dino_model: String::new(), aesthetic_clip: clip, aesthetic_head: head, raft_model: String::new() };
    let scorer = Scorer::load_spec(&common::gpu(), &spec, None).unwrap();
    assert!(scorer.aesthetic.as_ref().unwrap().clip.is_none(), "the same CLIP is loaded once");
    for (name, t, h, w) in video_cases() {
        let rgb = &get(&frames_r, &format!("frames_{name}")).3;
        let s = scorer.score(rgb, t, h, w, 8.0, "a prompt").unwrap();
        let (value, reference) = (s.aesthetic_quality.unwrap(), c["aesthetic"][&name].as_f64().unwrap());
        eprintln!("{name}: aesthetic_quality {value:.8} vs VBench {reference:.8} ({:.1e})", (value - reference).abs());
        assert!((value - reference).abs() <= 1e-5, "{name}: {value} vs {reference}");
        assert_eq!((s.background_consistency, s.subject_consistency), (None, None), "only the chosen metric");
    }
}

/// Seconds per video of each VBench metric's networks on this adapter (BENCHMARKS.md): a 16-frame
/// 256×256 video (ModelScope's VBench sampling), the published architectures with synthetic
/// weights (CLIP ViT-B/32 and ViT-L/14 vision towers + projections, DINO ViT-B/16), preprocessing
/// included. `cargo test --test eval_vbench -- --ignored --nocapture bench_metric_seconds`.
#[test]
#[ignore]
fn bench_metric_seconds() {
    use std::time::Instant;
    use t2v::eval::vbench_preprocess as vp;
    use t2v::models::clip::{ClipVisionConfig, ClipVisionTransformer};
    use t2v::models::dino::{DinoConfig, DinoModel, VisionTransformer};
    use t2v::nn::Linear;
    use t2v::weights::{Placement, Weights};
    let gpu = common::gpu();
    let (t, h, w) = (16, 256, 256);
    let mut rng = common::Rng::new(7);
    let rgb: Vec<u8> = (0..t * h * w * 3).map(|_| (rng.next_u64() >> 56) as u8).collect();
    let frames = vp::frames_from_rgb(&rgb, t, h, w);
    let place = Placement { matrices: t2v::DType::F32 };
    for (name, cfg, proj) in [
        ("CLIP ViT-B/32 (background consistency)", ClipVisionConfig::default(), 512),
        (
            "CLIP ViT-L/14 (aesthetic quality)",
            ClipVisionConfig { hidden_size: 1024, intermediate_size: 4096, num_hidden_layers: 24, num_attention_heads: 16, patch_size: 14, ..ClipVisionConfig::default() },
            768,
        ),
    ] {
        let wts = Weights::synthetic(&gpu, "clip", place);
        let d = cfg.hidden_size;
        let vision = ClipVisionTransformer::load(&wts.at("vision_model"), cfg).unwrap();
        let projection = Linear::load(&wts.at("visual_projection"), d, proj, false).unwrap();
        let run = || {
            for lo in (0..t).step_by(16) {
                let px = vp::clip_transform(&frames[lo * 3 * h * w..(lo + 16).min(t) * 3 * h * w], 16, h, w, 224).unwrap();
                projection.forward(&vision.forward(&px.data, 16).unwrap()).unwrap().to_f32().unwrap();
            }
        };
        run();
        let t0 = Instant::now();
        run();
        eprintln!("{name}: {:.2} s per {t}-frame {w}×{h} video", t0.elapsed().as_secs_f64());
    }
    let wts = Weights::synthetic(&gpu, "dino", place);
    let dino = DinoModel { vit: VisionTransformer::load(&wts.at(""), DinoConfig::default()).unwrap() };
    t2v::eval::vbench_dino_features(&dino, &frames, 1, h, w).unwrap();
    let t0 = Instant::now();
    t2v::eval::vbench_dino_features(&dino, &frames, t, h, w).unwrap();
    eprintln!("DINO ViT-B/16 (subject consistency): {:.2} s per {t}-frame {w}×{h} video", t0.elapsed().as_secs_f64());
    let t0 = Instant::now();
    for _ in 0..10 {
        vp::clip_transform(&frames, t, h, w, 224).unwrap();
    }
    eprintln!("VBench preprocessing alone (clip_transform, host): {:.3} s per video", t0.elapsed().as_secs_f64() / 10.0);
}
