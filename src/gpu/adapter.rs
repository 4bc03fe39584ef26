//! Choosing an adapter: by name substring and/or backend, preferring real GPUs.

use crate::error::{Error, Result};

/// Which adapter to open. Empty means "the best one": discrete > integrated > virtual > CPU.
#[derive(Debug, Clone, Default)]
pub struct AdapterSelector {
    /// Case-insensitive substring of the adapter name, e.g. "llvmpipe" or "RTX".
    pub name: Option<String>,
    /// "vulkan", "metal", "dx12" or "gl".
    pub backend: Option<String>,
    /// Pretend the adapter lacks SHADER_F16 (exercises the `unpack2x16float` path).
    pub disable_f16: bool,
    /// Pretend the adapter lacks subgroup operations (exercises the workgroup-memory paths).
    pub disable_subgroup: bool,
    /// Whether the GEMM-shaped kernels run on matrix units (cooperative matrices).
    pub coop: CoopChoice,
    /// A cap on the device memory plans may use, bytes (`--max-device-memory`, config
    /// `max_device_memory`, `T2V_DEVICE_MEMORY_GIB`): the budget is the smaller of it and the
    /// adapter's device-local memory.
    pub max_memory: Option<u64>,
}

/// GiB (binary) as bytes; None for a value that is not a positive finite number.
pub fn gib_bytes(gib: f64) -> Option<u64> {
    (gib.is_finite() && gib > 0.0).then(|| (gib * (1u64 << 30) as f64) as u64)
}

/// `T2V_COOP`: `auto` (default) uses cooperative matrices on GPUs that offer them; `on` also on
/// CPU drivers (lavapipe 26 offers them, but its FMA kernels are faster: tests force it to
/// check the path); `off` never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CoopChoice {
    #[default]
    Auto,
    On,
    Off,
}

impl CoopChoice {
    pub fn parse(s: &str) -> Result<CoopChoice> {
        match s.to_lowercase().as_str() {
            "" | "auto" => Ok(CoopChoice::Auto),
            "1" | "on" | "coop" | "true" => Ok(CoopChoice::On),
            "0" | "off" | "fma" | "false" => Ok(CoopChoice::Off),
            other => Err(Error::Other(format!("T2V_COOP='{other}': expected auto, on (coop) or off (fma)"))),
        }
    }
}

/// The coop tile edge S to use: the largest square f16·f16→f32 configuration the adapter offers,
/// when shader f16 and subgroups are there too and `sel` allows it.
pub(super) fn coop_tile(adapter: &wgpu::Adapter, info: &wgpu::AdapterInfo, sel: &AdapterSelector, offered: &[wgpu::CooperativeMatrixProperties]) -> Option<u32> {
    let allowed = match sel.coop {
        CoopChoice::Off => false,
        CoopChoice::On => true,
        CoopChoice::Auto => info.device_type != wgpu::DeviceType::Cpu,
    };
    let needs = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
    // lavapipe 26.1 at 512-bit vectors offers 8×8 tiles but crashes in any shader using them.
    let wide_lavapipe = info.device_type == wgpu::DeviceType::Cpu && info.name.contains("512 bits");
    if !allowed || wide_lavapipe || sel.disable_f16 || sel.disable_subgroup || !adapter.features().contains(needs) {
        return None;
    }
    use wgpu::CooperativeScalarType::{F16, F32};
    offered
        .iter()
        .filter(|c| c.ab_type == F16 && c.cr_type == F32 && c.m_size == c.n_size && c.n_size == c.k_size)
        .map(|c| c.m_size)
        .filter(|&s| s == 8 || s == 16)
        .max()
}

impl AdapterSelector {
    /// Reads `T2V_ADAPTER`, `T2V_BACKEND`, `T2V_NO_F16`, `T2V_NO_SUBGROUP`, `T2V_COOP` and
    /// `T2V_DEVICE_MEMORY_GIB`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        AdapterSelector {
            name: var("T2V_ADAPTER"),
            backend: var("T2V_BACKEND"),
            disable_f16: var("T2V_NO_F16").is_some_and(|v| v != "0"),
            disable_subgroup: var("T2V_NO_SUBGROUP").is_some_and(|v| v != "0"),
            // An unreadable value falls back to auto here; `t2v devices` reports the choice.
            coop: var("T2V_COOP").map(|v| CoopChoice::parse(&v).unwrap_or_default()).unwrap_or_default(),
            max_memory: var("T2V_DEVICE_MEMORY_GIB").and_then(|v| v.parse::<f64>().ok()).and_then(gib_bytes),
        }
    }

    /// The selector with the budget capped at `gib` GiB too (the smaller cap wins).
    pub fn with_max_memory_gib(mut self, gib: Option<f64>) -> Self {
        if let Some(b) = gib.and_then(gib_bytes) {
            self.max_memory = Some(self.max_memory.map_or(b, |m| m.min(b)));
        }
        self
    }

    fn backends(&self) -> Result<wgpu::Backends> {
        Ok(match self.backend.as_deref().map(str::to_lowercase).as_deref() {
            None => wgpu::Backends::all(),
            Some("vulkan" | "vk") => wgpu::Backends::VULKAN,
            Some("metal") => wgpu::Backends::METAL,
            Some("dx12" | "d3d12") => wgpu::Backends::DX12,
            Some("gl" | "gles") => wgpu::Backends::GL,
            Some(other) => {
                return Err(Error::Other(format!(
                    "unknown backend '{other}': expected one of vulkan, metal, dx12, gl"
                )))
            }
        })
    }
}

