//! `cargo bench --bench kernels [-- FILTER]`: the same table as `t2v bench kernels`.

fn main() -> t2v::Result<()> {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let gpu = t2v::Gpu::from_env()?;
    println!("adapter: {} ({:?})", gpu.info.name, gpu.info.backend);
    println!("| kernel | shape | time (ms) | GFLOP/s | GB/s | timer |");
    println!("|---|---|---:|---:|---:|---|");
    for case in t2v::bench::cases(&gpu, 1)? {
        if filter.as_deref().is_some_and(|f| !case.kernel.contains(f) && !case.shape.contains(f)) {
            continue;
        }
        let m = t2v::bench::measure(&gpu, &case, 0.5)?;
        println!("| {} | {} | {:.3} | {:.2} | {:.2} | {} |", m.kernel, m.shape, m.seconds * 1e3, m.gflops, m.gbps, m.timer);
    }
    Ok(())
}
