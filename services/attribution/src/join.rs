//! The pure join core (DESIGN §3): plays to impressions in event time, with no I/O.
//!
//! [`JoinState::apply`] is the `scan(f)` step: (state, batch) -> (state', outputs). The
//! streaming worker keeps one state per partition (the impressions and plays topics are
//! co-partitioned) and feeds batches as they arrive; `nearline backfill` feeds a bounded
//! input and calls [`JoinState::finish`], which advances every watermark past everything.
//!
//! # Sources and origins
//! A source is one topic partition: the impressions or the plays partition p of one
//! [`Origin`]. A single-region deployment has one origin, the local topics. With
//! `kafka.mirrored_regions`, each mirrored region is an origin too: its impressions and
//! plays topics, copied into the local cluster by MirrorMaker 2 with their partitions
//! kept, are co-partitioned with the local ones, so partition p's state reads `2 × n`
//! sources for `n` origins. A pair may cross origins (an impression logged in one
//! region, its play in another); the join does not care where an event was logged.
//!
//! # What is emitted
//! Facts are set memberships ([`CellMember`], [`UnattributedMember`]); counts are set
//! sizes. For the set `S` of inputs the stream accepted (not too late), over all sources:
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
//! for a live key is not emitted again, whichever sources the repeats came from.
//!
//! # Boundaries, and why the facts depend on neither arrival order nor interleaving
//! Each source has its own watermark, the largest event time seen in it: `wmI(o)` for
//! origin `o`'s impressions, `wmP(o)` for its plays. Expiry waits for the slowest source
//! of a kind: `minI = min over o of wmI(o)`, `minP = min over o of wmP(o)`, undefined
//! (nothing expires on it) while some source of the kind has shown no event. With one
//! origin these are the two topic watermarks. With `L` the allowed lateness, `W` the
//! attribution window and `s` the skew:
//! - too late: an impression of origin `o` with `t < wmI(o) - L`, a play with
//!   `t < wmP(o) - L`, each judged when it arrives against *its own source's* watermark
//!   (`t == wm - L` still counts); a lagging mirror never makes a local event late, nor
//!   the other way round;
//! - attribution: inclusive at both ends, `I.t - s <= P.t <= I.t + W`;
//! - a play is dropped once `minI > P.t + s + L` (no impression still to come from any
//!   source can claim it), an impression once `minP > I.t + W + s + L` *and*
//!   `minI > I.t + W + s + L` (strict; actually up to one `expiry_granularity` later, as
//!   state is dropped in buckets). The second condition is for recovery, below; keeping
//!   state longer never adds a fact.
//!
//! Which inputs are too late depends only on each source's own order: `wmI(o)` when an
//! impression of `o` arrives is the maximum over the impressions before it in its
//! source, and likewise for plays. How the consumer interleaves the sources (a backlog
//! drained one topic first, a replay, a rebalance, a mirror hours behind the local
//! topics) never enters. Call `S` the accepted inputs.
//!
//! The facts are then exactly DESIGN §3's over `S`, whatever the interleaving. If `P`
//! (of origin `b`) and `I` (of origin `a`) in `S` match, whichever arrives second finds
//! the first still retained:
//! - `P` second: when it arrives `minP <= wmP(b) <= P.t + L <= I.t + W + L`, so `I`'s
//!   condition on `minP` has not held (it is dropped only when both hold);
//! - `I` second: when it arrives `minI <= wmI(a) <= I.t + L <= P.t + s + L`, so `P` is
//!   retained.
//!
//! A play is reported unattributed only when `minI > P.t + s + L`, when it is dropped
//! or, if every impressions source is read that far ahead already, when it arrives:
//! every impression that could still match, from any origin `a`, has
//! `I.t <= P.t + s < minI - L <= wmI(a) - L` and is too late, and every accepted one
//! before it was matched against it. Hence for any arrival order within each source and
//! any interleaving of the sources, the facts equal the DESIGN §3 definitions over `S`,
//! and over all inputs when none is too late, which is the contract between streaming
//! and `nearline backfill`. Pacing (the worker reads no source far ahead of the others)
//! only bounds memory; correctness never relies on it. The price of exactness is that
//! a source that shows nothing (a mirror that is down, or never delivered) holds every
//! play waiting for an impression, every impression, and `complete_until`: it could
//! still deliver an event of any time. Local pairs are still counted as they meet.
//!
//! Outcomes are not facts: by DESIGN they are decided by the progress of the plays
//! watermarks (`played = false` once `minP > I.t + reward_window + reward_grace`, and a
//! later play does not change it). Each play records how far its own source's `wmP(b)`
//! was past its time when it arrived, and rewards an outcome only if that was not past
//! the outcome's deadline: once `minP` passes the deadline, every plays source is past
//! it, so no play still to come could reward, and every play that could has arrived. So
//! `played` depends on each source's order only, not on the interleaving nor the
//! batching (timers fire per input). A play that arrives through two sources (logged in
//! two regions) is one fact, and for outcomes it counts as arriving at the smaller of
//! its copies' lags: the retained record keeps the minimum and a later copy may still
//! reward, so which copy comes first does not matter. One outcome per (request_id, video_id) while the
//! key is retained, owned by the first explored impression of the key to arrive (with
//! one impressions source, the first in its order; a key's impressions come from one
//! page, hence one region, in practice); `play_time_ms` is the earliest rewarding play
//! known when it is decided.
//!
//! # Recovery by replay (DESIGN §4)
//! At each commit the worker saves, per source, the committed offset, its watermark and
//! its [`JoinState::oldest_needed_offsets`]. After a restart it builds
//! [`JoinState::resume_origins`] with the committed offsets and watermarks, replays every
//! source from its saved needed offset up to the committed one, in whatever interleaving
//! the log delivers, then continues. Replayed inputs rebuild state but emit nothing
//! (everything they could emit was committed) and are not judged late again; later
//! inputs are judged against the saved watermarks, so a restart never accepts what the
//! uninterrupted run would have found too late. An impression waits for both kinds (and
//! one `skew` longer than DESIGN's minimum) so that every impression a retained play was
//! attributed to is itself retained, hence replayed: the play is retained only while
//! `minI <= P.t + s + L <= I.t + W + s + L`. Without it, a replayed play could lose its
//! impression and later be reported unattributed. During the replay the rebuilt
//! watermarks are at most the saved ones, source by source, so nothing the crashed state
//! held is dropped before its partners are replayed; the rebuilt state has the same
//! retained entries and attribution marks as the one that crashed, so the union of
//! facts equals an uninterrupted run. (Outcomes may be decided again after a restart;
//! consumers keep the first per key.)
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
    CandidateArtworks, Event, Explore, ExploreContext, Impression, Input, Origin, Play, Source,
    SourceOffsets, Watermarks,
};
pub use output::{
    Cell, CellDims, CellMember, Late, LateReason, Outcome, Outputs, PlayDims, UnattributedKey,
    UnattributedMember,
};
pub use request_id::RequestId;
pub use state::{JoinState, JoinStats, ResumePoint};
