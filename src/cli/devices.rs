use t2v::gpu::{list_adapters, AdapterSelector};
use t2v::{Error, Gpu};

pub fn run(sel: &AdapterSelector) -> t2v::Result<()> {
    let all = list_adapters();
    if all.is_empty() {
        return Err(Error::NoAdapter { detail: String::new() });
    }
    for (i, a) in all.iter().enumerate() {
        println!("{i}: {} ({:?}, {:?}, driver: {} {})", a.name, a.backend, a.device_type, a.driver, a.driver_info);
    }
    let gpu = Gpu::new(sel)?;
    let l = &gpu.limits;
    println!(
        "\nselected: {} ({:?})\n  max storage binding: {}\n  max buffer: {}\n  workgroup memory: {}\n  max workgroups per dimension: {}\n  shader-f16: {}  subgroups: {}  timestamp queries: {}",
        gpu.info.name,
        gpu.info.backend,
        t2v::error::Bytes(gpu.max_binding()),
        t2v::error::Bytes(l.max_buffer_size),
        t2v::error::Bytes(l.max_compute_workgroup_storage_size as u64),
        l.max_compute_workgroups_per_dimension,
        gpu.caps.shader_f16,
        gpu.caps.subgroup,
        gpu.caps.timestamp_query
    );
    println!("  subgroup size: {}..{}", gpu.info.subgroup_min_size, gpu.info.subgroup_max_size);
    let offered: Vec<String> = gpu
        .coop_offered
        .iter()
        .map(|c| format!("{}×{}×{} {:?}·{:?}→{:?}", c.m_size, c.n_size, c.k_size, c.ab_type, c.ab_type, c.cr_type))
        .collect();
    println!(
        "  cooperative matrices offered: {}
  GEMM kernels: {}",
        if offered.is_empty() { "none".to_string() } else { offered.join(", ") },
        match gpu.caps.coop {
            Some(s) => format!("cooperative matrices, {s}×{s} f16 tiles (T2V_COOP=off for the FMA kernels)"),
            None if !offered.is_empty() => "FMA (cooperative matrices not used: T2V_COOP=on forces them; auto uses them on GPUs only)".to_string(),
            None => "FMA".to_string(),
        }
    );
    Ok(())
}
