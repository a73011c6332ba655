//! One partition number's join: its state, what it has read, and its recovery phase.

use std::time::{Duration, Instant};

use crate::join::{
    Input, JoinConfig, JoinState, Origin, Outputs, ResumePoint, Source, SourceOffsets, Watermarks,
};
use crate::store::{PartitionProgress, SourceProgress};
use crate::topics::source_index;

/// One source of a partition's join: the impressions or plays of one origin.
pub(crate) type SourceId = (Origin, Source);

/// The join of partition p of every source topic (local and mirrored impressions and
/// plays). Per-source tables are indexed by [`source_index`].
#[derive(Debug)]
pub(crate) struct PartitionJob {
    pub(crate) partition: i32,
    state: JoinState,
    /// Next offset to read, per source.
    next: Vec<i64>,
    /// Offsets committed before this job started; until every source reaches them the
    /// job is replaying, and newer inputs wait in `held` (the join's resume contract).
    replay_until: Option<Vec<i64>>,
    held: Vec<Input>,
    /// Inputs read but not yet applied.
    batch: Vec<Input>,
    /// Whether anything was applied since the last write.
    pub(crate) dirty: bool,
    /// Largest event time read, per source, for pacing the sources.
    max_time_ms: Vec<Option<i64>>,
    /// Whether reading the source is paused, per source.
    paused: Vec<bool>,
    /// The source's high watermark and when it was asked for, per source.
    high_watermark: Vec<Option<(i64, Instant)>>,
}

fn index((origin, kind): SourceId) -> usize {
    source_index(origin, kind)
}

/// The source at position `index` of the per-source tables.
pub(crate) fn source_at(index: usize) -> SourceId {
    let origin = Origin(u16::try_from(index / 2).expect("origins fit in u16"));
    (origin, if index.is_multiple_of(2) { Source::Impressions } else { Source::Plays })
}

impl PartitionJob {
    /// A job over `origins` origins starting from stored progress (replaying from the
    /// oldest needed offsets), or from the beginning of a source where none is stored.
    pub(crate) fn start(
        partition: i32,
        config: JoinConfig,
        origins: usize,
        stored: Option<PartitionProgress>,
    ) -> crate::Result<Self> {
        let sources = 2 * origins;
        // A source with nothing stored beside others that have (a region just added to
        // `kafka.mirrored_regions`) gets its rows at the first write: until then
        // `complete_until`, read from the rows, could not know it waits for it.
        let incomplete = stored.as_ref().is_some_and(|p| (0..sources).any(|i| p.source(i).is_none()));
        let stored: Vec<SourceProgress> = (0..sources)
            .map(|i| {
                stored.as_ref().and_then(|p| p.source(i)).unwrap_or(SourceProgress {
                    committed: 0,
                    oldest_needed: 0,
                    watermark_ms: None,
                })
            })
            .collect();
        let committed: Vec<i64> = stored.iter().map(|s| s.committed).collect();
        let next: Vec<i64> = stored.iter().map(|s| s.oldest_needed.min(s.committed)).collect();
        let replaying = next.iter().zip(&committed).any(|(n, c)| n < c);
        let points: Vec<ResumePoint> = stored
            .chunks(2)
            .map(|pair| {
                let (impressions, plays) = (pair[0], pair[1]);
                ResumePoint {
                    committed: if replaying {
                        SourceOffsets {
                            impressions: Some(impressions.committed),
                            plays: Some(plays.committed),
                        }
                    } else {
                        SourceOffsets::default()
                    },
                    watermarks: Watermarks {
                        impressions: impressions.watermark_ms,
                        plays: plays.watermark_ms,
                    },
                }
            })
            .collect();
        let state = JoinState::resume_origins(config, &points)?;
        Ok(Self {
            partition,
            state,
            next,
            replay_until: replaying.then_some(committed),
            held: Vec::new(),
            batch: Vec::new(),
            dirty: incomplete,
            max_time_ms: vec![None; sources],
            paused: vec![false; sources],
            high_watermark: vec![None; sources],
        })
    }

    /// Every source of the job.
    pub(crate) fn sources(&self) -> impl Iterator<Item = SourceId> + use<> {
        (0..self.next.len()).map(source_at)
    }

    /// Where reading must start, per source.
    pub(crate) fn start_offset(&self, source: SourceId) -> i64 {
        self.next[index(source)]
    }

    /// Whether `offset` of `source` is read again to rebuild state (its effects, and any
    /// dead letter it made, were written before the restart).
    pub(crate) fn is_replayed(&self, source: SourceId, offset: i64) -> bool {
        self.replay_until.as_ref().is_some_and(|until| offset < until[index(source)])
    }

    /// Whether the job is still rebuilding its state.
    pub(crate) fn is_replaying(&self) -> bool {
        self.replay_until.is_some()
    }

