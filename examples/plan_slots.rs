use t2v::gpu::AdapterSelector;
use t2v::pipelines::{modelscope_configs, plan, GenerateParams};
use t2v::weights::Placement;
use t2v::{DType, Gpu};
fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().unwrap()).collect();
    let p = GenerateParams { prompt: "x".into(), negative_prompt: String::new(), num_frames: a[0], height: a[1], width: a[2], num_inference_steps: 2, guidance_scale: 9.0, seed: 0, scheduler: None, clip_skip: 0 };
    let pl = plan(&Gpu::planner(&AdapterSelector::from_env()).unwrap(), &modelscope_configs().unwrap(), &p, Placement { matrices: DType::F16 }).unwrap();
    let mb: Vec<String> = pl.schedule.slots.iter().map(|b| format!("{:.1}", *b as f64 / 1048576.0)).collect();
    println!("{} allocs; slots MiB: {}", pl.schedule.assign.len(), mb.join(" "));
    println!("{}", pl.report());
    for (n, b, w) in &pl.at_peak { if !w.contains(" f16") { println!("{n} × {w} {:.1} MiB", *b as f64 / 1048576.0); } }
}
