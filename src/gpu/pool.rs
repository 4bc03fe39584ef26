//! Device buffer pool. Tensors take buffers from size classes and give them back on drop, so a
//! warm denoising loop allocates nothing. Reuse is stream-ordered: a buffer returned while a
//! queued dispatch still reads it may be handed to a later op, which is safe because dispatches
//! run in recording order (wgpu inserts the barriers) and uploads flush the queue first.

use crate::error::{Bytes, Error, Result};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryStats {
    /// Bytes held by live tensors now (in size classes, as allocated).
    pub live: u64,
    /// Bytes live tensors asked for (without size-class rounding).
    pub live_requested: u64,
    /// Most bytes held by live tensors since the last reset.
    pub peak_live: u64,
    /// Bytes of device buffers that exist now (live + pooled for reuse).
    pub allocated: u64,
    /// Most bytes of device buffers that existed at once since the last reset.
    pub peak_allocated: u64,
}

#[derive(Default)]
struct State {
    free: BTreeMap<u64, Vec<wgpu::Buffer>>,
    stats: MemoryStats,
    /// Planning only: what is live now and what was live at the peak (label → bytes).
    live_now: BTreeMap<u64, (u64, String)>,
    at_peak: Vec<(u64, String)>,
    next_id: u64,
}

pub(super) struct BufferPool {
    device: wgpu::Device,
    state: Arc<Mutex<State>>,
    /// Planning: every "allocation" is this one small buffer; only the counters are real.
    stand_in: Option<wgpu::Buffer>,
}

/// A pooled device buffer; dropping the last handle returns it to the pool.
pub struct PooledBuffer {
    pub buffer: wgpu::Buffer,
    id: u64,
    class: u64,
    requested: u64,
    state: Arc<Mutex<State>>,
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.stats.live -= self.class;
        s.stats.live_requested -= self.requested;
        s.live_now.remove(&self.id);
        s.free.entry(self.class).or_default().push(self.buffer.clone());
    }
}

/// A free buffer up to `1 + 1/REUSE_SLACK` times the request may serve it. Measured on the
/// 576w × 24-frame plan: 2× (slack 1) → 10.5 GiB peak, 1.5× → 12.8, 1.25× → 14.0, 1.125× → 14.2.
const REUSE_SLACK: u64 = 1;

/// Size classes: multiples of 256 B up to 64 KiB, then 8 steps per power of two (≤ 12.5% waste).
fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(256);
    if b <= 65536 {
        return b.div_ceil(256) * 256;
    }
    let step = (1u64 << (63 - b.leading_zeros())) / 8;
    b.div_ceil(step) * step
}

impl BufferPool {
    pub(super) fn new(device: wgpu::Device, planning: bool) -> Self {
        let stand_in = planning.then(|| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("t2v planning stand-in"),
                size: 256,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        BufferPool { device, state: Default::default(), stand_in }
    }

    pub(super) fn alloc(&self, bytes: u64, what: &str) -> Result<Arc<PooledBuffer>> {
        let class = size_class(bytes);
        let max = self.device.limits().max_buffer_size;
        if class > max {
            return Err(Error::OutOfMemory {
                what: what.into(),
                need: Bytes(bytes),
                reason: format!("the adapter's largest buffer is {}", Bytes(max)),
            });
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Best fit among slightly larger free buffers: video activations come in many
        // sizes, and exact-class reuse alone lets freed buffers pile up unused.
        let fit = s.free.range(class..=class + class / REUSE_SLACK).find(|(_, v)| !v.is_empty()).map(|(c, _)| *c);
        let (class, reused) = match fit {
            Some(c) => (c, s.free.get_mut(&c).and_then(|v| v.pop())),
            None => (class, None),
        };
        let buffer = match reused {
            Some(b) => b,
            None if self.stand_in.is_some() => {
                s.stats.allocated += class;
                s.stats.peak_allocated = s.stats.peak_allocated.max(s.stats.allocated);
                self.stand_in.clone().unwrap_or_else(|| unreachable!())
            }
            None => {
                drop(s);
                let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
                let b = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(what),
                    size: class,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                if let Some(e) = pollster::block_on(scope.pop()) {
                    return Err(Error::OutOfMemory { what: what.into(), need: Bytes(bytes), reason: e.to_string() });
                }
                s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                s.stats.allocated += class;
                s.stats.peak_allocated = s.stats.peak_allocated.max(s.stats.allocated);
                b
            }
        };
        s.stats.live += class;
        s.stats.live_requested += bytes;
        let id = s.next_id;
        s.next_id += 1;
        if self.stand_in.is_some() {
            s.live_now.insert(id, (class, what.to_string()));
            if s.stats.live > s.stats.peak_live {
                s.at_peak = s.live_now.values().cloned().collect();
            }
        }
        s.stats.peak_live = s.stats.peak_live.max(s.stats.live);
        Ok(Arc::new(PooledBuffer { buffer, id, class, requested: bytes, state: self.state.clone() }))
    }

    /// Planning: the live allocations at the peak, largest first (label, bytes).
    pub(super) fn live_at_peak(&self) -> Vec<(u64, String)> {
        let mut v = self.state.lock().unwrap_or_else(|p| p.into_inner()).at_peak.clone();
        v.sort_by(|a, b| b.0.cmp(&a.0));
        v
    }

    pub(super) fn stats(&self) -> MemoryStats {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).stats
    }

    pub(super) fn reset_peak(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.stats.peak_live = s.stats.live;
        s.at_peak = s.live_now.values().cloned().collect();
        s.stats.peak_allocated = s.stats.allocated;
    }

    pub(super) fn trim(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let freed: u64 = s.free.iter().map(|(c, v)| c * v.len() as u64).sum();
        s.free.clear();
        s.stats.allocated -= freed;
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;
    #[test]
    fn size_classes_cover_the_request() {
        for b in [1u64, 255, 256, 257, 65536, 65537, 1 << 20, (1 << 20) + 1, 177_000_000] {
            let c = size_class(b);
            assert!(c >= b && c <= b + b / 8 + 256, "{b} -> {c}");
            assert_eq!(c % 256, 0);
        }
    }
}
