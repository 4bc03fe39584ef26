//! The GPU runtime: adapter and device, buffer pool, pipeline cache, dispatch recorder.
//!
//! Everything above this layer talks to a [`Gpu`]: ops record dispatches into its recorder and
//! nothing reaches the device until [`Gpu::flush`] (or a download) submits them, so a whole
//! model forward becomes a handful of submits with no readback in between.

mod adapter;
mod pipelines;
mod pool;
mod recorder;
pub mod schedule;
mod shader;

pub use adapter::{gib_bytes, list_adapters, AdapterSelector, CoopChoice};
pub use pipelines::Kernel;
pub use pool::{MemoryStats, PooledBuffer};
pub use recorder::Binding;
pub use shader::preprocess;

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// Optional device capabilities that change which kernel variants run.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// `enable f16;` in WGSL: f16 weights are read natively instead of through `unpack2x16float`.
    pub shader_f16: bool,
    pub subgroup: bool,
    pub timestamp_query: bool,
    /// Cooperative-matrix (matrix unit) GEMM kernels are used, with S×S f16·f16→f32 tiles:
    /// Some(S) when the adapter offers such a configuration (the largest square one) and the
    /// selector's [`CoopChoice`](adapter::CoopChoice) allows it.
    pub coop: Option<u32>,
    /// The largest subgroup the adapter may run (workgroups of the coop kernels are sized for it).
    pub subgroup_max: u32,
}

/// An open device with its queue, memory pool, kernel cache and pending dispatches.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub caps: Caps,
    pool: pool::BufferPool,
    pipelines: pipelines::PipelineCache,
    recorder: Mutex<recorder::Recorder>,
    /// First uncaptured wgpu error since the last check (wgpu's default handler would panic).
    device_error: Arc<Mutex<Option<String>>>,
    /// Tests set this so every freshly allocated output starts as NaN: an element a kernel
    /// forgets to write then fails the comparison instead of passing by luck.
    poison: std::sync::atomic::AtomicBool,
    /// Bound to read-only slots a kernel variant never reads (every slot needs a buffer).
    dummy: wgpu::Buffer,
    /// Planning mode: allocations are only counted, dispatches and transfers are skipped, so
    /// the real model code runs shape-only and the pool's counters become the memory plan.
    planning: bool,
    /// Planning: every kernel variant the planned work would build, key → WGSL after
    /// preprocessing (checked against naga's other back ends by tests/kernels_portable.rs).
    planned_kernels: Mutex<std::collections::BTreeMap<String, String>>,
    /// Planning: the largest storage binding any op asked for.
    largest_binding: std::sync::Mutex<(u64, &'static str)>,
    /// Profiling: every dispatch runs alone, timed; per kernel its count, GPU seconds, FLOPs
    /// (as the op declared them, see [`flops_hint`](Self::flops_hint)) and bytes bound.
    profile: Mutex<Option<std::collections::BTreeMap<String, KernelProfile>>>,
    /// The FLOPs the next dispatch does (f64 bits; 0: none declared), for profiles.
    flops_next: std::sync::atomic::AtomicU64,
    /// Bytes of device-local memory, where the backend tells (Vulkan); `T2V_DEVICE_MEMORY_GIB`
    /// overrides.
    pub memory_capacity: Option<u64>,
    /// The cooperative-matrix configurations the adapter offers (used or not: see `caps.coop`).
    pub coop_offered: Vec<wgpu::CooperativeMatrixProperties>,
    /// Bytes written into device buffers from the host (real devices only; tests count
    /// weight streaming with it).
    uploaded: std::sync::atomic::AtomicU64,
    /// Bytes of weights uploaded by streamed units (`weights::stream`), planned or real.
    streamed: std::sync::atomic::AtomicU64,
    /// Host → device copy speed in bytes/s, measured once (see [`upload_bandwidth`](Self::upload_bandwidth)).
    bandwidth: std::sync::OnceLock<Option<f64>>,
}

