//! Weight streaming (issue: every model on an 8 GiB GPU): under a device budget too small for
//! every block, the plan streams some blocks from host memory. A streamed run gives the same
//! frames bit for bit as the resident one, reaches exactly the planned peak, and uploads exactly
//! the bytes the plan says (counted where the host writes device buffers); a budget below the
//! every-block-streamed peak is refused with that peak as the smallest budget that works.

mod common;
use common::fixtures::fixtures;
use t2v::gpu::AdapterSelector;
use t2v::pipelines::{folder_configs, wan_folder_configs, Family, GenerateParams, MemoryPlan, NoProgress, TextToVideo, VideoPipeline, WanPipeline};
use t2v::weights::Placement;
use t2v::{DType, Gpu};

const F16: Placement = Placement { matrices: DType::F16 };

/// A planning device whose budget is `bytes`.
fn planner(bytes: u64) -> std::sync::Arc<Gpu> {
    Gpu::planner(&AdapterSelector::from_env().with_max_memory_gib(Some(bytes as f64 / (1u64 << 30) as f64))).unwrap()
}

/// The budget that keeps the smaller half of `units` resident over the every-block-streamed peak.
fn half_budget(family: &Family, units: &[(String, u64)], p: &GenerateParams) -> (u64, MemoryPlan) {
    let names: Vec<String> = units.iter().map(|u| u.0.clone()).collect();
    let g = Gpu::planner(&AdapterSelector::from_env()).unwrap();
    let all = match family {
        Family::TextToVideo(c) => t2v::pipelines::plan_streaming(&g, c, p, F16, &names).unwrap(),
        Family::Wan(c) => t2v::pipelines::plan_wan_streaming(&g, c, p, F16, &names, None).unwrap(),
    };
    let mut sizes: Vec<u64> = units.iter().map(|u| u.1).collect();
    sizes.sort();
    let keep: u64 = sizes[..units.len() / 2].iter().sum();
    (all.peak + keep + (1 << 10), all)
}

/// Runs `pipe` with `plan` installed: (frames, bytes uploaded during the run, peak).
fn run(gpu: &Gpu, pipe: &mut dyn VideoPipeline, plan: &MemoryPlan, p: &GenerateParams) -> (Vec<f32>, u64, u64) {
    pipe.use_plan(plan).unwrap();
    gpu.reset_peak();
    let before = gpu.uploaded_bytes();
    let frames = pipe.generate(p, &mut NoProgress).unwrap();
    assert_eq!(gpu.schedule_divergence(), None, "the run allocated differently from its plan");
    (frames.data, gpu.uploaded_bytes() - before, gpu.memory().peak_allocated)
}

fn check_streamed(plan: &MemoryPlan, resident: &MemoryPlan, streamed: std::ops::Range<usize>) {
    let s = plan.streaming.as_ref().unwrap_or_else(|| panic!("the budget should make the plan stream: {}", plan.report()));
    assert!(streamed.contains(&s.streamed.len()), "{streamed:?} blocks should stream: {}", plan.report());
    assert!(plan.fits() && plan.peak < resident.peak, "{}\nresident: {}", plan.report(), resident.report());
    assert!(plan.report().contains("streamed per denoising step"), "{}", plan.report());
}

#[test]
fn unet_streams_half_its_blocks_with_identical_frames() {
    let dir = fixtures().join("tiny-t2v");
    let configs = folder_configs(&dir).unwrap();
    let family = Family::TextToVideo(configs.clone());
    let p = GenerateParams { prompt: "a lion".into(), num_frames: 3, height: 32, width: 48, num_inference_steps: 2, guidance_scale: 9.0, seed: 5, ..GenerateParams::default() };
    let free = Gpu::planner(&AdapterSelector::from_env()).unwrap();
    let units = TextToVideo::synthetic(&free, &configs, F16).unwrap().unet.units();
    let resident = family.plan(&free, &p, F16).unwrap();
    assert!(resident.streaming.is_none());
    let (budget, _) = half_budget(&family, &units, &p);
    let plan = family.plan(&planner(budget), &p, F16).unwrap();
    check_streamed(&plan, &resident, 1..units.len());

    let gpu = Gpu::new(&AdapterSelector::from_env()).unwrap();
    let mut pipe = TextToVideo::from_dir(&gpu, &dir, F16).unwrap();
    let (want, up_resident, peak_resident) = run(&gpu, &mut pipe, &resident, &p);
    assert_eq!(peak_resident, resident.peak);
    gpu.clear_schedule();
    gpu.trim();
    let streamed_before = gpu.streamed_bytes();
    let (got, up_streamed, peak) = run(&gpu, &mut pipe, &plan, &p);
    assert!(want == got, "streamed frames differ from the resident run's");
    assert_eq!(peak, plan.peak, "measured peak vs plan: {}", plan.report());
    // The UNet's weights were uploaded at load: the streamed run's extra uploads are the streamed
    // blocks, each forward.
    assert_eq!(up_streamed - up_resident, plan.streamed_per_run, "{}", plan.report());
    assert_eq!(gpu.streamed_bytes() - streamed_before, plan.streamed_per_run);
    let s = plan.streaming.as_ref().unwrap();
    // guidance: two forwards per step
    assert_eq!(plan.streamed_per_run, 2 * p.num_inference_steps as u64 * s.streamed_bytes, "{}", plan.report());
    // And back: the resident plan uploads every block again and runs as before.
    gpu.clear_schedule();
    gpu.trim();
    let (again, _, _) = run(&gpu, &mut pipe, &resident, &p);
    assert!(again == want);
}

