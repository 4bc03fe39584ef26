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

#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// Bytes of each slot buffer.
    pub slots: Vec<u64>,
    /// For the n-th allocation of the run: its bytes (a replay checks them) and its slot.
    pub assign: Vec<(u64, u32)>,
}

/// Slots are whole multiples of 256 B, as binding offsets and sizes want.
pub fn slot_bytes(bytes: u64) -> u64 {
    bytes.max(256).div_ceil(256) * 256
}

impl Schedule {
    pub fn total(&self) -> u64 {
        self.slots.iter().sum()
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
        Schedule { slots: slots.into_iter().map(|(b, _)| b).collect(), assign }
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
