//! Device buffer pool. Tensors take buffers from size classes and give them back on drop, so a
//! warm denoising loop allocates nothing; when a schedule is installed (see `schedule.rs`) the
//! pool serves each allocation from the slot the plan gave it instead. Reuse is stream-ordered: a buffer returned while a
//! queued dispatch still reads it may be handed to a later op, which is safe because dispatches
//! run in recording order (wgpu inserts the barriers) and uploads flush the queue first.

use super::schedule::{slot_bytes, Lifetime, Schedule};
use crate::error::{Bytes, Error, Result};
use std::collections::{BTreeMap, HashMap};
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
    /// Recording allocation lifetimes (planning).
    trace: Option<Trace>,
    /// Serving allocations from a schedule's slots (see `schedule`).
    replay: Option<Replay>,
    replay_gen: u64,
}

#[derive(Default)]
struct Trace {
    events: u64,
    lives: Vec<Lifetime>,
    index: HashMap<u64, usize>,
    /// Where each later phase began: (index into `lives`, event count).
    bounds: Vec<(usize, u64)>,
}

struct Replay {
    gen: u64,
    /// Slot buffers and whether a live tensor holds each.
    slots: Vec<(wgpu::Buffer, bool)>,
    sizes: Vec<u64>,
    assign: Vec<(u64, u32)>,
    next: usize,
    /// Set at the first allocation the schedule did not foresee; the pool serves the rest.
    diverged: Option<String>,
    /// The phases still to come (see `Schedule::later`).
    later: Vec<Schedule>,
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
    /// (schedule generation, slot, slot bytes) when served from a schedule.
    slot: Option<(u64, u32, u64)>,
    state: Arc<Mutex<State>>,
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.stats.live -= self.class;
        s.stats.live_requested -= self.requested;
        s.live_now.remove(&self.id);
        if let Some(t) = s.trace.as_mut() {
            t.events += 1;
            if let Some(i) = t.index.remove(&self.id) {
                t.lives[i].end = t.events;
            }
        }
        match self.slot {
            Some((gen, slot, size)) => match s.replay.as_mut().filter(|r| r.gen == gen) {
                Some(r) => r.slots[slot as usize].1 = false,
                // Its schedule was uninstalled while this tensor held the slot: the buffer
                // goes with this handle.
                None => s.stats.allocated -= size,
            },
            None => s.free.entry(self.class).or_default().push(self.buffer.clone()),
        }
    }
}

/// A free buffer up to `1 + 1/REUSE_SLACK` times the request may serve it. This serves runs
/// without a schedule (tests, library calls); planned generations take their activations from
/// the schedule instead. Measured on the 576w × 24-frame run before schedules existed: 2× (slack 1)
/// → 10.5 GiB peak, 1.5× → 12.8, 1.25× → 14.0, 1.125× → 14.2.
const REUSE_SLACK: u64 = 1;

