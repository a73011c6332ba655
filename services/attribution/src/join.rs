//! The pure join core (DESIGN §3): plays to impressions in event time, with no I/O.
//!
//! [`JoinState::apply`] is the `scan(f)` step: (state, batch) -> (state', outputs). The
//! streaming worker keeps one state per partition (the impressions and plays topics are
//! co-partitioned) and feeds batches as they arrive; `nearline backfill` feeds a bounded
//! input and calls [`JoinState::finish`], which advances the watermark past everything.
//!
//! # What is emitted
//! Facts are set memberships ([`CellMember`], [`UnattributedMember`]); counts are set
//! sizes. For the set `S` of inputs the stream accepted (not too late):
//! - `impressions`: `(cell(I), I.request_id)` for every impression `I` in `S`;
//! - `plays`: `(cell(I), I.request_id)` for every `I` in `S` some play of `S` is
//!   attributed to: same (request_id, video_id) and `I.t - skew <= P.t <= I.t + window`;
//! - `unattributed`: `((video, epoch(P.t), P.country, P.device), P.request_id)` for every
//!   play of `S` attributed to no impression of `S`.
//!
//! Several impressions with one (request_id, video_id) but different times or cells (the
//! same title on the billboard and in a row of one page) are all kept: each counts in
//! its own cell, and a play counts in the cell of every impression it is attributed to.
//! This is the only rule that is a union over pairs, hence independent of arrival order;
//! "the earliest wins" would need to retract a fact already emitted for a later-timed
//! impression that arrived first. Exact repeats (same key, time and cell for impressions;
//! same key, time, country and device for plays) collapse, and a fact already emitted
//! for a live key is not emitted again.
//!
//! # Boundaries, and why the facts do not depend on arrival order
//! With `wm` the watermark (largest event time seen) when an input arrives:
//! - too late: `t < wm - allowed_lateness` (so `t == wm - lateness` is still counted);
//! - attribution: inclusive at both ends, `I.t - skew <= P.t <= I.t + window`;
//! - a play is dropped once `wm > P.t + skew + lateness`, an impression once
//!   `wm > I.t + window + skew + lateness` (strict; actually up to one
//!   `expiry_granularity` later, as state is dropped in buckets).
//!
//! If `P` and `I` match and the later of the two arrives in bounds, the earlier one is
//! still there: for a late-arriving play, `wm <= P.t + lateness <= I.t + window +
//! lateness`; for a late-arriving impression, `wm <= I.t + lateness <= P.t + skew +
//! lateness`. So every positive fact is found whatever the order. A play is reported
//! unattributed only when dropped, i.e. when `wm > P.t + skew + lateness`; any
//! impression that could still match has `I.t <= P.t + skew < wm - lateness` and would be
//! too late. Keeping state longer never adds a fact (a retained entry past its deadline
//! cannot match an in-bounds newcomer), so neither bucketing nor batch boundaries matter.
//! Hence for any arrival order the facts equal the DESIGN §3 definitions over the
//! accepted inputs, and over all inputs when none is too late, which is the contract
//! between streaming and `nearline backfill`.
//!
//! Outcomes are not facts: by DESIGN they are decided by watermark progress (`played =
//! false` once `wm > I.t + reward_window + reward_grace`, and a later play does not change
//! it), so they depend on the arrival order, though not on batching: timers fire per
//! input. One outcome per (request_id, video_id) while the key is retained, owned by
//! the first explored impression of the key to arrive.
//!
//! # Recovery by replay (DESIGN §4)
//! At each commit the worker saves the committed offsets and
//! [`JoinState::oldest_needed_offsets`]. After a restart it builds
//! [`JoinState::resume`] with the committed offsets, replays both sources from the saved
//! needed offsets up to the committed ones, then continues. Replayed inputs rebuild
//! state but emit nothing (everything they could emit was committed) and are not judged
//! late again (the replay may interleave the two topics differently). Impressions are
//! retained one `skew` longer than DESIGN's minimum so that every impression a retained
//! play was attributed to is itself retained, hence replayed: without it, a replayed
//! play could lose its impression and later be reported unattributed. The rebuilt state
//! then has the same retained entries, attribution marks, watermark and undecided
//! outcomes as the one that crashed, so the union of facts equals an uninterrupted run.
//!
//! # Memory
//! A retained event is one 48-byte record in a chunked slab plus a 4-byte slot in the
//! expiry wheel and, per key, a 4-byte index slot (the index stores slab positions and
//! finds keys through the records). Canonical UUID request ids are stored as their 16
//! bytes; other request ids are interned exactly (reference-counted), costing about
//! 70 bytes more per key; there is no hashing of request ids, so no collision risk.
//! Country, device and canvas are interned to one 4-byte id per tuple in the record, and
//! to a process-wide `&'static` tuple in outputs (never freed: memory grows with the
//! number of distinct tuples the process has seen, a few hundred bytes each).

mod config;
mod event;
mod intern;
mod outcomes;
mod output;
mod records;
mod request_id;
mod state;
mod wheel;

#[cfg(test)]
mod tests;

pub use config::JoinConfig;
pub use event::{Event, Explore, Impression, Input, Play, Source, SourceOffsets};
pub use output::{
    Cell, CellDims, CellMember, Late, LateReason, Outcome, Outputs, PlayDims, UnattributedKey,
    UnattributedMember,
};
pub use request_id::RequestId;
pub use state::{JoinState, JoinStats};