impl Gpu {
    /// Opens the adapter chosen by `sel` with its own limits and the optional features it has.
    pub fn new(sel: &AdapterSelector) -> Result<Arc<Gpu>> {
        Gpu::open(sel, false)
    }

    /// A device that only plans: it compiles kernels but allocates, runs and copies nothing,
    /// while counting every allocation exactly as a real run would.
    pub fn planner(sel: &AdapterSelector) -> Result<Arc<Gpu>> {
        Gpu::open(sel, true)
    }

    pub fn is_planning(&self) -> bool {
        self.planning
    }

    /// Planning: the kernel variants the planned work would have built (key, WGSL source).
    pub fn planned_kernels(&self) -> Vec<(String, String)> {
        self.planned_kernels.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// A planning device that plans as if the adapter were of `device_type` with `caps` and
    /// subgroups of `subgroup_min..=caps.subgroup_max` (planning compiles and runs nothing, so any
    /// adapter's kernel choices can be reproduced here).
    pub fn planner_as(sel: &AdapterSelector, device_type: wgpu::DeviceType, caps: Caps, subgroup_min: u32) -> Result<Arc<Gpu>> {
        let mut g = Gpu::open(sel, true)?;
        let m = Arc::get_mut(&mut g).ok_or_else(|| Error::Other("planner is shared".into()))?;
        m.caps = caps;
        m.info.device_type = device_type;
        m.info.subgroup_min_size = subgroup_min;
        m.info.subgroup_max_size = caps.subgroup_max;
        Ok(g)
    }

    pub(crate) fn note_binding(&self, bytes: u64, op: &'static str) {
        let mut l = self.largest_binding.lock().unwrap_or_else(|p| p.into_inner());
        if bytes > l.0 {
            *l = (bytes, op);
        }
    }

    /// Planning: the largest storage binding the planned work asked for so far, and its op.
    pub fn largest_binding(&self) -> (u64, &'static str) {
        *self.largest_binding.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(sel: &AdapterSelector, planning: bool) -> Result<Arc<Gpu>> {
        let (adapter, info) = adapter::pick(sel)?;
        let memory_capacity = adapter::device_memory(&adapter, sel.max_memory);
        let want = wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY;
        let mut features = adapter.features() & want;
        let coop_offered = if adapter.features().contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            adapter.cooperative_matrix_properties()
        } else {
            Vec::new()
        };
        let coop = adapter::coop_tile(&adapter, &info, sel, &coop_offered);
        if coop.is_some() {
            features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        if sel.disable_f16 {
            features.remove(wgpu::Features::SHADER_F16);
        }
        if sel.disable_subgroup {
            features.remove(wgpu::Features::SUBGROUP);
        }
        let limits = adapter.limits();
        let desc = |features: wgpu::Features, coop: bool| wgpu::DeviceDescriptor {
            label: Some("t2v"),
            required_features: features,
            required_limits: limits.clone(),
            // SAFETY: the only experimental feature requested is cooperative matrices, used by
            // shaders/gemm_coop.wgsl alone, whose every variant is tested against CPU references.
            experimental_features: if coop { unsafe { wgpu::ExperimentalFeatures::enabled() } } else { wgpu::ExperimentalFeatures::disabled() },
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let request = |d: wgpu::DeviceDescriptor| pollster::block_on(adapter.request_device(&d));
        let mut coop = coop;
        let (device, queue) = if coop.is_some() {
            // Some drivers advertise cooperative matrices yet refuse a device with them (lavapipe
            // 26 at LP_NATIVE_VECTOR_WIDTH=128), which wgpu-hal reports by panicking: fall back to
            // the FMA kernels rather than fail.
            let hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            let tried = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| request(desc(features, true))));
            std::panic::set_hook(hook);
            match tried {
                Ok(Ok(dq)) => dq,
                _ => {
                    eprintln!("note: {} refused a device with cooperative matrices; using the FMA kernels", info.name);
                    coop = None;
                    features.remove(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
                    request(desc(features, false)).map_err(|e| Error::DeviceRequest { adapter: info.name.clone(), reason: e.to_string() })?
                }
            }
        } else {
            request(desc(features, false)).map_err(|e| Error::DeviceRequest { adapter: info.name.clone(), reason: e.to_string() })?
        };
        let device_error = Arc::new(Mutex::new(None::<String>));
        let sink = device_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(e.to_string());
            }
        }));
        let caps = Caps {
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroup: features.contains(wgpu::Features::SUBGROUP),
            timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            coop,
            subgroup_max: info.subgroup_max_size,
        };
        let limits = device.limits();
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("t2v unused slot"),
            size: 256,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(Arc::new(Gpu {
            dummy,
            planning,
            largest_binding: std::sync::Mutex::new((0, "")),
            planned_kernels: Default::default(),
            profile: Mutex::new(None),
            flops_next: std::sync::atomic::AtomicU64::new(0),
            memory_capacity,
            coop_offered,
            pool: pool::BufferPool::new(device.clone(), planning),
            pipelines: pipelines::PipelineCache::default(),
            recorder: Mutex::new(recorder::Recorder::new(&device)),
            device,
            queue,
            info,
            limits,
            caps,
            device_error,
            poison: Default::default(),
            uploaded: Default::default(),
            streamed: Default::default(),
            bandwidth: Default::default(),
        }))
    }

    /// The default adapter, chosen by `T2V_ADAPTER` / `T2V_BACKEND` when set.
    pub fn from_env() -> Result<Arc<Gpu>> {
        Gpu::new(&AdapterSelector::from_env())
    }

    /// Largest byte range one storage binding may cover on this device.
    pub fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// A binding for a read-only slot the chosen kernel variant never reads.
    pub fn unused_binding(&self) -> Binding {
        Binding { buffer: self.dummy.clone(), offset: 0, size: 256 }
    }

    pub fn set_poison(&self, on: bool) {
        self.poison.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn poison(&self) -> bool {
        self.poison.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn memory(&self) -> MemoryStats {
        self.pool.stats()
    }

    /// Planning: the live allocations at the peak, largest first (bytes, what).
    pub fn live_at_peak(&self) -> Vec<(u64, String)> {
        self.pool.live_at_peak()
    }

    /// Starts a new peak measurement from the current live bytes.
    pub fn reset_peak(&self) {
        self.pool.reset_peak();
        *self.largest_binding.lock().unwrap_or_else(|p| p.into_inner()) = (0, "");
    }

    /// Releases pooled buffers no tensor holds (they are kept for reuse otherwise).
    pub fn trim(&self) {
        self.pool.trim()
    }

    /// Starts recording allocation lifetimes; [`finish_trace`](Self::finish_trace) turns them
    /// into a liveness-based [`schedule::Schedule`].
    pub fn start_trace(&self) {
        self.pool.start_trace()
    }

    pub fn finish_trace(&self) -> schedule::Schedule {
        self.pool.finish_trace()
    }

    /// Serves the following allocations from the schedule's buffers, created now. A run that
    /// allocates differently from the one traced falls back to the pool from that point on
    /// (see [`schedule_divergence`](Self::schedule_divergence)); results are never affected.
    pub fn install_schedule(&self, s: &schedule::Schedule) -> Result<()> {
        self.pool.install(s)
    }

    /// A phase boundary of a planned run (see `schedule::Schedule::later`): the plan's trace
    /// records it, a replay switches to the next phase's buffers. Pipelines call it where one
    /// stage's tensors are gone and the next stage's differ (Wan: after the prompt, after the
    /// denoising loop).
    pub fn next_schedule_phase(&self) -> Result<()> {
        self.pool.next_phase()
    }

    pub fn clear_schedule(&self) {
        self.pool.uninstall()
    }

    pub fn schedule_divergence(&self) -> Option<String> {
        self.pool.divergence()
    }

    /// Bytes written from the host into device buffers so far (0 on a planning device).
    pub fn uploaded_bytes(&self) -> u64 {
        self.uploaded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes of weights streamed so far (on a planning device: what a run would stream).
    pub fn streamed_bytes(&self) -> u64 {
        self.streamed.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn note_streamed(&self, bytes: u64) {
        self.streamed.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Host → device copy speed (bytes/s) as `Tensor` uploads see it: 64 MiB written with
    /// `write_buffer` and waited for, best of three, measured once per device (a planning device
    /// has a real device underneath and measures too). On lavapipe it is a memcpy. None if the
    /// device refuses the probe buffer.
    pub fn upload_bandwidth(&self) -> Option<f64> {
        *self.bandwidth.get_or_init(|| {
            let size = 64u64 << 20;
            let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("t2v upload probe"),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let data = vec![0x3cu8; size as usize];
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t0 = std::time::Instant::now();
                self.queue.write_buffer(&buf, 0, &data);
                self.queue.submit([]);
                if self.device.poll(wgpu::PollType::wait_indefinitely()).is_err() {
                    return None;
                }
                best = best.min(t0.elapsed().as_secs_f64());
            }
            drop(buf);
            self.check_error().ok()?;
            (best > 0.0).then(|| size as f64 / best)
        })
    }

    pub(crate) fn alloc(&self, bytes: u64, what: &str) -> Result<Arc<PooledBuffer>> {
        self.pool.alloc(bytes, what)
    }

    /// A compiled kernel: `source` preprocessed with `defines`, pipeline for `entry`, cached.
    pub fn kernel(&self, name: &str, source: &str, entry: &str, defines: &[(&str, String)]) -> Result<Arc<Kernel>> {
        let mut all: Vec<(&str, String)> = defines.to_vec();
        if self.caps.shader_f16 {
            all.push(("SHADER_F16", "1".into()));
        }
        if self.planning {
            // Nothing is dispatched while planning: one trivial kernel stands in for all, so a
            // plan never waits for shader compilation. The variant is remembered as text.
            let key = pipelines::key(name, entry, &all);
            let mut planned = self.planned_kernels.lock().unwrap_or_else(|p| p.into_inner());
            if !planned.contains_key(&key) {
                planned.insert(key, pipelines::source(name, source, &all)?);
            }
            return self.pipelines.get(&self.device, "plan", PLAN_STAND_IN, "main", &[]);
        }
        self.pipelines.get(&self.device, name, source, entry, &all)
    }

    /// The arithmetic (multiply and add counted apart) of the next [`dispatch`](Self::dispatch),
    /// for `bench --profile`'s roofline figures; ops with GEMM-like work declare it, the rest
    /// count as memory traffic only.
    pub fn flops_hint(&self, flops: f64) {
        self.flops_next.store(flops.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Queues one dispatch; nothing runs until a flush.
    pub fn dispatch(&self, kernel: &Arc<Kernel>, params: &[u32], bindings: Vec<(u32, Binding)>, groups: [u32; 3]) {
        let flops = f64::from_bits(self.flops_next.swap(0, std::sync::atomic::Ordering::Relaxed));
        if self.planning {
            return;
        }
        let profiling = self.profile.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        // Bytes the dispatch can touch: each bound range once (a lower bound on its traffic).
        let bytes: u64 = if profiling { bindings.iter().map(|(_, b)| b.size).sum() } else { 0 };
        let mut rec = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        rec.push(kernel.clone(), params, bindings, groups);
        drop(rec);
        if profiling {
            // Earlier dispatches were flushed by the previous call: this pass holds only this one.
            let secs = self.flush_timed().ok().flatten().unwrap_or(0.0);
            if let Some(m) = self.profile.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                let e = m.entry(kernel.key.clone()).or_insert_with(|| KernelProfile { kernel: kernel.key.clone(), ..Default::default() });
                e.dispatches += 1;
                e.seconds += secs;
                e.flops += flops;
                e.bytes += bytes as f64;
            }
        }
    }

    /// Starts profiling: from now on every dispatch is submitted alone between timestamps
    /// (slow; for finding where time goes, not for timing a whole run).
    pub fn start_profile(&self) -> Result<()> {
        self.flush()?;
        *self.profile.lock().unwrap_or_else(|p| p.into_inner()) = Some(Default::default());
        Ok(())
    }

    /// Stops profiling: every kernel variant's totals, most time first.
    pub fn take_profile(&self) -> Vec<KernelProfile> {
        let m = self.profile.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
        let mut v: Vec<KernelProfile> = m.into_values().collect();
        v.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        v
    }

    /// Submits every queued dispatch in one compute pass and one submit.
    pub fn flush(&self) -> Result<()> {
        let mut rec = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        rec.submit(&self.device, &self.queue)?;
        drop(rec);
        self.check_error()
    }

    /// Like [`flush`](Self::flush) but also measures the pass with timestamp queries and waits
    /// for it; returns GPU seconds, or `None` when the adapter has no timestamp queries.
    pub fn flush_timed(&self) -> Result<Option<f64>> {
        let mut rec = self.recorder.lock().unwrap_or_else(|p| p.into_inner());
        let t = rec.submit_timed(&self.device, &self.queue, self.caps.timestamp_query)?;
        drop(rec);
        self.check_error()?;
        Ok(t)
    }

    /// Blocks until the device has finished all submitted work.
    pub fn sync(&self) -> Result<()> {
        self.flush()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
        self.check_error()
    }

    pub(crate) fn check_error(&self) -> Result<()> {
        let mut slot = self.device_error.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some(msg) if msg.to_lowercase().contains("out of memory") => Err(Error::OutOfMemory {
                what: "a device buffer".into(),
                need: crate::error::Bytes(0),
                reason: msg,
            }),
            Some(msg) => Err(Error::Gpu(msg)),
            None => Ok(()),
        }
    }

    /// Copies `size` bytes at `offset` of `buffer` back to the host (flushes first).
    pub(crate) fn read_bytes(&self, buffer: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        if self.planning {
            return Ok(vec![0; size as usize]);
        }
        self.flush()?;
        let padded = size.div_ceil(4) * 4;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("t2v readback"),
            size: padded.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(buffer, offset, &staging, 0, padded);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for a readback: {e}")))?;
        self.check_error()?;
        rx.recv()
            .map_err(|_| Error::Gpu("readback callback never ran".into()))?
            .map_err(|e| Error::Gpu(format!("mapping the readback buffer: {e}")))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("reading the readback buffer: {e}")))?;
        let out = view[..size as usize].to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Writes bytes into a device buffer. Flushes first: a pooled buffer may still be read by a
    /// queued dispatch of its previous owner, and queue writes land before the next submit.
    pub(crate) fn write_bytes(&self, buffer: &wgpu::Buffer, offset: u64, data: &[u8]) -> Result<()> {
        if self.planning {
            return Ok(());
        }
        self.flush()?;
        self.uploaded.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if data.len().is_multiple_of(4) {
            self.queue.write_buffer(buffer, offset, data);
        } else {
            let mut padded = data.to_vec();
            padded.resize(data.len().div_ceil(4) * 4, 0);
            self.queue.write_buffer(buffer, offset, &padded);
        }
        self.check_error()
    }
}

const PLAN_STAND_IN: &str = "@compute @workgroup_size(1) fn main() {}";

/// Splits `n` workgroups into a 2-D grid that respects the 65,535-per-dimension limit.
/// Kernels rebuild the linear index as `wid.x + wid.y * nwg.x` and skip indices ≥ `n`.
pub fn grid(n: u32, max_dim: u32) -> [u32; 3] {
    let n = n.max(1);
    if n <= max_dim {
        return [n, 1, 1];
    }
    let y = n.div_ceil(max_dim);
    [n.div_ceil(y), y, 1]
}

/// One kernel variant's share of a profiled run.
#[derive(Debug, Clone, Default)]
pub struct KernelProfile {
    pub kernel: String,
    pub dispatches: u32,
    /// GPU seconds (each dispatch timed alone).
    pub seconds: f64,
    /// Declared arithmetic (0 for kernels that declare none: memory-bound ones).
    pub flops: f64,
    /// Bytes of the bound ranges, each once: compulsory traffic, a lower bound.
    pub bytes: f64,
}