/// Buffers are whole multiples of 256 B and no larger: weights, which are never freed, take
/// exactly their size (coarser classes cost 4% of the weights), and reuse of freed buffers
/// does not need classes since a free buffer up to 2× the request may serve it.
fn size_class(bytes: u64) -> u64 {
    slot_bytes(bytes)
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
        if let Some(slot) = Self::from_schedule(&mut s, bytes, what) {
            return Ok(self.hand_out(&mut s, slot.0, slot_bytes(bytes), bytes, Some(slot.1), what));
        }
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
                let b = self.create(class, what)?;
                s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                s.stats.allocated += class;
                s.stats.peak_allocated = s.stats.peak_allocated.max(s.stats.allocated);
                b
            }
        };
        Ok(self.hand_out(&mut s, buffer, class, bytes, None, what))
    }

    /// The next allocation's slot, if a schedule is being replayed and foresaw it.
    fn from_schedule(s: &mut State, bytes: u64, what: &str) -> Option<(wgpu::Buffer, (u64, u32, u64))> {
        let r = s.replay.as_mut().filter(|r| r.diverged.is_none())?;
        match r.assign.get(r.next) {
            Some(&(b, slot)) if b == bytes && !r.slots[slot as usize].1 => {
                r.next += 1;
                r.slots[slot as usize].1 = true;
                Some((r.slots[slot as usize].0.clone(), (r.gen, slot, r.sizes[slot as usize])))
            }
            planned => {
                r.diverged = Some(match planned {
                    None => format!("allocation {} ({what}) came after the planned {}", r.next, r.assign.len()),
                    Some((b, _)) if *b != bytes => format!("allocation {} ({what}) is {} where the plan had {}", r.next, Bytes(bytes), Bytes(*b)),
                    Some(_) => format!("allocation {} ({what}): its planned buffer is still in use", r.next),
                });
                None
            }
        }
    }

    fn hand_out(&self, s: &mut State, buffer: wgpu::Buffer, class: u64, bytes: u64, slot: Option<(u64, u32, u64)>, what: &str) -> Arc<PooledBuffer> {
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
        if let Some(t) = s.trace.as_mut() {
            t.events += 1;
            t.index.insert(id, t.lives.len());
            t.lives.push(Lifetime { bytes, start: t.events, end: u64::MAX });
        }
        Arc::new(PooledBuffer { buffer, id, class, requested: bytes, slot, state: self.state.clone() })
    }

    /// Starts recording allocation lifetimes (replaces any recording in progress).
    pub(super) fn start_trace(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).trace = Some(Trace::default());
    }

    /// Stops recording and assigns the recorded allocations to slots.
    pub(super) fn finish_trace(&self) -> Schedule {
        let t = self.state.lock().unwrap_or_else(|p| p.into_inner()).trace.take().unwrap_or_default();
        Schedule::assign_phases(&t.lives, &t.bounds)
    }

    /// Creates the schedule's slot buffers now (so a run that cannot get them fails before it
    /// starts) and serves the following allocations from them, in order.
    pub(super) fn install(&self, schedule: &Schedule) -> Result<()> {
        if let Some((n, &(bytes, slot))) =
            schedule.assign.iter().enumerate().find(|(_, (b, s))| schedule.slots.get(*s as usize).is_none_or(|&size| size < *b))
        {
            return Err(Error::Other(format!("memory schedule: allocation {n} ({}) has no slot that holds it (slot {slot})", Bytes(bytes))));
        }
        {
            // The same plan again (one loaded pipeline, many videos): keep its buffers.
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(r) =
                s.replay.as_mut().filter(|r| r.assign == schedule.assign && r.slots.len() == schedule.slots.len() && r.later == schedule.later)
            {
                r.next = 0;
                r.diverged = None;
                return Ok(());
            }
        }
        self.uninstall();
        self.create_slots(schedule)
    }

    /// Creates `schedule`'s slot buffers (its first phase) and serves the following
    /// allocations from them.
    fn create_slots(&self, schedule: &Schedule) -> Result<()> {
        let max = self.device.limits().max_buffer_size;
        let mut slots = Vec::with_capacity(schedule.slots.len());
        for &bytes in &schedule.slots {
            let what = format!("activation slot of {}", Bytes(bytes));
            if bytes > max {
                return Err(Error::OutOfMemory { what, need: Bytes(bytes), reason: format!("the adapter's largest buffer is {}", Bytes(max)) });
            }
            let buffer = match &self.stand_in {
                Some(b) => b.clone(),
                None => self.create(bytes, &what)?,
            };
            slots.push((buffer, false));
        }
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.replay_gen += 1;
        let total: u64 = schedule.slots.iter().sum();
        s.stats.allocated += total;
        s.stats.peak_allocated = s.stats.peak_allocated.max(s.stats.allocated);
        s.replay = Some(Replay {
            gen: s.replay_gen,
            slots,
            sizes: schedule.slots.clone(),
            assign: schedule.assign.clone(),
            next: 0,
            diverged: None,
            later: schedule.later.clone(),
        });
        Ok(())
    }

    /// A phase boundary of the run: a trace records it; a replayed schedule gives back its
    /// current phase's idle slots (held ones go with their tensors) and creates the next
    /// phase's. A replay that has diverged, or has no phase left, serves the rest from the pool.
    pub(super) fn next_phase(&self) -> Result<()> {
        let next = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = s.trace.as_mut() {
                t.bounds.push((t.lives.len(), t.events));
            }
            match s.replay.as_mut() {
                Some(r) if r.diverged.is_none() && !r.later.is_empty() => {
                    let mut next = r.later.remove(0);
                    next.later = std::mem::take(&mut r.later);
                    Some(next)
                }
                _ => None,
            }
        };
        match next {
            Some(schedule) => {
                self.uninstall();
                self.create_slots(&schedule)
            }
            None => Ok(()),
        }
    }

    /// Drops the schedule; a slot still held by a tensor is freed (and uncounted) with it.
    pub(super) fn uninstall(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = s.replay.take() {
            let idle: u64 = r.slots.iter().zip(&r.sizes).filter(|((_, busy), _)| !busy).map(|(_, size)| size).sum();
            s.stats.allocated -= idle;
        }
    }

    /// Where the run left the installed schedule, if it did.
    pub(super) fn divergence(&self) -> Option<String> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).replay.as_ref().and_then(|r| r.diverged.clone())
    }

    fn create(&self, bytes: u64, what: &str) -> Result<wgpu::Buffer> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::OutOfMemory { what: what.into(), need: Bytes(bytes), reason: e.to_string() });
        }
        Ok(b)
    }

    /// Planning: the live allocations at the peak, largest first (label, bytes).
    pub(super) fn live_at_peak(&self) -> Vec<(u64, String)> {
        let mut v = self.state.lock().unwrap_or_else(|p| p.into_inner()).at_peak.clone();
        v.sort_by_key(|e| std::cmp::Reverse(e.0));
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
