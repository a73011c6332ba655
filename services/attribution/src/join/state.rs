//! [`JoinState`]: the per-partition state machine that turns inputs into facts.

use std::hint::black_box;
use std::mem::size_of;

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

use super::config::JoinConfig;
use super::event::{Impression, Input, Origin, Play, Source, SourceOffsets, Watermarks};
use super::intern::{Interner, TextArena};
use super::outcomes::{OutcomeTimers, PendingOutcome};
use super::output::{
    Cell, CellDims, CellMember, Late, LateReason, Outcome, Outputs, PlayDims, UnattributedKey,
    UnattributedMember,
};
use super::records::{Key, MATCHED, NIL, OUTCOME_DONE, OUTCOME_PENDING, PLAY, RID_TEXT, Record, Slab};
use super::request_id::{RequestId, parse_uuid};
use super::wheel::Wheel;
use crate::Result;

/// Inputs (or expired records) whose index lookups are issued together; see `apply_into`.
const GROUP: usize = 16;

/// Counters for metrics; monotone over the life of a state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinStats {
    /// Inputs given to [`JoinState::apply`].
    pub inputs: u64,
    /// Inputs below the resume offsets: rebuilt state, emitted nothing.
    pub replayed: u64,
    /// Inputs reported too late.
    pub late: u64,
    /// Inputs that repeated a retained event and changed nothing.
    pub duplicates: u64,
    /// Attributed-play facts emitted.
    pub joined: u64,
    /// Retained events dropped after their deadline.
    pub expired: u64,
    /// Unattributed-play facts emitted.
    pub unattributed: u64,
}

/// Where a resumed state's origin stood at the commit it resumes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResumePoint {
    /// Offsets committed per source: inputs below them are replayed.
    pub committed: SourceOffsets,
    /// Watermarks saved with them: later inputs are judged against at least these.
    pub watermarks: Watermarks,
}

/// Join state of one partition (its co-partitioned sources); see the module docs.
#[derive(Debug)]
pub struct JoinState {
    config: JoinConfig,
    /// Largest event time seen per source, by origin: the own-source watermarks that
    /// lateness is judged on. Expiry and outcome timers follow their minimum per kind.
    watermarks: Vec<Watermarks>,
    /// Per origin, the watermarks saved at the last commit before a restart. A replay
    /// rebuilds `watermarks` from the retained suffix only, which may be lower; lateness
    /// is still judged against what the uninterrupted run had seen.
    judged_from: Vec<Watermarks>,
    finished: bool,
    /// Per origin, the committed offsets below which inputs are a replay.
    resume: Vec<SourceOffsets>,
    slab: Slab,
    /// Join key -> first record of the key's chain; keys live in the records.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    cell_dims: Interner<CellDims>,
    play_dims: Interner<PlayDims>,
    texts: TextArena,
    /// Impressions by deadline, passed when *both* kinds' watermarks (of every origin)
    /// pass it (module docs).
    impression_wheel: Wheel,
    /// Plays by deadline, passed when every impressions watermark passes it.
    play_wheel: Wheel,
    outcomes: OutcomeTimers,
    stats: JoinStats,
}

impl JoinState {
    /// An empty state over the local topics only.
    pub fn new(config: JoinConfig) -> Result<Self> {
        Self::with_origins(config, 1)
    }

    /// An empty state over `origins` copies of the topics (the local ones and the
    /// mirrored regions'), fed inputs with `origin < origins`.
    pub fn with_origins(config: JoinConfig, origins: usize) -> Result<Self> {
        Self::resume_origins(config, &vec![ResumePoint::default(); origins])
    }

