//! One partition number's join: its state, what it has read, and its recovery phase.

use std::time::{Duration, Instant};

use crate::join::{Input, JoinConfig, JoinState, Outputs, Source, SourceOffsets, Watermarks};
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
    /// Largest event time read, per source, for pacing the two topics.
    max_time_ms: [Option<i64>; 2],
    /// Whether reading the source is paused, per source.
    paused: [bool; 2],
    /// The source's high watermark and when it was asked for, per source.
    high_watermark: [Option<(i64, Instant)>; 2],
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
        let source = |s: Option<SourceProgress>| {
            s.unwrap_or(SourceProgress { committed: 0, oldest_needed: 0, watermark_ms: None })
        };
        let (impressions, plays) = match stored {
            Some(p) => (source(p.impressions), source(p.plays)),
            None => (source(None), source(None)),
        };
        let committed =
            SourceOffsets { impressions: Some(impressions.committed), plays: Some(plays.committed) };
        let next =
            [impressions.oldest_needed.min(impressions.committed), plays.oldest_needed.min(plays.committed)];
        let replaying = next[0] < impressions.committed || next[1] < plays.committed;
        let watermarks = Watermarks { impressions: impressions.watermark_ms, plays: plays.watermark_ms };
        let state = JoinState::resume(
            config,
            if replaying { committed } else { SourceOffsets::default() },
            watermarks,
        )?;
        Ok(Self {
            partition,
            state,
            next,
            replay_until: replaying.then_some([impressions.committed, plays.committed]),
            held: Vec::new(),
            batch: Vec::new(),
            dirty: false,
            max_time_ms: [None; 2],
            paused: [false; 2],
            high_watermark: [None; 2],
        })
    }

    /// Where reading must start, per source.
    pub(crate) fn start_offset(&self, source: Source) -> i64 {
        self.next[index(source)]
    }

    /// Whether `offset` of `source` is read again to rebuild state (its effects, and any
    /// dead letter it made, were written before the restart).
    pub(crate) fn is_replayed(&self, source: Source, offset: i64) -> bool {
        self.replay_until.is_some_and(|until| offset < until[index(source)])
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
        // A skipped record moves the offset too, which must reach the store.
        self.dirty |= input.is_none();
        if let Some(input) = input {
            let time = input.event.event_time_ms();
            self.max_time_ms[i] = Some(self.max_time_ms[i].map_or(time, |max| max.max(time)));
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
        let watermarks = self.state.watermarks();
        let source = |s: Source| {
            let committed = self.next[index(s)];
            SourceProgress {
                committed,
                oldest_needed: needed.get(s).unwrap_or(committed).min(committed),
                watermark_ms: watermarks.get(s),
            }
        };
        Some(PartitionProgress {
            partition: self.partition,
            impressions: Some(source(Source::Impressions)),
            plays: Some(source(Source::Plays)),
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

    /// Whether `source` has been read more than `slack_ms` ahead of the other source in
    /// event time, or shows events while the other has shown none yet. The caller pauses
    /// it unless the other has nothing more to read.
    pub(crate) fn ahead(&self, source: Source, slack_ms: i64) -> bool {
        match (self.max_time_ms[index(source)], self.max_time_ms[index(other(source))]) {
            (Some(mine), Some(theirs)) => mine > theirs.saturating_add(slack_ms),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Whether reading `source` is paused.
    pub(crate) fn is_paused(&self, source: Source) -> bool {
        self.paused[index(source)]
    }

    /// Notes that reading `source` was paused or resumed.
    pub(crate) fn set_paused(&mut self, source: Source, paused: bool) {
        self.paused[index(source)] = paused;
    }

    /// The high watermark of `source` noted less than `max_age` ago.
    pub(crate) fn recent_high_watermark(&self, source: Source, max_age: Duration) -> Option<i64> {
        self.high_watermark[index(source)].filter(|(_, at)| at.elapsed() < max_age).map(|(high, _)| high)
    }

    /// Notes the high watermark of `source`.
    pub(crate) fn note_high_watermark(&mut self, source: Source, high: i64) {
        self.high_watermark[index(source)] = Some((high, Instant::now()));
    }
}

/// The source a partition's join pairs `source` with.
pub(crate) fn other(source: Source) -> Source {
    match source {
        Source::Impressions => Source::Plays,
        Source::Plays => Source::Impressions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::{Event, Impression, Play};

    const HOUR: i64 = 3_600_000;

    fn job() -> PartitionJob {
        PartitionJob::start(0, JoinConfig::default(), None).expect("job")
    }

    fn impression(t: i64) -> Input {
        let impression = Impression {
            request_id: "r".into(),
            member_id: "m".into(),
            video_id: 1,
            artwork_id: String::new(),
            canvas: "row".into(),
            country: "US".into(),
            device: "tv".into(),
            region: "us-east".into(),
            event_time_ms: t,
            explore: None,
        };
        Input { offset: 0, event: Event::Impression(impression) }
    }

    fn play(t: i64) -> Input {
        let play = Play {
            request_id: "r".into(),
            member_id: "m".into(),
            video_id: 1,
            country: "US".into(),
            device: "tv".into(),
            region: "us-east".into(),
            event_time_ms: t,
            watch_seconds: 1,
        };
        Input { offset: 0, event: Event::Play(play) }
    }

    #[test]
    fn a_source_is_ahead_beyond_the_slack_or_when_the_other_showed_nothing() {
        let mut job = job();
        assert!(!job.ahead(Source::Impressions, HOUR) && !job.ahead(Source::Plays, HOUR));
        job.push(Source::Plays, 0, Some(play(5 * HOUR)));
        assert!(job.ahead(Source::Plays, HOUR), "no impression read yet");
        assert!(!job.ahead(Source::Impressions, HOUR));
        job.push(Source::Impressions, 0, Some(impression(3 * HOUR)));
        assert!(job.ahead(Source::Plays, HOUR), "2 h ahead");
        job.push(Source::Impressions, 1, Some(impression(4 * HOUR + 1)));
        assert!(!job.ahead(Source::Plays, HOUR), "within the slack");
        assert!(!job.ahead(Source::Impressions, HOUR));
        // Out-of-order input does not move a source back.
        job.push(Source::Impressions, 2, Some(impression(0)));
        assert!(!job.ahead(Source::Plays, HOUR));
    }
}