    /// Takes a decoded input (or just the offset of an undecodable record, which is
    /// skipped but still counts as read).
    pub(crate) fn push(&mut self, source: SourceId, offset: i64, input: Option<Input>) {
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
            match &self.replay_until {
                Some(until) if offset >= until[i] => self.held.push(input),
                _ => self.batch.push(input),
            }
        }
        if let Some(until) = &self.replay_until
            && self.next.iter().zip(until).all(|(next, until)| next >= until)
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
        let sources = self
            .sources()
            .map(|(origin, kind)| {
                let committed = self.next[index((origin, kind))];
                let needed = self.state.oldest_needed_offsets(origin).get(kind);
                Some(SourceProgress {
                    committed,
                    oldest_needed: needed.unwrap_or(committed).min(committed),
                    watermark_ms: self.state.watermarks(origin).get(kind),
                })
            })
            .collect();
        Some(PartitionProgress { partition: self.partition, sources })
    }

    /// The next offset to read of a source: what is committed once written.
    pub(crate) fn next_offset(&self, source: SourceId) -> i64 {
        self.next[index(source)]
    }

    /// The join state, for progress reports.
    pub(crate) fn state(&self) -> &JoinState {
        &self.state
    }

    /// The sources `source` has been read more than `slack_ms` ahead of in event time,
    /// or that have shown no event while it has. The caller pauses it unless each of
    /// them has nothing more to read (a mirror that is down holds nothing back).
    pub(crate) fn ahead_of(&self, source: SourceId, slack_ms: i64) -> Vec<SourceId> {
        self.sources().filter(|&other| self.runs_ahead(source, other, slack_ms)).collect()
    }

    /// Whether [`Self::ahead_of`] is not empty (checked after every record, so cheap).
    pub(crate) fn is_ahead(&self, source: SourceId, slack_ms: i64) -> bool {
        self.sources().any(|other| self.runs_ahead(source, other, slack_ms))
    }

    fn runs_ahead(&self, source: SourceId, other: SourceId, slack_ms: i64) -> bool {
        let (mine, theirs) = (self.max_time_ms[index(source)], self.max_time_ms[index(other)]);
        other != source
            && mine.is_some_and(|mine| theirs.is_none_or(|theirs| mine > theirs.saturating_add(slack_ms)))
    }

    /// Whether reading `source` is paused.
    pub(crate) fn is_paused(&self, source: SourceId) -> bool {
        self.paused[index(source)]
    }

    /// Notes that reading `source` was paused or resumed.
    pub(crate) fn set_paused(&mut self, source: SourceId, paused: bool) {
        self.paused[index(source)] = paused;
    }

    /// The high watermark of `source` noted less than `max_age` ago.
    pub(crate) fn recent_high_watermark(&self, source: SourceId, max_age: Duration) -> Option<i64> {
        self.high_watermark[index(source)].filter(|(_, at)| at.elapsed() < max_age).map(|(high, _)| high)
    }

    /// Notes the high watermark of `source`.
    pub(crate) fn note_high_watermark(&mut self, source: SourceId, high: i64) {
        self.high_watermark[index(source)] = Some((high, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::{Event, Impression, Play};

    const HOUR: i64 = 3_600_000;

    const IMPRESSIONS: SourceId = (Origin::LOCAL, Source::Impressions);
    const PLAYS: SourceId = (Origin::LOCAL, Source::Plays);

    fn job() -> PartitionJob {
        PartitionJob::start(0, JoinConfig::default(), 1, None).expect("job")
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
        Input::local(0, Event::Impression(impression))
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
        Input::local(0, Event::Play(play))
    }

    #[test]
    fn a_source_is_ahead_beyond_the_slack_or_when_the_other_showed_nothing() {
        let mut job = job();
        assert!(job.ahead_of(IMPRESSIONS, HOUR).is_empty() && job.ahead_of(PLAYS, HOUR).is_empty());
        job.push(PLAYS, 0, Some(play(5 * HOUR)));
        assert_eq!(job.ahead_of(PLAYS, HOUR), [IMPRESSIONS], "no impression read yet");
        assert!(job.ahead_of(IMPRESSIONS, HOUR).is_empty());
        job.push(IMPRESSIONS, 0, Some(impression(3 * HOUR)));
        assert_eq!(job.ahead_of(PLAYS, HOUR), [IMPRESSIONS], "2 h ahead");
        job.push(IMPRESSIONS, 1, Some(impression(4 * HOUR + 1)));
        assert!(job.ahead_of(PLAYS, HOUR).is_empty(), "within the slack");
        assert!(job.ahead_of(IMPRESSIONS, HOUR).is_empty());
        // Out-of-order input does not move a source back.
        job.push(IMPRESSIONS, 2, Some(impression(0)));
        assert!(job.ahead_of(PLAYS, HOUR).is_empty());
    }

    #[test]
    fn with_a_mirror_every_source_is_replayed_and_stored() {
        let mut job = PartitionJob::start(0, JoinConfig::default(), 2, None).expect("job");
        let mirrored_plays = (Origin(1), Source::Plays);
        job.push(PLAYS, 0, Some(play(HOUR)));
        job.push(mirrored_plays, 0, Some(Input { origin: Origin(1), ..play(3 * HOUR) }));
        assert_eq!(
            job.ahead_of(mirrored_plays, HOUR).len(),
            3,
            "both impressions sources empty, local plays 2 h behind"
        );
        let mut out = Outputs::default();
        job.apply(&mut out);
        let progress = job.progress().expect("not replaying");
        assert_eq!(progress.sources.len(), 4);
        let stored = progress.source(3).expect("mirrored plays stored");
        assert_eq!((stored.committed, stored.watermark_ms), (1, Some(3 * HOUR)));

        // Restarted from that progress, it replays every source before taking new input.
        let restarted = PartitionJob::start(0, JoinConfig::default(), 2, Some(progress)).expect("job");
        assert!(restarted.is_replaying());
        assert_eq!(restarted.start_offset(mirrored_plays), 0);
        assert_eq!(restarted.state().watermarks(Origin(1)).plays, Some(3 * HOUR));
    }
}
