//! Outcome timers: explored impressions waiting for a rewarding play or for the
//! watermark to pass `t + reward_window + reward_grace`.
//!
//! Timers fire exactly (per input, not per batch) so an outcome does not depend on how
//! the input was cut into batches. Only explored impressions get one, so this side table
//! stays small and keeps the metadata an [`super::Outcome`] needs out of the records.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::mem::size_of;

use super::event::Explore;
use super::request_id::RequestId;

/// What an undecided outcome carries until it is emitted.
#[derive(Debug)]
pub(crate) struct PendingOutcome {
    pub(crate) record: u32,
    pub(crate) request_id: RequestId,
    pub(crate) member_id: String,
    pub(crate) artwork_id: String,
    pub(crate) explore: Explore,
}

/// Slots of pending outcomes plus a min-heap of their deadlines.
///
/// A slot is freed only when its heap entry pops, so a heap entry never refers to a
/// reused slot; an outcome decided early (`played = true`) just empties its slot.
#[derive(Debug, Default)]
pub(crate) struct OutcomeTimers {
    slots: Vec<Option<Box<PendingOutcome>>>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
}

impl OutcomeTimers {
    /// Starts a timer firing once the watermark passes `deadline`; returns its slot.
    pub(crate) fn start(&mut self, deadline: i64, pending: PendingOutcome) -> u32 {
        let pending = Some(Box::new(pending));
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = pending;
                slot
            }
            None => {
                self.slots.push(pending);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 pending outcomes")
            }
        };
        self.heap.push(Reverse((deadline, slot)));
        slot
    }

    /// Takes the outcome out of its slot (it was decided before its deadline).
    pub(crate) fn take(&mut self, slot: u32) -> Option<Box<PendingOutcome>> {
        self.slots[slot as usize].take()
    }

    /// Pops the next timer whose deadline is below `watermark` (any, for `None`),
    /// returning its outcome if it is still undecided.
    pub(crate) fn pop_due(&mut self, watermark: Option<i64>) -> Option<Option<Box<PendingOutcome>>> {
        let &Reverse((deadline, slot)) = self.heap.peek()?;
        if watermark.is_some_and(|wm| deadline >= wm) {
            return None;
        }
        self.heap.pop();
        let pending = self.slots[slot as usize].take();
        self.free.push(slot);
        Some(pending)
    }

    /// Earliest deadline of a running timer.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse((deadline, _))| *deadline)
    }

    pub(crate) fn approx_bytes(&self) -> usize {
        let live: usize = self
            .slots
            .iter()
            .flatten()
            .map(|p| size_of::<PendingOutcome>() + 64 + p.explore.heap_bytes())
            .sum();
        self.slots.capacity() * size_of::<Option<Box<PendingOutcome>>>()
            + live
            + self.free.capacity() * size_of::<u32>()
            + self.heap.capacity() * size_of::<Reverse<(i64, u32)>>()
    }
}
