//! Pending entries: one fixed-size [`Record`] per retained impression or play, in a
//! chunked slab so growth never doubles memory, linked per join key.

use std::mem::size_of;

/// No record (end of a chain, or no pending outcome).
pub(crate) const NIL: u32 = u32::MAX;

/// The record is a play (otherwise an impression).
pub(crate) const PLAY: u8 = 1;
/// Impression: some play was attributed to it. Play: it is attributed to some impression.
pub(crate) const MATCHED: u8 = 2;
/// Impression: owns its key's outcome, still undecided (`outcome` holds the timer slot).
pub(crate) const OUTCOME_PENDING: u8 = 4;
/// Impression: owned its key's outcome, already emitted.
pub(crate) const OUTCOME_DONE: u8 = 8;
/// `rid[0]` is a [`super::intern::TextArena`] id rather than UUID bits.
pub(crate) const RID_TEXT: u8 = 16;

/// The join key (request_id, video_id) in compact form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    /// UUID bits (high, low), or `[text id, 0]` when `text`.
    pub(crate) rid: [u64; 2],
    pub(crate) video_id: i64,
    pub(crate) text: bool,
}

impl Key {
    pub(crate) fn uuid(bits: u128, video_id: i64) -> Self {
        Key { rid: [(bits >> 64) as u64, bits as u64], video_id, text: false }
    }
}

impl std::hash::Hash for Key {
    // Three words instead of the derived slice-with-length encoding; the hasher is seeded.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.rid[0]);
        state.write_u64(self.rid[1]);
        state.write_u64(self.video_id as u64 ^ (u64::from(self.text) << 63));
    }
}

/// One retained event: 48 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    pub(crate) rid: [u64; 2],
    pub(crate) video_id: i64,
    pub(crate) time_ms: i64,
    /// Next record with the same key, or [`NIL`]; the free list when unused.
    pub(crate) next: u32,
    /// Interned [`super::output::CellDims`] (impression) or [`super::output::PlayDims`] (play).
    pub(crate) dims: u32,
    /// Impression: its outcome timer slot while [`OUTCOME_PENDING`], else [`NIL`].
    /// Play: how far the plays watermark was past the play's time when it arrived, ms
    /// (saturating), which decides whether it can still reward an outcome (see
    /// [`Record::arrival_watermark`]).
    pub(crate) outcome: u32,
    pub(crate) flags: u8,
}

impl Record {
    pub(crate) fn key(&self) -> Key {
        Key { rid: self.rid, video_id: self.video_id, text: self.flags & RID_TEXT != 0 }
    }

    pub(crate) fn has_key(&self, key: &Key) -> bool {
        self.rid == key.rid && self.video_id == key.video_id && (self.flags & RID_TEXT != 0) == key.text
    }

    pub(crate) fn is_play(&self) -> bool {
        self.flags & PLAY != 0
    }

    pub(crate) fn is(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Play: the plays watermark just after it arrived (itself included), saturating.
    pub(crate) fn arrival_watermark(&self) -> i64 {
        self.time_ms.saturating_add(i64::from(self.outcome))
    }

    /// Play: the `outcome` field value recording an arrival at plays watermark `wm`.
    pub(crate) fn arrival_lag(time_ms: i64, wm: i64) -> u32 {
        u32::try_from(wm.saturating_sub(time_ms).max(0)).unwrap_or(u32::MAX)
    }
}

const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;

/// Records in fixed chunks of 4096, with a free list threaded through `next`.
#[derive(Debug)]
pub(crate) struct Slab {
    chunks: Vec<Vec<Record>>,
    free_head: u32,
    live: usize,
}

impl Slab {
    pub(crate) fn new() -> Self {
        Self { chunks: Vec::new(), free_head: NIL, live: 0 }
    }

    pub(crate) fn live(&self) -> usize {
        self.live
    }

    pub(crate) fn get(&self, idx: u32) -> &Record {
        &self.chunks[(idx >> CHUNK_BITS) as usize][idx as usize & (CHUNK - 1)]
    }

    pub(crate) fn get_mut(&mut self, idx: u32) -> &mut Record {
        &mut self.chunks[(idx >> CHUNK_BITS) as usize][idx as usize & (CHUNK - 1)]
    }

    pub(crate) fn alloc(&mut self, record: Record) -> u32 {
        self.live += 1;
        if self.free_head != NIL {
            let idx = self.free_head;
            let slot = self.get_mut(idx);
            let next_free = slot.next;
            *slot = record;
            self.free_head = next_free;
            return idx;
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            assert!(
                self.chunks.len() < (NIL as usize >> CHUNK_BITS),
                "join state holds fewer than 2^32 records"
            );
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let chunk_no = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_no];
        chunk.push(record);
        ((chunk_no << CHUNK_BITS) | (chunk.len() - 1)) as u32
    }

    pub(crate) fn free(&mut self, idx: u32) {
        self.live -= 1;
        let head = self.free_head;
        let slot = self.get_mut(idx);
        slot.next = head;
        slot.flags = 0;
        self.free_head = idx;
    }

    pub(crate) fn approx_bytes(&self) -> usize {
        self.chunks.len() * CHUNK * size_of::<Record>() + self.chunks.capacity() * size_of::<Vec<Record>>()
    }
}

#[cfg(test)]
mod tests {
    use super::Record;

    #[test]
    fn record_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Record>(), 48);
    }
}
