//! One partition number's join: its state, what it has read, and its recovery phase.

use crate::join::{Input, JoinConfig, JoinState, Outputs, Source, SourceOffsets};
use crate::store::{PartitionProgress, SourceProgress};

/// The join of impressions partition p with plays partition p.
#[derive(Debug)]
pub(crate) struct PartitionJob {
    pub(crate) partition: i32,
    state: JoinState,
    /// Next offset to read, per source.
    next: [i64; 2],
    /// Offsets committed before this job started; until both sources reach them the job
    /// is replaying, and newer inputs wait in `held` (the join's resume contract).
    replay_until: Option<[i64; 2]>,
    held: Vec<Input>,
    /// Inputs read but not yet applied.
    batch: Vec<Input>,
    /// Whether anything was applied since the last write.
    pub(crate) dirty: bool,
}

fn index(source: Source) -> usize {
    match source {
        Source::Impressions => 0,
        Source::Plays => 1,
    }
}

impl PartitionJob {
    /// A job starting from stored progress (replaying from the oldest needed offsets),
    /// or from the beginning of both topics when there is none.
    pub(crate) fn start(
        partition: i32,
        config: JoinConfig,
        stored: Option<PartitionProgress>,
    ) -> crate::Result<Self> {
        let source =
            |s: Option<SourceProgress>| s.unwrap_or(SourceProgress { committed: 0, oldest_needed: 0 });
        let (impressions, plays) = match stored {
            Some(p) => (source(p.impressions), source(p.plays)),
            None => (source(None), source(None)),
        };
        let committed =
            SourceOffsets { impressions: Some(impressions.committed), plays: Some(plays.committed) };
        let next =
            [impressions.oldest_needed.min(impressions.committed), plays.oldest_needed.min(plays.committed)];
        let replaying = next[0] < impressions.committed || next[1] < plays.committed;
        let state = if replaying { JoinState::resume(config, committed)? } else { JoinState::new(config)? };
        Ok(Self {
            partition,
            state,
            next,
            replay_until: replaying.then_some([impressions.committed, plays.committed]),
            held: Vec::new(),
            batch: Vec::new(),
            dirty: false,
        })
    }

    /// Where reading must start, per source.
    pub(crate) fn start_offset(&self, source: Source) -> i64 {
        self.next[index(source)]
    }

    /// Whether the job is still rebuilding its state.
    pub(crate) fn is_replaying(&self) -> bool {
        self.replay_until.is_some()
    }

    /// Takes a decoded input (or just the offset of an undecodable record, which is
    /// skipped but still counts as read).
    pub(crate) fn push(&mut self, source: Source, offset: i64, input: Option<Input>) {
        let i = index(source);
        if offset < self.next[i] {
            // A duplicate delivery from before a seek took effect.
            return;
        }
        self.next[i] = offset + 1;
        if let Some(input) = input {
            match self.replay_until {
                Some(until) if offset >= until[i] => self.held.push(input),
                _ => self.batch.push(input),
            }
        }
        if let Some(until) = self.replay_until
            && self.next[0] >= until[0]
            && self.next[1] >= until[1]
        {
            self.replay_until = None;
            self.batch.append(&mut self.held);
            tracing::info!(partition = self.partition, "replay done; state rebuilt");
        }
    }

    /// Inputs waiting to be applied.
    pub(crate) fn pending(&self) -> usize {
        self.batch.len()
    }

    /// Applies what was read, appending outputs to `out`.
    pub(crate) fn apply(&mut self, out: &mut Outputs) {
        if self.batch.is_empty() {
            return;
        }
        self.state.apply_into(&self.batch, out);
        self.batch.clear();
        self.dirty = true;
    }

    /// Progress to store with the effects applied so far; `None` while replaying (the
    /// stored progress must not move until the state is whole again).
    pub(crate) fn progress(&self) -> Option<PartitionProgress> {
        if self.is_replaying() || !self.batch.is_empty() {
            return None;
        }
        let needed = self.state.oldest_needed_offsets();
        let source = |s: Source| {
            let committed = self.next[index(s)];
            SourceProgress { committed, oldest_needed: needed.get(s).unwrap_or(committed).min(committed) }
        };
        Some(PartitionProgress {
            partition: self.partition,
            impressions: Some(source(Source::Impressions)),
            plays: Some(source(Source::Plays)),
            watermark_ms: self.state.watermark_ms().unwrap_or(0),
        })
    }

    /// The next offset to read of a source: what is committed once written.
    pub(crate) fn next_offset(&self, source: Source) -> i64 {
        self.next[index(source)]
    }

    /// The join state, for progress reports.
    pub(crate) fn state(&self) -> &JoinState {
        &self.state
    }
}
