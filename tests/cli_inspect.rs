//! `t2v inspect`: components, parameter counts, dtypes, and the weights' device memory — which
//! must equal what loading the model actually allocates.

mod common;
use common::fixtures::fixtures;
use std::process::Command;
use t2v::inspect::inspect_component;
use t2v::weights::Placement;
use t2v::{DType, Gpu};

#[test]
fn inspect_prints_components() {
    let out = Command::new(env!("CARGO_BIN_EXE_t2v")).args(["inspect"]).arg(fixtures().join("tiny-t2v")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8_lossy(&out.stdout);
    for want in ["TextToVideoSDPipeline", "| unet | UNet3DConditionModel | 362.3 k | f32 362.3 k", "| vae | AutoencoderKL", "| text_encoder | CLIPTextModel", "DDIMScheduler"] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_t2v")).args(["inspect", "/no/such/model"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a model folder"));
}

#[test]
fn device_memory_matches_the_allocator() {
    for (dtype, f16) in [(DType::F16, true), (DType::F32, false)] {
        let g = Gpu::from_env().unwrap();
        let dir = fixtures().join("tiny-t2v/unet");
        let est = inspect_component("unet", "", &dir).unwrap();
        let before = g.memory().live_requested;
        let m = t2v::models::unet::UNet3DConditionModel::from_dir(&g, &dir, Placement { matrices: dtype }).unwrap();
        let used = g.memory().live_requested - before;
        let want = if f16 { est.device_f16 } else { est.device_f32 };
        // The time-step frequency table (C0/2 f32) is the one device tensor that is no weight.
        let freq_table = 4 * (m.config.block_out_channels[0] / 2) as u64;
        assert_eq!(used, want + freq_table, "{dtype:?}");
        let est = inspect_component("text_encoder", "", &fixtures().join("tiny-t2v/text_encoder")).unwrap();
        let before = g.memory().live_requested;
        let t = t2v::models::text_encoder::ClipTextModel::from_dir(&g, &fixtures().join("tiny-t2v/text_encoder"), Placement { matrices: dtype }).unwrap();
        let used = g.memory().live_requested - before;
        assert_eq!(used, if f16 { est.device_f16 } else { est.device_f32 }, "text encoder {dtype:?}");
        // Its encoder layers come to the device one at a time, while a prompt is encoded.
        let layer = t.layer(0).unwrap();
        let used = g.memory().live_requested - before;
        assert_eq!(used, if f16 { est.device_f16 + est.streamed_f16 } else { est.device_f32 + est.streamed_f32 });
        drop(layer);
    }
}

/// A Stable Diffusion folder (tests/fixtures/tiny-sd): the 2-D UNet, components saved as
/// [null, null] (no safety checker) skipped, and the pipeline that runs it named.
#[test]
fn inspect_stable_diffusion_folder() {
    let out = Command::new(env!("CARGO_BIN_EXE_t2v")).args(["inspect"]).arg(fixtures().join("tiny-sd")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8_lossy(&out.stdout);
    for want in ["StableDiffusionPipeline", "| unet | UNet2DConditionModel |", "PNDMScheduler", "runs with: t2v generate --pipeline text2video-zero"] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    assert!(!s.contains("safety_checker") && !s.contains("requires_safety_checker"), "{s}");
}