#[test]
fn wan_streams_its_blocks_with_identical_frames() {
    // Double-buffering keeps two streamed blocks on the device, so streaming saves memory from
    // the third block on: tiny-wan-b has three (stored in bfloat16: streamed blocks are
    // converted to f16 once and uploaded from that host copy). A budget just over the
    // every-block-streamed peak streams all three.
    let dir = fixtures().join("wan/tiny-wan-b");
    let family = Family::Wan(Box::new(wan_folder_configs(&dir).unwrap()));
    let Family::Wan(configs) = &family else { unreachable!() };
    // Short prompts and a long, small video: the denoising loop is the peak (not UMT5 or the VAE).
    let p = GenerateParams { prompt: "a cat".into(), num_frames: 65, height: 16, width: 16, num_inference_steps: 3, guidance_scale: 5.0, max_sequence_length: Some(8), ..GenerateParams::default() };
    let free = Gpu::planner(&AdapterSelector::from_env()).unwrap();
    let units = t2v::pipelines::wan_units(&free, configs, F16).unwrap();
    assert_eq!(units.len(), 3);
    let resident = family.plan(&free, &p, F16).unwrap();
    let (_, all) = half_budget(&family, &units, &p);
    let plan = family.plan(&planner(all.peak + (1 << 10)), &p, F16).unwrap();
    check_streamed(&plan, &resident, 3..4);

    let gpu = Gpu::new(&AdapterSelector::from_env()).unwrap();
    let mut pipe = WanPipeline::from_dir(&gpu, &dir, F16).unwrap();
    let (want, up_resident, peak_resident) = run(&gpu, &mut pipe, &resident, &p);
    assert_eq!(peak_resident, resident.peak);
    gpu.clear_schedule();
    gpu.trim();
    let (got, up_streamed, peak) = run(&gpu, &mut pipe, &plan, &p);
    assert!(want == got, "streamed frames differ from the resident run's");
    assert_eq!(peak, plan.peak, "measured peak vs plan: {}", plan.report());
    // Wan uploads its transformer per video: a streamed block is uploaded each forward instead of
    // once, and its modulation table (f32 [6, dim]) once more for the per-step conditioning.
    let s = plan.streaming.as_ref().unwrap();
    let tables = s.streamed.len() as u64 * 6 * configs.transformer.dim() as u64 * 4;
    assert_eq!(up_streamed - up_resident, plan.streamed_per_run - s.streamed_bytes + tables, "{}", plan.report());
    assert_eq!(plan.streamed_per_run, 2 * p.num_inference_steps as u64 * s.streamed_bytes, "{}", plan.report());
}

#[test]
fn a_budget_below_one_streamed_block_is_refused_with_the_smallest_that_works() {
    let dir = fixtures().join("wan/tiny-wan");
    let family = Family::Wan(Box::new(wan_folder_configs(&dir).unwrap()));
    let p = GenerateParams { prompt: "a cat".into(), num_frames: 5, height: 16, width: 32, num_inference_steps: 2, guidance_scale: 5.0, ..GenerateParams::default() };
    let Family::Wan(configs) = &family else { unreachable!() };
    let units = t2v::pipelines::wan_units(&Gpu::planner(&AdapterSelector::from_env()).unwrap(), configs, F16).unwrap();
    let (_, all) = half_budget(&family, &units, &p);
    let plan = family.plan(&planner(all.peak - (64 << 10)), &p, F16).unwrap();
    assert!(!plan.fits(), "{}", plan.report());
    let s = plan.streaming.as_ref().unwrap();
    assert_eq!(s.streamed.len(), units.len());
    assert_eq!(s.all_streamed_peak, all.peak);
    let report = plan.report();
    assert!(report.contains(&format!("smallest budget for this run (every block streamed): {}", t2v::error::Bytes(all.peak))), "{report}");
    assert!(report.contains("does NOT fit"), "{report}");
}

#[test]
fn wan_decode_tiles_when_only_that_fits() {
    // At 496×272 the tiny VAE's untiled decode is the run's peak; a budget just under it makes
    // the plan decode in diffusers' enable_tiling() tiles (3 × 2 of 256 pixels every 192: the
    // tiled decode itself is checked against diffusers in models_wan_vae), and the run reaches
    // exactly that plan.
    let dir = fixtures().join("wan/tiny-wan");
    let family = Family::Wan(Box::new(wan_folder_configs(&dir).unwrap()));
    let p = GenerateParams { prompt: "a cat".into(), num_frames: 5, height: 272, width: 496, num_inference_steps: 2, guidance_scale: 5.0, max_sequence_length: Some(8), ..GenerateParams::default() };
    let untiled = family.plan(&Gpu::planner(&AdapterSelector::from_env()).unwrap(), &p, F16).unwrap();
    assert!(untiled.vae_tiling.is_none());
    let plan = family.plan(&planner(untiled.peak - (1 << 10)), &p, F16).unwrap();
    assert!(plan.vae_tiling.is_some() && plan.fits() && plan.peak < untiled.peak, "{}\nuntiled: {}", plan.report(), untiled.report());
    assert!(plan.report().contains("enable_tiling()"), "{}", plan.report());
    let gpu = Gpu::new(&AdapterSelector::from_env()).unwrap();
    let mut pipe = WanPipeline::from_dir(&gpu, &dir, F16).unwrap();
    let (frames, _, peak) = run(&gpu, &mut pipe, &plan, &p);
    assert_eq!(peak, plan.peak, "measured peak vs plan: {}", plan.report());
    assert_eq!(frames.len(), 5 * 272 * 496 * 3);
    assert!(frames.iter().all(|v| v.is_finite()));
}
