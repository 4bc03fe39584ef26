//! Every kernel variant the engine builds translates through naga's Metal (MSL) and DX12 (HLSL)
//! back ends, so those paths are not first exercised on a user's machine.
//!
//! Which variants: the planning device records every kernel the real pipeline code asks for
//! (it compiles and runs nothing, so it can stand in for any adapter). Each adapter profile
//! below plans the published models at their sizes (f16 and f32 weights, guidance on and off)
//! and the test fixtures' models; every recorded variant is parsed, validated, and written as
//! MSL 2.4 and HLSL SM 6.2. naga 30's HLSL writer has no cooperative matrices (DX12 adapters do
//! not offer them to wgpu), so coop variants are translated to MSL only — Metal maps them to
//! simdgroup matrices.

mod common;
use common::fixtures::fixtures;
use std::collections::BTreeMap;
use t2v::gpu::{AdapterSelector, Caps};
use t2v::latents::NoiseDtype;
use t2v::pipelines::{folder_configs, modelscope_configs, plan, GenerateParams};
use t2v::weights::Placement;
use t2v::{DType, Gpu};

struct Profile {
    name: &'static str,
    device: wgpu::DeviceType,
    caps: Caps,
    subgroup_min: u32,
}

fn profiles() -> Vec<Profile> {
    let caps = |f16, subgroup, coop, sg| Caps { shader_f16: f16, subgroup, timestamp_query: true, coop, subgroup_max: sg };
    use wgpu::DeviceType::{Cpu, DiscreteGpu, IntegratedGpu};
    vec![
        Profile { name: "GPU, FMA kernels (subgroups of 32)", device: DiscreteGpu, caps: caps(true, true, None, 32), subgroup_min: 32 },
        Profile { name: "GPU without f16 or subgroups", device: IntegratedGpu, caps: caps(false, false, None, 32), subgroup_min: 32 },
        Profile { name: "GPU, 16×16 coop (NVIDIA / Apple: 32)", device: DiscreteGpu, caps: caps(true, true, Some(16), 32), subgroup_min: 32 },
        Profile { name: "GPU, 16×16 coop (AMD: 32..64)", device: DiscreteGpu, caps: caps(true, true, Some(16), 64), subgroup_min: 32 },
        Profile { name: "CPU driver, 8×8 coop (lavapipe 26: 8)", device: Cpu, caps: caps(true, true, Some(8), 8), subgroup_min: 8 },
        Profile { name: "CPU driver, FMA (lavapipe: 8)", device: Cpu, caps: caps(true, true, None, 8), subgroup_min: 8 },
    ]
}

