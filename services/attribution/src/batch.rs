//! Batch mode: the same join over a bounded input (DESIGN §3, `scan(f)` in batch).
//!
//! `nearline backfill` writes what the batch finds into the same idempotent sets as the
//! stream, which adds the events that were too late for the stream and changes nothing
//! else; `nearline reconcile` compares the batch's counts with the stored ones per cell.
//! The input is sorted by event time before it is fed, so nothing in it is too late.

mod files;
mod read;

use std::collections::{BTreeMap, BTreeSet};

use crate::join::{CellMember, Input, JoinConfig, JoinState, Outputs, UnattributedMember};
use crate::store::{CellKey, Counts, Facts, UnattributedKey};
use crate::{Error, Result};

pub use files::from_directory;
pub use read::from_log;

/// The event-time range whose cells a batch settles: `[from_ms, to_ms)`, epoch-aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Start, inclusive, ms since the Unix epoch.
    pub from_ms: i64,
    /// End, exclusive.
    pub to_ms: i64,
}

impl Range {
    /// A range, checked to be non-empty and aligned to epochs.
    pub fn new(from_ms: i64, to_ms: i64, config: &JoinConfig) -> Result<Self> {
        let epoch = config.epoch_len_ms;
        if from_ms >= to_ms {
            return Err(Error::InvalidRange(format!(
                "--from ({from_ms} ms) must be before --to ({to_ms} ms)"
            )));
        }
        for (name, value) in [("--from", from_ms), ("--to", to_ms)] {
            if value.rem_euclid(epoch) != 0 {
                return Err(Error::InvalidRange(format!(
                    "{name} must be aligned to the {} minute epoch",
                    epoch / 60_000
                )));
            }
        }
        Ok(Self { from_ms, to_ms })
    }

    /// Event times whose inputs can affect a cell in the range: a play up to one
    /// attribution window after its impression, or one skew before it.
    pub fn input_bounds(&self, config: &JoinConfig) -> (i64, i64) {
        let margin = config.attribution_window_ms + config.skew_ms;
        (self.from_ms - margin, self.to_ms + margin)
    }

    /// Whether an input's event time is inside [`Self::input_bounds`].
    pub fn wants(&self, config: &JoinConfig, event_time_ms: i64) -> bool {
        let (low, high) = self.input_bounds(config);
        (low..=high).contains(&event_time_ms)
    }

    fn contains_epoch(&self, config: &JoinConfig, epoch: i64) -> bool {
        let start = epoch * config.epoch_len_ms;
        self.from_ms <= start && start < self.to_ms
    }
}

/// The facts of a batch over one range.
#[derive(Debug, Default)]
pub struct BatchFacts {
    /// Impression memberships of cells in the range.
    pub impressions: Vec<CellMember>,
    /// Attributed play memberships of cells in the range.
    pub plays: Vec<CellMember>,
    /// Unattributed memberships of play epochs in the range.
    pub unattributed: Vec<UnattributedMember>,
}

impl BatchFacts {
    /// Borrowed, for the store.
    pub fn as_facts(&self) -> Facts<'_> {
        Facts {
            impressions: &self.impressions,
            plays: &self.plays,
            unattributed: &self.unattributed,
            retract_unattributed: true,
        }
    }
}

/// Runs the join over `inputs` (any order, duplicates welcome) and keeps the facts of
/// cells inside `range`.
pub fn run(config: JoinConfig, range: Range, mut inputs: Vec<Input>) -> Result<BatchFacts> {
    inputs.sort_by_key(|input| (input.event.event_time_ms(), input.offset));
    let mut state = JoinState::new(config)?;
    let mut outputs = Outputs::default();
    // Feed in chunks so the outputs of expiries interleave as they would in a stream.
    for chunk in inputs.chunks(8192) {
        state.apply_into(chunk, &mut outputs);
    }
    state.finish_into(&mut outputs);
    Ok(BatchFacts {
        impressions: outputs
            .impressions
            .into_iter()
            .filter(|m| range.contains_epoch(&config, m.cell.epoch))
            .collect(),
        plays: outputs.plays.into_iter().filter(|m| range.contains_epoch(&config, m.cell.epoch)).collect(),
        unattributed: outputs
            .unattributed
            .into_iter()
            .filter(|m| range.contains_epoch(&config, m.key.epoch))
            .collect(),
    })
}

impl BatchFacts {
    /// Set sizes per cell, as the store would count them.
    pub fn counts(&self, config: &JoinConfig) -> Counts {
        let cell_key = |m: &CellMember| -> CellKey {
            (
                m.cell.video_id,
                m.cell.epoch * config.epoch_len_ms,
                m.cell.dims.country.to_string(),
                m.cell.dims.device.to_string(),
                m.cell.dims.canvas.to_string(),
                m.cell.dims.region.to_string(),
            )
        };
        let mut impressions: BTreeMap<CellKey, BTreeSet<String>> = BTreeMap::new();
        for m in &self.impressions {
            impressions.entry(cell_key(m)).or_default().insert(m.request_id.to_string());
        }
        let mut plays: BTreeMap<CellKey, BTreeSet<String>> = BTreeMap::new();
        for m in &self.plays {
            plays.entry(cell_key(m)).or_default().insert(m.request_id.to_string());
        }
        let mut unattributed: BTreeMap<UnattributedKey, BTreeSet<String>> = BTreeMap::new();
        for m in &self.unattributed {
            let key = (
                m.key.video_id,
                m.key.epoch * config.epoch_len_ms,
                m.key.dims.country.to_string(),
                m.key.dims.device.to_string(),
                m.key.dims.region.to_string(),
            );
            unattributed.entry(key).or_default().insert(m.request_id.to_string());
        }
        let mut counts = Counts::default();
        for (cell, set) in impressions {
            counts.cells.entry(cell).or_default().0 = set.len() as i64;
        }
        for (cell, set) in plays {
            counts.cells.entry(cell).or_default().1 = set.len() as i64;
        }
        counts.unattributed = unattributed.into_iter().map(|(k, s)| (k, s.len() as i64)).collect();
        counts
    }
}
