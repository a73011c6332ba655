//! The join's output: idempotent set memberships, outcomes and too-late inputs.
//!
//! Facts are memberships, not increments: the storage layer inserts them into sets
//! (`ON CONFLICT DO NOTHING`) and counts are set sizes, so a fact delivered twice, or
//! re-derived after a replay, changes nothing.
//!
//! Dimension tuples are interned process-wide and referenced as `&'static`, so facts
//! are `Copy`-cheap to emit (no reference counting on the hot path; see `intern`).

use std::fmt;

use super::event::{Explore, Input};
use super::request_id::RequestId;

/// The dimensions of a cell besides title and epoch, taken from the impression.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellDims {
    /// ISO 3166 alpha-2 country code.
    pub country: Box<str>,
    /// Device type.
    pub device: Box<str>,
    /// Canvas the impression was on.
    pub canvas: Box<str>,
    /// Region the impression was logged in.
    pub region: Box<str>,
}

/// A cell: (video_id, impression epoch, country, device, canvas, region) (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    /// Title.
    pub video_id: i64,
    /// Epoch of the impression.
    pub epoch: i64,
    /// Country, device, canvas and region (interned for the life of the process).
    pub dims: &'static CellDims,
}

/// The dimensions of an unattributed play besides title and epoch, taken from the play.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlayDims {
    /// ISO 3166 alpha-2 country code.
    pub country: Box<str>,
    /// Device type.
    pub device: Box<str>,
    /// Region the play was logged in.
    pub region: Box<str>,
}

/// Where unattributed plays are counted: (video_id, play epoch, country, device, region).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnattributedKey {
    /// Title.
    pub video_id: i64,
    /// Epoch of the play.
    pub epoch: i64,
    /// Country, device and region of the play (interned for the life of the process).
    pub dims: &'static PlayDims,
}

/// `request_id` is a member of a cell's set (impressions or attributed plays).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellMember {
    /// The cell.
    pub cell: Cell,
    /// The member of its set.
    pub request_id: RequestId,
}

/// `request_id` had a play that expired attributed to no impression.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnattributedMember {
    /// Where it is counted.
    pub key: UnattributedKey,
    /// The member of its set.
    pub request_id: RequestId,
}

/// A bandit reward: did the explored impression lead to a play in time?
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Request of the impression.
    pub request_id: RequestId,
    /// Member who saw it.
    pub member_id: String,
    /// The impression's cell (title, epoch, country, device, canvas, region).
    pub cell: Cell,
    /// Artwork shown.
    pub artwork_id: String,
    /// The impression's exploration metadata.
    pub explore: Explore,
    /// Whether a play joined within the reward window.
    pub played: bool,
    /// Event time of the impression.
    pub impression_time_ms: i64,
    /// Event time of the rewarding play, when `played`.
    pub play_time_ms: Option<i64>,
}

/// Why an input was not counted by the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LateReason {
    /// Its event time is before `watermark - allowed_lateness`.
    BeyondAllowedLateness,
    /// It arrived after [`super::JoinState::finish`].
    AfterFinish,
}

impl LateReason {
    /// A stable, machine-readable name (for `nearline.late.v1`).
    pub fn as_str(self) -> &'static str {
        match self {
            LateReason::BeyondAllowedLateness => "beyond_allowed_lateness",
            LateReason::AfterFinish => "after_finish",
        }
    }
}

impl fmt::Display for LateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An input the stream did not count; batch backfill counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Late {
    /// The input, as given.
    pub input: Input,
    /// Why it was not counted.
    pub reason: LateReason,
    /// The watermark when it arrived.
    pub watermark_ms: i64,
}

/// Everything one call to the join produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    /// Impression set memberships per cell.
    pub impressions: Vec<CellMember>,
    /// Attributed play set memberships per (impression) cell.
    pub plays: Vec<CellMember>,
    /// Unattributed play set memberships.
    pub unattributed: Vec<UnattributedMember>,
    /// Bandit outcomes (at most one per (request_id, video_id) per state).
    pub outcomes: Vec<Outcome>,
    /// Too-late inputs.
    pub late: Vec<Late>,
}

impl Outputs {
    /// True when nothing was produced.
    pub fn is_empty(&self) -> bool {
        self.impressions.is_empty()
            && self.plays.is_empty()
            && self.unattributed.is_empty()
            && self.outcomes.is_empty()
            && self.late.is_empty()
    }

    /// Empties every list, keeping their allocations.
    pub fn clear(&mut self) {
        self.impressions.clear();
        self.plays.clear();
        self.unattributed.clear();
        self.outcomes.clear();
        self.late.clear();
    }

    /// Moves everything from `other` to the end of `self`.
    pub fn append(&mut self, other: &mut Outputs) {
        self.impressions.append(&mut other.impressions);
        self.plays.append(&mut other.plays);
        self.unattributed.append(&mut other.unattributed);
        self.outcomes.append(&mut other.outcomes);
        self.late.append(&mut other.late);
    }
}