    /// An empty state over the local topics that will be fed a replay: inputs whose
    /// offset is below `committed` for their source rebuild state but emit nothing and
    /// are never too late; later inputs are judged against at least `watermarks` (as
    /// saved with `committed`).
    ///
    /// Feed every input from [`Self::oldest_needed_offsets`] (as saved at the commit) up
    /// to `committed`, of both sources in any interleaving, before any input at or after
    /// `committed`.
    pub fn resume(config: JoinConfig, committed: SourceOffsets, watermarks: Watermarks) -> Result<Self> {
        Self::resume_origins(config, &[ResumePoint { committed, watermarks }])
    }

    /// [`Self::resume`] over several origins, one resume point each (origin `i` at
    /// `points[i]`); the replay interleaves every source of every origin in any way.
    pub fn resume_origins(config: JoinConfig, points: &[ResumePoint]) -> Result<Self> {
        config.validate()?;
        let origins = points.len();
        if origins == 0 || origins > usize::from(u16::MAX) {
            return Err(crate::Error::InvalidConfig {
                field: "origins",
                reason: format!("a join reads 1 to {} origins, not {origins}", u16::MAX),
            });
        }
        Ok(Self {
            config,
            watermarks: vec![Watermarks::default(); origins],
            judged_from: points.iter().map(|p| p.watermarks).collect(),
            finished: false,
            resume: points.iter().map(|p| p.committed).collect(),
            slab: Slab::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            cell_dims: Interner::new(),
            play_dims: Interner::new(),
            texts: TextArena::new(),
            impression_wheel: Wheel::new(config.expiry_granularity_ms, origins),
            play_wheel: Wheel::new(config.expiry_granularity_ms, origins),
            outcomes: OutcomeTimers::default(),
            stats: JoinStats::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &JoinConfig {
        &self.config
    }

    /// How many origins the state reads.
    pub fn origins(&self) -> usize {
        self.watermarks.len()
    }

    /// Largest event time seen per source of `origin`, counting the watermarks a resumed
    /// state was given: what the next input of each of its sources is judged against.
    ///
    /// # Panics
    /// If `origin` is not below [`Self::origins`].
    pub fn watermarks(&self, origin: Origin) -> Watermarks {
        self.watermarks[origin.index()].max(self.judged_from[origin.index()])
    }

    /// Per kind, the smallest watermark over every origin (counting those a resumed
    /// state was given): how far every source of the kind has come.
    pub fn min_watermarks(&self) -> Watermarks {
        let all: Vec<Watermarks> =
            self.watermarks.iter().zip(&self.judged_from).map(|(seen, saved)| seen.max(*saved)).collect();
        Watermarks::min_over(&all)
    }

    /// Counters since creation.
    pub fn stats(&self) -> JoinStats {
        self.stats
    }

    /// Retained events (impressions and plays) waiting for a partner or their deadline.
    pub fn state_entries(&self) -> usize {
        self.slab.live()
    }

    /// Approximate heap bytes held, counting allocated capacity.
    pub fn approx_state_bytes(&self) -> usize {
        self.slab.approx_bytes()
            + self.index.allocation_size()
            + self.impression_wheel.approx_bytes()
            + self.play_wheel.approx_bytes()
            + self.cell_dims.approx_bytes()
            + self.play_dims.approx_bytes()
            + self.texts.approx_bytes()
            + self.outcomes.approx_bytes()
            + size_of::<Self>()
    }

    /// Per source of `origin`, the smallest offset of an input whose event is still
    /// retained: where a replay must start to rebuild this state (DESIGN §4). `None`:
    /// nothing retained.
    pub fn oldest_needed_offsets(&self, origin: Origin) -> SourceOffsets {
        SourceOffsets {
            impressions: self.impression_wheel.min_offset(origin),
            plays: self.play_wheel.min_offset(origin),
        }
    }

    /// Feeds a batch in order; returns what it produced.
    pub fn apply(&mut self, batch: &[Input]) -> Outputs {
        let mut out = Outputs::default();
        self.apply_into(batch, &mut out);
        out
    }

    /// Feeds a batch in order, appending what it produced to `out`.
    pub fn apply_into(&mut self, batch: &[Input], out: &mut Outputs) {
        for group in batch.chunks(GROUP) {
            // Look every key of the group up before processing any: the lookups are
            // independent, so their cache misses overlap instead of queueing one by one.
            // Only UUID keys (no side effects); the results are hints, re-checked below.
            let mut keys = [None; GROUP];
            for (slot, input) in keys.iter_mut().zip(group) {
                let (request_id, video_id) = input.event.join_key();
                if let Some(bits) = parse_uuid(request_id) {
                    let key = Key::uuid(bits, video_id);
                    let hash = self.hasher.hash_one(key);
                    black_box(self.head(hash, &key));
                    *slot = Some(key);
                }
            }
            for (input, key) in group.iter().zip(keys) {
                self.process(input, key, out);
            }
        }
    }

    /// Ends the input: advances both watermarks past every deadline, so every retained
    /// play is settled (unattributed if no impression came) and every outcome decided.
    /// Inputs after this are reported late.
    pub fn finish(&mut self) -> Outputs {
        let mut out = Outputs::default();
        self.finish_into(&mut out);
        out
    }

    /// [`Self::finish`], appending to `out`.
    pub fn finish_into(&mut self, out: &mut Outputs) {
        if !self.finished {
            self.advance(true, true, out);
            self.finished = true;
        }
    }

    fn process(&mut self, input: &Input, key: Option<Key>, out: &mut Outputs) {
        self.stats.inputs += 1;
        let (origin, source) = input.source();
        let o = origin.index();
        assert!(o < self.origins(), "an input of origin {o} fed to a join over {} origin(s)", self.origins());
        let t = input.event.event_time_ms();
        let replay = self.resume[o].get(source).is_some_and(|c| input.offset < c);
        if replay {
            self.stats.replayed += 1;
        }
        let emit = !replay;
        if self.finished {
            self.report_late(input, LateReason::AfterFinish, out);
            return;
        }
        // Judged against its own source's watermark only (its kind, its origin). A
        // replayed input was judged when it first arrived and is not judged again.
        if !replay
            && let Some(wm) = self.watermarks(origin).get(source)
            && t < wm.saturating_sub(self.config.allowed_lateness_ms)
        {
            self.report_late(input, LateReason::BeyondAllowedLateness, out);
            return;
        }
        // Advancing first is safe: nothing dropped by reaching `t` can join an event at `t`.
        if self.watermarks[o].raise(source, t) {
            self.advance(false, emit, out);
        }
        let key = match key {
            Some(key) => key,
            None => {
                let (request_id, video_id) = input.event.join_key();
                self.key(request_id, video_id)
            }
        };
        match &input.event {
            super::Event::Impression(imp) => {
                self.impression_with_key(imp, key, origin, input.offset, emit, out)
            }
            super::Event::Play(play) => self.play_with_key(play, key, origin, input.offset, emit, out),
        }
        if key.text {
            self.texts.release_if_unused(key.rid[0] as u32);
        }
    }

    fn report_late(&mut self, input: &Input, reason: LateReason, out: &mut Outputs) {
        self.stats.late += 1;
        out.late.push(Late {
            input: input.clone(),
            reason,
            watermark_ms: self.watermarks(input.origin).get(input.event.source()).unwrap_or(i64::MIN),
        });
    }

    /// Fires the outcome timers the plays watermarks passed and drops the state whose
    /// waiting is over: plays on the impressions watermarks, impressions on both kinds'
    /// (see the module docs). Each kind waits for the smallest watermark over its
    /// origins: a pair can cross origins. With `finish`, everything.
    fn advance(&mut self, finish: bool, emit: bool, out: &mut Outputs) {
        let wm = self.progressed();
        // How far a waiting side may go: `None` for nowhere (its watermark has no value
        // yet), `Some(None)` for past every deadline (finish), else below the watermark.
        let reach = |wm: Option<i64>| if finish { Some(None) } else { wm.map(Some) };
        if let Some(to) = reach(wm.plays) {
            self.fire_outcome_timers(to, emit, out);
        }
        if let Some(to) = reach(wm.min_of_both()) {
            self.impression_wheel.advance(to);
        }
        if let Some(to) = reach(wm.impressions) {
            self.play_wheel.advance(to);
        }
        self.drop_expired(Source::Impressions, emit, out);
        self.drop_expired(Source::Plays, emit, out);
    }

    /// Settles every pending outcome whose deadline is below `to` (all, for `None`).
    fn fire_outcome_timers(&mut self, to: Option<i64>, emit: bool, out: &mut Outputs) {
        if self.outcomes.next_deadline().is_some_and(|d| to.is_none_or(|wm| d < wm)) {
            while let Some(due) = self.outcomes.pop_due(to) {
                if let Some(pending) = due {
                    self.settle_outcome(*pending, None, emit, out);
                }
            }
        }
    }

    /// Per kind, the smallest watermark this run has reached over every origin (`None`
    /// while some origin has shown nothing of the kind).
    fn progressed(&self) -> Watermarks {
        match self.watermarks.as_slice() {
            [only] => *only,
            all => Watermarks::min_over(all),
        }
    }

    fn wheel_mut(&mut self, source: Source) -> &mut Wheel {
        match source {
            Source::Impressions => &mut self.impression_wheel,
            Source::Plays => &mut self.play_wheel,
        }
    }

    /// Drops the records of `source` whose deadline the wheel has passed.
    fn drop_expired(&mut self, source: Source, emit: bool, out: &mut Outputs) {
        while let Some(expired) = self.wheel_mut(source).pop_expired() {
            for group in expired.chunks(GROUP) {
                // As in apply_into: overlap the cache misses of independent records.
                for &idx in group {
                    let key = self.slab.get(idx).key();
                    let hash = self.hasher.hash_one(key);
                    black_box(self.index.find(hash, |&i| i == idx));
                }
                for &idx in group {
                    self.expire(idx, emit, out);
                }
            }
            self.wheel_mut(source).recycle(expired);
        }
    }

    fn expire(&mut self, idx: u32, emit: bool, out: &mut Outputs) {
        let record = *self.slab.get(idx);
        self.stats.expired += 1;
        if record.is(OUTCOME_PENDING) {
            // Unreachable with a validated config (timers fire first); settle rather than lose it.
            if let Some(pending) = self.outcomes.take(record.outcome) {
                self.settle_outcome(*pending, None, emit, out);
            }
        }
        if record.is_play() && !record.is(MATCHED) {
            self.settle_unattributed(&record.key(), record.video_id, record.time_ms, record.dims, emit, out);
        }
        self.unlink(idx, &record);
        if record.is(RID_TEXT) {
            self.texts.release(record.rid[0] as u32);
        }
        self.slab.free(idx);
    }

    fn unlink(&mut self, idx: u32, record: &Record) {
        let key = record.key();
        let hash = self.hasher.hash_one(key);
        let slab = &self.slab;
        let Ok(entry) = self.index.find_entry(hash, |&i| i == idx || slab.get(i).has_key(&key)) else {
            unreachable!("a retained record's key is indexed");
        };
        let head = *entry.get();
        if head == idx {
            if record.next == NIL {
                entry.remove();
            } else {
                let mut entry = entry;
                *entry.get_mut() = record.next;
            }
            return;
        }
        let mut prev = head;
        loop {
            let next = self.slab.get(prev).next;
            if next == idx {
                self.slab.get_mut(prev).next = record.next;
                return;
            }
            assert!(next != NIL, "a retained record is on its key's chain");
            prev = next;
        }
    }

    fn key(&mut self, request_id: &str, video_id: i64) -> Key {
        match parse_uuid(request_id) {
            Some(bits) => Key { rid: [(bits >> 64) as u64, bits as u64], video_id, text: false },
            None => Key { rid: [u64::from(self.texts.intern(request_id)), 0], video_id, text: true },
        }
    }

    fn request_id_of(&self, key: &Key) -> RequestId {
        if key.text {
            RequestId::Text(self.texts.get(key.rid[0] as u32).clone())
        } else {
            RequestId::Uuid((u128::from(key.rid[0]) << 64) | u128::from(key.rid[1]))
        }
    }

    fn cell(&self, record: &Record) -> Cell {
        Cell {
            video_id: record.video_id,
            epoch: self.config.epoch_of(record.time_ms),
            dims: self.cell_dims.get(record.dims),
        }
    }

    /// First record of `key`'s chain, or [`NIL`].
    fn head(&self, hash: u64, key: &Key) -> u32 {
        let slab = &self.slab;
        self.index.find(hash, |&i| slab.get(i).has_key(key)).copied().unwrap_or(NIL)
    }

    /// Files a new record for `key` at the head of its chain; returns its index, or
    /// `None` when its deadline is already past (only possible while replaying).
    fn retain(
        &mut self,
        hash: u64,
        head: u32,
        mut record: Record,
        deadline: i64,
        origin: Origin,
        offset: i64,
    ) -> Option<u32> {
        record.next = head;
        let source = if record.is_play() { Source::Plays } else { Source::Impressions };
        let idx = self.slab.alloc(record);
        if !self.wheel_mut(source).insert(deadline, idx, origin, offset) {
            self.slab.free(idx);
            return None;
        }
        if record.is(RID_TEXT) {
            self.texts.acquire(record.rid[0] as u32);
        }
        if head == NIL {
            let (slab, hasher) = (&self.slab, &self.hasher);
            self.index.insert_unique(hash, idx, |&i| hasher.hash_one(slab.get(i).key()));
        } else {
            let slab = &self.slab;
            let key = record.key();
            if let Some(slot) = self.index.find_mut(hash, |&i| slab.get(i).has_key(&key)) {
                *slot = idx;
            }
        }
        Some(idx)
    }

    fn impression_with_key(
        &mut self,
        imp: &Impression,
        key: Key,
        origin: Origin,
        offset: i64,
        emit: bool,
        out: &mut Outputs,
    ) {
        let cfg = self.config;
        let t = imp.event_time_ms;
        let epoch = cfg.epoch_of(t);
        let dims = self.cell_dims.intern((&imp.country, &imp.device, &imp.canvas, &imp.region));
        let hash = self.hasher.hash_one(key);
        let head = self.head(hash, &key);
        // A play rewards this impression's outcome only if it arrived before its own
        // source's plays watermark passed the outcome's deadline: what a timer started
        // now would have seen, so the outcome does not depend on when this impression is
        // read, nor on how the sources are interleaved.
        let outcome_deadline = t.saturating_add(cfg.reward_window_ms).saturating_add(cfg.reward_grace_ms);

        let mut cell_seen = false;
        let mut cell_joined = false;
        let mut outcome_owned = false;
        let mut matched = false;
        let mut reward_play: Option<i64> = None;
        let mut i = head;
        while i != NIL {
            let r = self.slab.get(i);
            if r.is_play() {
                if cfg.attributes(t, r.time_ms) {
                    matched = true;
                    if cfg.rewards(t, r.time_ms) && r.arrival_watermark() <= outcome_deadline {
                        reward_play = Some(reward_play.map_or(r.time_ms, |p| p.min(r.time_ms)));
                    }
                }
            } else {
                if r.dims == dims && cfg.epoch_of(r.time_ms) == epoch {
                    if r.time_ms == t {
                        self.stats.duplicates += 1;
                        return;
                    }
                    cell_seen = true;
                    cell_joined |= r.is(MATCHED);
                }
                outcome_owned |= r.is(OUTCOME_PENDING | OUTCOME_DONE);
            }
            i = r.next;
        }

        if matched {
            let mut i = head;
            while i != NIL {
                let r = self.slab.get_mut(i);
                if r.is_play() && cfg.attributes(t, r.time_ms) {
                    r.flags |= MATCHED;
                }
                i = r.next;
            }
        }
        let cell = Cell { video_id: imp.video_id, epoch, dims: self.cell_dims.get(dims) };
        if emit {
            if !cell_seen {
                out.impressions.push(CellMember { cell, request_id: self.request_id_of(&key) });
            }
            if matched && !cell_joined {
                out.plays.push(CellMember { cell, request_id: self.request_id_of(&key) });
            }
        }
        if matched && !cell_joined {
            self.stats.joined += 1;
        }

        let record = Record {
            rid: key.rid,
            video_id: imp.video_id,
            time_ms: t,
            next: NIL,
            dims,
            outcome: NIL,
            flags: if key.text { RID_TEXT } else { 0 } | if matched { MATCHED } else { 0 },
        };
        let deadline = t.saturating_add(cfg.impression_retention_ms());
        let Some(idx) = self.retain(hash, head, record, deadline, origin, offset) else {
            return;
        };

        let Some(explore) = imp.explore.as_ref().filter(|_| !outcome_owned) else {
            return;
        };
        // Past the deadline on every plays source: no play still to come can reward it.
        let plays_wm = self.progressed().plays.unwrap_or(i64::MIN);
        if reward_play.is_some() || outcome_deadline < plays_wm {
            self.slab.get_mut(idx).flags |= OUTCOME_DONE;
            if emit {
                out.outcomes.push(Outcome {
                    request_id: self.request_id_of(&key),
                    member_id: imp.member_id.clone(),
                    cell,
                    artwork_id: imp.artwork_id.clone(),
                    explore: explore.clone(),
                    played: reward_play.is_some(),
                    impression_time_ms: t,
                    play_time_ms: reward_play,
                });
            }
            return;
        }
        let slot = self.outcomes.start(
            outcome_deadline,
            PendingOutcome {
                record: idx,
                request_id: self.request_id_of(&key),
                member_id: imp.member_id.clone(),
                artwork_id: imp.artwork_id.clone(),
                explore: explore.clone(),
            },
        );
        let r = self.slab.get_mut(idx);
        r.flags |= OUTCOME_PENDING;
        r.outcome = slot;
    }

    fn play_with_key(
        &mut self,
        play: &Play,
        key: Key,
        origin: Origin,
        offset: i64,
        emit: bool,
        out: &mut Outputs,
    ) {
        let cfg = self.config;
        let t = play.event_time_ms;
        // The play's own source's watermark, itself included (raised before this call).
        let arrived_at = self.watermarks[origin.index()].plays.unwrap_or(t);
        let dims = self.play_dims.intern((&play.country, &play.device, &play.region));
        let hash = self.hasher.hash_one(key);
        let head = self.head(hash, &key);

        let mut i = head;
        while i != NIL {
            let r = self.slab.get(i);
            if r.is_play() && r.time_ms == t && r.dims == dims {
                self.stats.duplicates += 1;
                // The same play through another source (logged in two regions) counts
                // once, but for outcomes it arrived as early as its earliest copy did in
                // that copy's own source: keep the smallest lag, and let this copy reward
                // what it may. Both are the same whichever copy comes first.
                let lag = Record::arrival_lag(t, arrived_at);
                if lag < r.outcome {
                    self.slab.get_mut(i).outcome = lag;
                }
                self.reward_pending_outcomes(head, t, arrived_at, emit, out);
                return;
            }
            i = r.next;
        }

        let mut attributed = false;
        let mut i = head;
        while i != NIL {
            let r = *self.slab.get(i);
            if !r.is_play() && cfg.attributes(r.time_ms, t) {
                attributed = true;
                if !r.is(MATCHED) {
                    if !self.cell_joined(head, &r) {
                        self.stats.joined += 1;
                        if emit {
                            out.plays.push(CellMember {
                                cell: self.cell(&r),
                                request_id: self.request_id_of(&key),
                            });
                        }
                    }
                    self.slab.get_mut(i).flags |= MATCHED;
                }
            }
            i = r.next;
        }
        self.reward_pending_outcomes(head, t, arrived_at, emit, out);

        let record = Record {
            rid: key.rid,
            video_id: play.video_id,
            time_ms: t,
            next: NIL,
            dims,
            outcome: Record::arrival_lag(t, arrived_at),
            flags: PLAY | if key.text { RID_TEXT } else { 0 } | if attributed { MATCHED } else { 0 },
        };
        let deadline = t.saturating_add(cfg.play_retention_ms());
        // The impressions watermark may already be past the play's deadline (the plays
        // topic is read behind the impressions topic): then no impression still to come
        // can claim it, so it settles at once, as if it had been retained and expired.
        if self.retain(hash, head, record, deadline, origin, offset).is_none() && !attributed {
            self.settle_unattributed(&key, play.video_id, t, dims, emit, out);
        }
    }

    /// Settles with a play the pending outcomes of the chain at `head` that a play at
    /// `t`, arriving at its own source's plays watermark `arrived_at`, rewards.
    fn reward_pending_outcomes(&mut self, head: u32, t: i64, arrived_at: i64, emit: bool, out: &mut Outputs) {
        let cfg = self.config;
        let mut i = head;
        while i != NIL {
            let r = *self.slab.get(i);
            // A timer still running only says that *some* plays source is not past the
            // deadline; the play rewards if its own source was not (module docs).
            let outcome_deadline =
                r.time_ms.saturating_add(cfg.reward_window_ms).saturating_add(cfg.reward_grace_ms);
            if !r.is_play()
                && r.is(OUTCOME_PENDING)
                && cfg.rewards(r.time_ms, t)
                && arrived_at <= outcome_deadline
                && let Some(pending) = self.outcomes.take(r.outcome)
            {
                self.settle_outcome(*pending, Some(t), emit, out);
            }
            i = r.next;
        }
    }

    /// Reports the play of `key` at `time_ms` unattributed: no impression can claim it any more.
    fn settle_unattributed(
        &mut self,
        key: &Key,
        video_id: i64,
        time_ms: i64,
        dims: u32,
        emit: bool,
        out: &mut Outputs,
    ) {
        self.stats.unattributed += 1;
        if emit {
            out.unattributed.push(UnattributedMember {
                key: UnattributedKey {
                    video_id,
                    epoch: self.config.epoch_of(time_ms),
                    dims: self.play_dims.get(dims),
                },
                request_id: self.request_id_of(key),
            });
        }
    }

    /// Whether an impression record in the chain with `r`'s cell already joined a play.
    fn cell_joined(&self, head: u32, r: &Record) -> bool {
        let epoch = self.config.epoch_of(r.time_ms);
        let mut i = head;
        while i != NIL {
            let o = self.slab.get(i);
            if !o.is_play() && o.is(MATCHED) && o.dims == r.dims && self.config.epoch_of(o.time_ms) == epoch {
                return true;
            }
            i = o.next;
        }
        false
    }

    /// Emits a pending outcome: played when `play_time` is given, else not.
    fn settle_outcome(
        &mut self,
        pending: PendingOutcome,
        play_time: Option<i64>,
        emit: bool,
        out: &mut Outputs,
    ) {
        let record = self.slab.get_mut(pending.record);
        record.flags = (record.flags & !OUTCOME_PENDING) | OUTCOME_DONE;
        record.outcome = NIL;
        let record = *record;
        if emit {
            let PendingOutcome { request_id, member_id, artwork_id, explore, .. } = pending;
            out.outcomes.push(Outcome {
                request_id,
                member_id,
                cell: self.cell(&record),
                artwork_id,
                explore,
                played: play_time.is_some(),
                impression_time_ms: record.time_ms,
                play_time_ms: play_time,
            });
        }
    }
}
