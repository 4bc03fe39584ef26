//! `cargo bench --bench pipeline [-- MODEL_DIR]`: the same table as `t2v bench pipeline` — one
//! guided UNet step and one whole generation, 2 frames at 64×64, 2 steps. Without a folder it
//! times the full-size architecture with synthetic weights (`tools/reference/make_replica.py`
//! writes the same architecture as a loadable folder, and `bench_diffusers.py` times diffusers on it).

fn main() -> t2v::Result<()> {
    let model = std::env::args().skip(1).find(|a| !a.starts_with('-')).map(std::path::PathBuf::from);
    let sel = t2v::gpu::AdapterSelector::from_env();
    let gpu = t2v::Gpu::new(&sel)?;
    let p = t2v::pipelines::GenerateParams {
        prompt: "a lion walking in the jungle".into(),
        negative_prompt: String::new(),
        num_frames: 2,
        height: 64,
        width: 64,
        num_inference_steps: 2,
        guidance_scale: 9.0,
        seed: 0,
        scheduler: None,
        clip_skip: 0,
        noise_dtype: Default::default(),
        flow_shift: None,
        scheduler_config: Default::default(),
        max_sequence_length: None,
        eta: 0.0,
        guidance_scale_2: None,
    };
    let r = t2v::bench::pipeline(&gpu, &t2v::Gpu::planner(&sel)?, model.as_deref(), &p, 1, false)?;
    println!("{}", r.table());
    Ok(())
}