/// Every kernel variant one profile's runs would build.
fn variants(p: &Profile) -> BTreeMap<String, String> {
    let g = Gpu::planner_as(&AdapterSelector::from_env(), p.device, p.caps, p.subgroup_min).expect("planning device");
    let run = |configs: &t2v::pipelines::ModelConfigs, frames: usize, h: usize, w: usize| {
        for (matrices, guidance) in [(DType::F16, 9.0), (DType::F32, 1.0)] {
            let params = GenerateParams { prompt: "x".into(), num_frames: frames, height: h, width: w, num_inference_steps: 2, guidance_scale: guidance, noise_dtype: NoiseDtype::Float32, ..Default::default() };
            plan(&g, configs, &params, Placement { matrices }).expect("plan");
        }
    };
    let published = modelscope_configs().unwrap();
    for (frames, h, w) in [(24, 320, 576), (24, 576, 1024), (16, 256, 256)] {
        run(&published, frames, h, w);
    }
    for dir in ["tiny-t2v", "sweep/models/unet3-vae2", "sweep/models/lpb3-te12-vae3"] {
        run(&folder_configs(&fixtures().join(dir)).unwrap(), 3, 40, 24);
    }
    // Text2Video-Zero on SD 1.5 (the 2-D UNet, cross-frame attention, the warp kernel).
    let common = GenerateParams { prompt: "x".into(), num_frames: 8, height: 512, width: 512, num_inference_steps: 2, guidance_scale: 7.5, ..Default::default() };
    let zero = t2v::pipelines::ZeroParams { common, t0: 0, t1: 1, ..Default::default() };
    t2v::pipelines::plan_zero(&g, &t2v::pipelines::sd15_configs().unwrap(), &zero, Placement { matrices: DType::F16 }).expect("plan");
    // Wan 2.1: the 1.3B model at a small size (UMT5, the transformer with RoPE and modulation,
    // the causal VAE), and the tiny fixture pipeline (other head widths and channel counts).
    let wan = GenerateParams { prompt: "x".into(), num_frames: 5, height: 64, width: 96, num_inference_steps: 2, guidance_scale: 5.0, ..Default::default() };
    for configs in [t2v::pipelines::wan_builtin_configs("wan2.1-t2v-1.3b").unwrap(), t2v::pipelines::wan_folder_configs(&fixtures().join("wan/tiny-wan")).unwrap()] {
        for matrices in [DType::F16, DType::F32] {
            t2v::pipelines::plan_wan(&g, &configs, &wan, Placement { matrices }).expect("plan wan");
        }
    }
    // RAFT-large (VBench's dynamic degree and static filter): every RAFT kernel at the published
    // widths (rectangular GRU convs, correlation pool and lookup, the gates, convex upsampling).
    let w = t2v::weights::Weights::synthetic(&g, "raft", Placement { matrices: DType::F32 });
    let raft = t2v::models::raft::Raft::load(&w.at(""), Default::default()).expect("raft");
    let img = vec![0f32; 3 * 128 * 136];
    raft.forward(&img, &img, 128, 136, 2, None).expect("raft forward");
    g.planned_kernels().into_iter().collect()
}

fn translate(wgsl: &str) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(wgsl).map_err(|e| format!("parse: {}", e.emit_to_string(wgsl)))?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .map_err(|e| format!("validate: {}", e.emit_to_string(wgsl)))?;
    let msl = naga::back::msl::Options { lang_version: (2, 4), ..Default::default() };
    naga::back::msl::write_string(&module, &info, &msl, &naga::back::msl::PipelineOptions::default()).map_err(|e| format!("MSL: {e}"))?;
    if wgsl.contains("enable wgpu_cooperative_matrix;") {
        return Ok(());
    }
    let hlsl = naga::back::hlsl::Options { shader_model: naga::back::hlsl::ShaderModel::V6_2, ..Default::default() };
    let mut out = String::new();
    naga::back::hlsl::Writer::new(&mut out, &hlsl, &Default::default()).write(&module, &info, None).map_err(|e| format!("HLSL: {e}"))?;
    Ok(())
}

#[test]
fn every_engine_kernel_variant_translates_to_msl_and_hlsl() {
    let mut all: BTreeMap<String, String> = BTreeMap::new();
    for p in profiles() {
        let v = variants(&p);
        let coop = v.values().filter(|src| src.contains("enable wgpu_cooperative_matrix;")).count();
        println!("{:<42} {:>3} kernel variants ({coop} cooperative-matrix)", p.name, v.len());
        if p.caps.coop.is_some() {
            // linear, conv2d (1×1, 3×3), temporal conv and attention at least
            assert!(coop >= 5 && v.keys().any(|k| k.starts_with("attention_coop:")), "{}: the coop profile built only {coop} coop variants", p.name);
        }
        all.extend(v);
    }
    let failures: Vec<String> = all.iter().filter_map(|(k, src)| translate(src).err().map(|e| format!("{k}: {e}"))).collect();
    println!("{} distinct variants translated (coop ones to MSL only)", all.len());
    assert!(failures.is_empty(), "{} of {} variants fail to translate:\n{}", failures.len(), all.len(), failures.join("\n"));
}