fn instance(coop: CoopChoice) -> wgpu::Instance {
    prefer_wide_cpu_vectors(coop);
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::all();
    wgpu::Instance::new(desc)
}

/// lavapipe (llvmpipe) runs a workgroup as SIMD loops of `LP_NATIVE_VECTOR_WIDTH` bits, 256 by
/// default. On a CPU with AVX-512 its FMA kernels run 1.2–2× faster at 512 (16 lanes; the CPU
/// tile tables size workgroups to the lanes: BENCHMARKS.md "A GEMM for CPU drivers"), so t2v asks
/// for that before the first Vulkan instance loads the driver — unless the variable is set, or
/// the process asked for cooperative matrices (lavapipe 26.1 offers them at 512 bits but crashes
/// running them; see [`coop_tile`]). Other drivers ignore it.
fn prefer_wide_cpu_vectors(coop: CoopChoice) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(target_arch = "x86_64")]
        if coop != CoopChoice::On && std::env::var_os("LP_NATIVE_VECTOR_WIDTH").is_none() && std::arch::is_x86_feature_detected!("avx512f") {
            // Before any driver is loaded, so no other thread reads the environment in C.
            std::env::set_var("LP_NATIVE_VECTOR_WIDTH", "512");
        }
    });
}

fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Every adapter wgpu can see, best first.
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    let mut infos: Vec<_> = pollster::block_on(instance(AdapterSelector::from_env().coop).enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(|a| a.get_info())
        .collect();
    infos.sort_by_key(|i| rank(i.device_type));
    infos
}

pub(super) fn pick(sel: &AdapterSelector) -> Result<(wgpu::Adapter, wgpu::AdapterInfo)> {
    let backends = sel.backends()?;
    let mut adapters: Vec<_> = pollster::block_on(instance(sel.coop).enumerate_adapters(backends))
        .into_iter()
        // GL compute lacks what the kernels need (storage limits, f16); use it only when asked.
        .filter(|a| sel.backend.is_some() || a.get_info().backend != wgpu::Backend::Gl)
        .collect();
    if adapters.is_empty() {
        let detail = match &sel.backend {
            Some(b) => format!(" for backend '{b}'"),
            None => String::new(),
        };
        return Err(Error::NoAdapter { detail });
    }
    adapters.sort_by_key(|a| rank(a.get_info().device_type));
    if let Some(wanted) = &sel.name {
        let w = wanted.to_lowercase();
        let available = adapters
            .iter()
            .map(|a| format!("'{}' ({:?})", a.get_info().name, a.get_info().backend))
            .collect::<Vec<_>>()
            .join(", ");
        let found = adapters.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&w));
        return match found {
            Some(a) => {
                let info = a.get_info();
                Ok((a, info))
            }
            None => Err(Error::AdapterNotFound { wanted: wanted.clone(), available }),
        };
    }
    let a = adapters.remove(0);
    let info = a.get_info();
    Ok((a, info))
}

/// The device memory budget in bytes: the adapter's device-local memory (the largest
/// DEVICE_LOCAL Vulkan heap; wgpu has no portable query) or the selector's cap, whichever is
/// smaller — the cap alone on Metal/DX12, where the adapter's is unknown.
pub(super) fn device_memory(adapter: &wgpu::Adapter, cap: Option<u64>) -> Option<u64> {
    match (adapter_memory(adapter), cap) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

fn adapter_memory(adapter: &wgpu::Adapter) -> Option<u64> {
    // SAFETY: read-only queries of the physical device wgpu opened; nothing is kept.
    unsafe {
        let hal = adapter.as_hal::<wgpu::hal::api::Vulkan>()?;
        let instance = hal.shared_instance().raw_instance();
        let props = instance.get_physical_device_memory_properties(hal.raw_physical_device());
        const DEVICE_LOCAL: u32 = 0x1;
        props.memory_heaps[..props.memory_heap_count as usize]
            .iter()
            .filter(|h| h.flags.as_raw() & DEVICE_LOCAL != 0)
            .map(|h| h.size)
            .max()
    }
}
