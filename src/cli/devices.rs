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
    Ok(())
}
