//! Liveness-based buffer assignment. A planning run records every allocation with the moment
//! it was made and the moment it was freed; the schedule then gives each allocation a device
//! buffer ("slot") that no other allocation overlapping it in time uses. A replay of the same
//! run takes its n-th allocation from slot `assign[n]`: activation memory is then the sum of
//! the slots, close to the most bytes ever live at once, and known before the run.

use std::collections::BTreeMap;

/// One traced allocation: bytes, and the event counter at its allocation and at its free
/// (`u64::MAX` when it outlived the trace).
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    pub bytes: u64,
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    /// Bytes of each slot buffer.
    pub slots: Vec<u64>,
    /// For the n-th allocation of the run: its bytes (a replay checks them) and its slot.
    pub assign: Vec<(u64, u32)>,
    /// The run's later phases, installed one after another at each
    /// `Gpu::next_schedule_phase`: a phase's slots exist only while it runs, so phases whose
    /// tensors differ in size (a transformer's weights and activations, then a VAE's caches)
    /// do not each keep the other's slots. Empty for a one-phase run.
    pub later: Vec<Schedule>,
}

/// Slots are whole multiples of 256 B, as binding offsets and sizes want.
pub fn slot_bytes(bytes: u64) -> u64 {
    bytes.max(256).div_ceil(256) * 256
}

impl Schedule {
    /// Bytes of slot buffers: the largest phase's.
    pub fn total(&self) -> u64 {
        self.phases().map(|p| p.slots.iter().sum::<u64>()).max().unwrap_or(0)
    }

    /// Slot buffers over all phases.
    pub fn slot_count(&self) -> usize {
        self.phases().map(|p| p.slots.len()).sum()
    }

    /// This phase and the later ones, in order.
    pub fn phases(&self) -> impl Iterator<Item = &Schedule> {
        std::iter::once(self).chain(self.later.iter())
    }

    /// One schedule per phase of a trace: `bounds` are the indices into `trace` (and the event
    /// counts) where each later phase began. An allocation that outlives its phase keeps its
    /// slot until it is freed (the phase's other slots go at the boundary), so within its phase
    /// it counts as never freed.
    pub fn assign_phases(trace: &[Lifetime], bounds: &[(usize, u64)]) -> Schedule {
        let mut starts: Vec<(usize, u64)> = vec![(0, 0)];
        starts.extend_from_slice(bounds);
        let mut phases: Vec<Schedule> = Vec::new();
        for (k, &(first, _)) in starts.iter().enumerate() {
            let (last, end_event) = starts.get(k + 1).copied().unwrap_or((trace.len(), u64::MAX));
            let lives: Vec<Lifetime> =
                trace[first..last].iter().map(|l| Lifetime { end: if l.end > end_event { u64::MAX } else { l.end }, ..*l }).collect();
            phases.push(Schedule::assign(&lives));
        }
        let mut first = phases.remove(0);
        first.later = phases;
        first
    }

    /// Largest allocations first, each into the smallest slot that is free for its whole
    /// lifetime (every existing slot is at least as large, having been opened for a larger or
    /// equal allocation), else a new slot of its size. Activation sizes repeat level by level in
    /// a UNet, so this lands close to the live maximum.
    pub fn assign(trace: &[Lifetime]) -> Schedule {
        let mut order: Vec<usize> = (0..trace.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(slot_bytes(trace[i].bytes)), trace[i].start));
        // Slots in opening order, so by descending size: scanning from the back is best fit.
        let mut slots: Vec<(u64, BTreeMap<u64, u64>)> = Vec::new();
        let mut assign = vec![(0u64, 0u32); trace.len()];
        for i in order {
            let l = trace[i];
            let free = |busy: &BTreeMap<u64, u64>| match busy.range(..l.end).next_back() {
                Some((_, &end)) => end <= l.start,
                None => true,
            };
            let slot = match slots.iter().rposition(|(_, busy)| free(busy)) {
                Some(s) => s,
                None => {
                    slots.push((slot_bytes(l.bytes), BTreeMap::new()));
                    slots.len() - 1
                }
            };
            slots[slot].1.insert(l.start, l.end);
            assign[i] = (l.bytes, slot as u32);
        }
        Schedule { slots: slots.into_iter().map(|(b, _)| b).collect(), assign, later: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life(bytes: u64, start: u64, end: u64) -> Lifetime {
        Lifetime { bytes, start, end }
    }

    #[test]
    fn overlapping_allocations_never_share_a_slot() {
        // A chain x0 → x1 → x2 where each op's input and output are live together, plus a
        // long-lived skip: two slots for the chain, one for the skip.
        let trace = [life(1000, 0, 3), life(1000, 2, 5), life(1000, 4, 7), life(512, 1, u64::MAX)];
        let s = Schedule::assign(&trace);
        assert_eq!(s.slots.len(), 3);
        for (i, a) in trace.iter().enumerate() {
            for (j, b) in trace.iter().enumerate() {
                if i != j && a.start < b.end && b.start < a.end {
                    assert_ne!(s.assign[i].1, s.assign[j].1, "{i} and {j} overlap");
                }
            }
        }
        assert_eq!(s.assign[0].1, s.assign[2].1);
        assert!(s.slots[s.assign[3].1 as usize] >= 512);
    }

    #[test]
    fn small_allocations_reuse_larger_free_slots() {
        let trace = [life(4096, 0, 2), life(1024, 3, 4), life(2048, 5, 6)];
        let s = Schedule::assign(&trace);
        assert_eq!(s.slots, vec![4096]);
        assert_eq!(s.total(), 4096);
    }
}
