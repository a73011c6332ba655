//! The pure join core (DESIGN §3): plays to impressions in event time, with no I/O.
//!
//! [`JoinState::apply`] is the `scan(f)` step: (state, batch) -> (state', outputs). The
//! streaming worker keeps one state per partition (the impressions and plays topics are
//! co-partitioned) and feeds batches as they arrive; `nearline backfill` feeds a bounded
//! input and calls [`JoinState::finish`], which advances both watermarks past everything.
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
//! # Boundaries, and why the facts depend on neither arrival order nor interleaving
//! Each source (topic partition) has its own watermark: `wmI`, the largest impression
//! time seen, and `wmP`, the largest play time seen. With `L` the allowed lateness, `W`
//! the attribution window and `s` the skew:
//! - too late: an impression with `t < wmI - L`, a play with `t < wmP - L`, each judged
//!   when it arrives against *its own topic's* watermark (`t == wm - L` still counts);
//! - attribution: inclusive at both ends, `I.t - s <= P.t <= I.t + W`;
//! - a play is dropped once `wmI > P.t + s + L` (no impression still to come can claim
//!   it), an impression once `wmP > I.t + W + s + L` *and* `wmI > I.t + W + s + L`
//!   (strict; actually up to one `expiry_granularity` later, as state is dropped in
//!   buckets). The second condition is for recovery, below; keeping state longer never
//!   adds a fact.
//!
//! Which inputs are too late depends only on each topic's own order: `wmI` when an
//! impression arrives is the maximum over the impressions before it in its topic, and
//! likewise for plays. How the consumer interleaves the two topics (a backlog drained
//! one topic first, a replay, a rebalance) never enters. Call `S` the accepted inputs.
//!
//! The facts are then exactly DESIGN §3's over `S`, whatever the interleaving. If `P`
//! and `I` in `S` match, whichever arrives second finds the first still retained:
//! - `P` second: when it arrives `wmP <= P.t + L <= I.t + W + L`, so `I`'s condition on
//!   `wmP` has not held (it is dropped only when both hold);
//! - `I` second: when it arrives `wmI <= I.t + L <= P.t + s + L`, so `P` is retained.
//!
//! A play is reported unattributed only when `wmI > P.t + s + L`, when it is dropped or,
//! if the impressions are read that far ahead already, when it arrives: every
//! impression that could still match has `I.t <= P.t + s < wmI - L` and is too late,
//! and every accepted one before it was matched against it. Hence for any arrival order
//! within each topic and any interleaving of the two, the facts equal the DESIGN §3
//! definitions over `S`, and over all inputs when none is too late, which is the
//! contract between streaming and `nearline backfill`. Pacing (the worker reads neither
//! topic far ahead of the other) only bounds memory; correctness never relies on it.
//!
//! Outcomes are not facts: by DESIGN they are decided by the progress of the plays
//! watermark (`played = false` once `wmP > I.t + reward_window + reward_grace`, and a
//! later play does not change it). Each play records how far `wmP` was past its time
//! when it arrived, so an impression read late still sees exactly the plays that arrived
//! before `wmP` passed its deadline: `played` depends on each topic's order only, not on
//! the interleaving nor the batching (timers fire per input). One outcome per
//! (request_id, video_id) while the key is retained, owned by the first explored
//! impression of the key in the impressions topic; `play_time_ms` is the earliest
//! rewarding play known when it is decided.
//!
//! # Recovery by replay (DESIGN §4)
//! At each commit the worker saves the committed offsets, both watermarks and
//! [`JoinState::oldest_needed_offsets`]. After a restart it builds [`JoinState::resume`]
//! with the committed offsets and watermarks, replays both sources from the saved needed
//! offsets up to the committed ones, in whatever interleaving the log delivers, then
//! continues. Replayed inputs rebuild state but emit nothing (everything they could emit
//! was committed) and are not judged late again; later inputs are judged against the
//! saved watermarks, so a restart never accepts what the uninterrupted run would have
//! found too late. An impression waits for both watermarks (and one `skew` longer than
//! DESIGN's minimum) so that every impression a retained play was attributed to is
//! itself retained, hence replayed: the play is retained only while `wmI <= P.t + s + L
//! <= I.t + W + s + L`. Without it, a replayed play could lose its impression and later
//! be reported unattributed. During the replay the rebuilt watermarks are at most the
//! saved ones, so nothing the crashed state held is dropped before its partners are
//! replayed; the rebuilt state has the same retained entries and attribution marks as
//! the one that crashed, so the union of facts equals an uninterrupted run. (Outcomes
//! may be decided again after a restart; consumers keep the first per key.)
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
pub use event::{
    CandidateArtworks, Event, Explore, ExploreContext, Impression, Input, Play, Source, SourceOffsets,
    Watermarks,
};
pub use output::{
    Cell, CellDims, CellMember, Late, LateReason, Outcome, Outputs, PlayDims, UnattributedKey,
    UnattributedMember,
};
pub use request_id::RequestId;
pub use state::{JoinState, JoinStats};
