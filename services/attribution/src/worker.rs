//! The streaming join (`nearline serve attribution`).
//!
//! Ownership of partition number p follows the consumer group's assignment of
//! impressions partition p; the plays partition p is then read through a group-less
//! reader, because cooperative-sticky assignment does not keep equal partition numbers
//! of two topics together. Every batch interval the worker applies what it read,
//! publishes outcomes and too-late events, writes facts and progress in one database
//! transaction, and only then commits the impressions offsets to Kafka (DESIGN §4).
//! A restart rebuilds state by replaying from the oldest offsets the state still needed.
//!
//! Each topic is judged against its own watermark (DESIGN §3), so the counts never
//! depend on how the two topics happen to be interleaved. Pacing still matters for
//! memory: when catching up on a backlog the broker hands out one topic's partition
//! hours ahead of the other's, and state waiting on the lagging topic's watermark would
//! pile up. The worker therefore paces each partition: the topic that runs more than a
//! quarter of the allowed lateness ahead is paused until the other catches up or has
//! nothing more to read. Correctness never relies on it.

mod partition;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nearline_eventlog::{Consumer, ConsumerEvent, EventLog, Reader, Record, TopicPartition};
use nearline_runtime::Readiness;
use tokio_util::sync::CancellationToken;

use crate::catalog::CatalogCache;
use crate::join::{JoinConfig, Outputs, Source};
use crate::metrics as m;
use crate::status::{PartitionStatus, StatusBoard};
use crate::store::{Facts, Store};
use crate::topics::Topics;
use crate::wire;
use crate::{Error, Result};
use partition::{PartitionJob, other};

/// Settings of the streaming worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The join's durations.
    pub join: JoinConfig,
    /// Consumer group.
    pub group: String,
    /// Topics.
    pub topics: Topics,
    /// How often effects are written and offsets committed.
    pub batch_interval: Duration,
    /// Inputs read before a write is forced, bounding memory between writes.
    pub max_batch_inputs: usize,
}

/// Runs the streaming join until `shutdown`, then writes and commits what it has.
/// Outcomes are enriched from `catalog`. `readiness` says whether the worker is doing
/// its job: ready once it owns its partitions with their state rebuilt (or owned none
/// for [`STANDBY_READY_AFTER`]), not ready while it cannot write its effects.
pub async fn run(
    log: Arc<dyn EventLog>,
    store: Store,
    catalog: CatalogCache,
    config: WorkerConfig,
    status: StatusBoard,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<()> {
    let consumer = log.subscribe(&config.group, &[config.topics.impressions.as_str()]).await?;
    let reader = log.reader().await?;
    let mut worker = Worker {
        log,
        store,
        catalog,
        config,
        consumer,
        reader,
        jobs: BTreeMap::new(),
        status,
        outputs: Outputs::default(),
        dead_letters: Vec::new(),
        health: Health::new(readiness),
        shutdown: shutdown.clone(),
    };
    let result = worker.run(&shutdown).await;
    // Leave the group even after an error, so the partitions move on at once.
    let Worker { consumer, .. } = worker;
    if let Err(error) = consumer.close().await {
        tracing::warn!(%error, "leaving the consumer group failed");
    }
    result
}

struct Worker {
    log: Arc<dyn EventLog>,
    store: Store,
    catalog: CatalogCache,
    config: WorkerConfig,
    consumer: Box<dyn Consumer>,
    reader: Box<dyn Reader>,
    jobs: BTreeMap<i32, PartitionJob>,
    status: StatusBoard,
    outputs: Outputs,
    /// Records the join could not use, for the late topic with the next write.
    dead_letters: Vec<nearline_eventlog::OutgoingRecord>,
    health: Health,
    shutdown: CancellationToken,
}

/// A member of a group with more members than partitions never gets an assignment;
/// it counts as ready (a standby) once it has waited this long for one.
pub const STANDBY_READY_AFTER: Duration = Duration::from_secs(30);

/// What readiness is made of, updated as the worker goes.
struct Health {
    readiness: Readiness,
    started: Instant,
    assigned_once: bool,
    writes_failing: bool,
}

impl Health {
    fn new(readiness: Readiness) -> Self {
        readiness.set_not_ready();
        Self { readiness, started: Instant::now(), assigned_once: false, writes_failing: false }
    }

    fn update(&self, jobs: &BTreeMap<i32, PartitionJob>) {
        let joined = self.assigned_once || self.started.elapsed() >= STANDBY_READY_AFTER;
        let ready = joined && !self.writes_failing && jobs.values().all(|job| !job.is_replaying());
        if ready != self.readiness.is_ready() {
            if ready {
                self.readiness.set_ready();
            } else {
                self.readiness.set_not_ready();
            }
            tracing::info!(ready, "attribution readiness changed");
        }
    }
}

/// How far in event time one topic of a partition may be read ahead of the other
/// (a bound on memory, not on correctness).
fn pacing_slack_ms(config: &WorkerConfig) -> i64 {
    config.join.allowed_lateness_ms / 4
}

/// How long one poll waits when there is nothing to do.
const IDLE_POLL: Duration = Duration::from_millis(5);
/// Records taken from one source before looking at the other, so neither starves.
const POLL_BURST: usize = 1024;

impl Worker {
    async fn run(&mut self, shutdown: &CancellationToken) -> Result<()> {
        let mut last_write = Instant::now();
        while !shutdown.is_cancelled() {
            let mut read = 0;
            while read < POLL_BURST {
                match self.consumer.poll(Duration::ZERO).await? {
                    Some(event) => {
                        read += 1;
                        self.on_group_event(event).await?;
                    }
                    None => break,
                }
            }
            let mut plays = 0;
            while plays < POLL_BURST {
                match self.reader.poll(Duration::ZERO).await? {
                    Some(record) => {
                        plays += 1;
                        let partition = record.partition;
                        self.on_record(record, Source::Plays);
                        self.pause_if_ahead(partition, Source::Plays).await?;
                    }
                    None => break,
                }
            }
            self.pace().await?;
            let pending: usize = self.jobs.values().map(PartitionJob::pending).sum();
            if pending >= self.config.max_batch_inputs || last_write.elapsed() >= self.config.batch_interval {
                self.write().await?;
                last_write = Instant::now();
            }
            self.health.update(&self.jobs);
            if read + plays == 0 {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    polled = self.consumer.poll(IDLE_POLL) => {
                        if let Some(event) = polled? {
                            self.on_group_event(event).await?;
                        }
                    }
                }
            }
        }
        tracing::info!("stopping: writing and committing what was read");
        self.write().await
    }

    async fn on_group_event(&mut self, event: ConsumerEvent) -> Result<()> {
        match event {
            ConsumerEvent::Record(record) => {
                let partition = record.partition;
                self.on_record(record, Source::Impressions);
                self.pause_if_ahead(partition, Source::Impressions).await?;
            }
            ConsumerEvent::Assigned(partitions) => {
                self.health.assigned_once = true;
                let impressions = self.config.topics.impressions.clone();
                for tp in partitions.into_iter().filter(|tp| tp.topic == impressions) {
                    self.take(tp.partition).await?;
                }
            }
            ConsumerEvent::Revoked(partitions) => {
                // Write first: the effects are correct whoever owns the partition next,
                // and the next owner replays from what is stored.
                self.write().await?;
                let impressions = self.config.topics.impressions.clone();
                for tp in partitions.into_iter().filter(|tp| tp.topic == impressions) {
                    self.release(tp.partition).await?;
                }
            }
        }
        Ok(())
    }

    async fn take(&mut self, partition: i32) -> Result<()> {
        let stored = self.store.load(partition).await.map_err(Error::Database)?;
        let job = PartitionJob::start(partition, self.config.join, stored)?;
        let impressions = TopicPartition::new(self.config.topics.impressions.clone(), partition);
        let plays = TopicPartition::new(self.config.topics.plays.clone(), partition);
        if stored.is_some() {
            self.consumer.seek(&impressions, job.start_offset(Source::Impressions)).await?;
        }
        self.reader.assign(&plays, job.start_offset(Source::Plays)).await?;
        tracing::info!(
            partition,
            impressions_from = job.start_offset(Source::Impressions),
            plays_from = job.start_offset(Source::Plays),
            replaying = job.is_replaying(),
            "partition assigned"
        );
        self.jobs.insert(partition, job);
        Ok(())
    }

    /// Pauses, per partition, the topic read too far ahead of the other in event time,
    /// and resumes it once the other caught up or has nothing more to read.
    async fn pace(&mut self) -> Result<()> {
        let slack = pacing_slack_ms(&self.config);
        let partitions: Vec<i32> = self.jobs.keys().copied().collect();
        for partition in partitions {
            for source in [Source::Impressions, Source::Plays] {
                let ahead = self.jobs[&partition].ahead(source, slack);
                let pause = ahead && !self.caught_up(partition, other(source)).await;
                if pause != self.jobs[&partition].is_paused(source) {
                    self.set_paused(partition, source, pause).await?;
                }
            }
        }
        Ok(())
    }

    /// Checked after every record, so a topic stops within one record of running ahead
    /// (a read round can span hours of a sparse partition).
    async fn pause_if_ahead(&mut self, partition: i32, source: Source) -> Result<()> {
        let Some(job) = self.jobs.get(&partition) else { return Ok(()) };
        if job.is_paused(source) || !job.ahead(source, pacing_slack_ms(&self.config)) {
            return Ok(());
        }
        if !self.caught_up(partition, other(source)).await {
            self.set_paused(partition, source, true).await?;
        }
        Ok(())
    }

    /// Whether `source` of `partition` has been read up to its high watermark (asked
    /// of the log at most once per batch interval). When the log cannot say, it counts
    /// as caught up until the next ask: pacing is an optimisation, never a reason to
    /// stop reading or to wait on an unreachable broker for every record.
    async fn caught_up(&mut self, partition: i32, source: Source) -> bool {
        let max_age = self.config.batch_interval;
        let next = self.jobs[&partition].next_offset(source);
        let high = match self.jobs[&partition].recent_high_watermark(source, max_age) {
            Some(high) => high,
            None => {
                let tp = self.topic_partition(source, partition);
                let high = match self.log.watermarks(&tp).await {
                    Ok((_, high)) => high,
                    Err(error) => {
                        tracing::warn!(%error, partition, "cannot read a high watermark for pacing");
                        next
                    }
                };
                if let Some(job) = self.jobs.get_mut(&partition) {
                    job.note_high_watermark(source, high);
                }
                high
            }
        };
        next >= high
    }

    async fn set_paused(&mut self, partition: i32, source: Source, pause: bool) -> Result<()> {
        let tp = self.topic_partition(source, partition);
        match (source, pause) {
            (Source::Impressions, true) => self.consumer.pause(std::slice::from_ref(&tp)).await?,
            (Source::Impressions, false) => self.consumer.resume(std::slice::from_ref(&tp)).await?,
            // The plays reader is group-less: pausing is not reading the partition, and
            // resuming reads on from the first offset not yet taken.
            (Source::Plays, true) => self.reader.unassign(&tp).await?,
            (Source::Plays, false) => {
                let next = self.jobs[&partition].next_offset(Source::Plays);
                self.reader.assign(&tp, next).await?;
            }
        }
        let job = self.jobs.get_mut(&partition).expect("paced partitions are owned");
        job.set_paused(source, pause);
        if pause {
            m::paused(source);
        }
        tracing::debug!(partition, ?source, pause, "pacing the topics of a partition");
        Ok(())
    }

    fn topic_partition(&self, source: Source, partition: i32) -> TopicPartition {
        let topic = match source {
            Source::Impressions => &self.config.topics.impressions,
            Source::Plays => &self.config.topics.plays,
        };
        TopicPartition::new(topic.clone(), partition)
    }

    async fn release(&mut self, partition: i32) -> Result<()> {
        self.jobs.remove(&partition);
        self.status.remove(partition);
        let plays = TopicPartition::new(self.config.topics.plays.clone(), partition);
        self.reader.unassign(&plays).await?;
        m::forget_partition(partition);
        tracing::info!(partition, "partition revoked");
        Ok(())
    }

    fn on_record(&mut self, record: Record, source: Source) {
        let Some(job) = self.jobs.get_mut(&record.partition) else {
            // A record fetched just before its partition was revoked.
            return;
        };
        m::event_read(source);
        let input = match wire::input(&record, source) {
            Ok(input) => Some(input),
            Err(error) => {
                // One bad record must not stop counting: it goes to the late topic with
                // why and its bytes, and its offset is passed like any other.
                m::undecodable(source);
                if !job.is_replayed(source, record.offset) {
                    tracing::warn!(%error, "undecodable record sent to the late topic");
                    self.dead_letters.push(wire::dead_letter_record(
                        &self.config.topics.late,
                        &record,
                        &error,
                    ));
                }
                None
            }
        };
        job.push(source, record.offset, input);
    }

    /// Applies, publishes outputs, writes facts and progress, commits offsets.
    async fn write(&mut self) -> Result<()> {
        let started = Instant::now();
        for job in self.jobs.values_mut() {
            job.apply(&mut self.outputs);
        }
        let progress: Vec<_> =
            self.jobs.values().filter(|j| j.dirty).filter_map(PartitionJob::progress).collect();
        if self.outputs.is_empty() && progress.is_empty() && self.dead_letters.is_empty() {
            return Ok(());
        }

        // Outcomes and late events go out before the transaction that moves the offsets
        // past their inputs, so a crash can duplicate them but never lose them.
        let mut records: Vec<_> = self
            .outputs
            .outcomes
            .iter()
            .map(|o| wire::outcome_record(&self.config.topics.outcomes, o, self.catalog.get(o.cell.video_id)))
            .collect();
        records.extend(self.outputs.late.iter().map(|l| wire::late_record(&self.config.topics.late, l)));
        records.append(&mut self.dead_letters);
        let (log, store) = (&self.log, &self.store);
        if !records.is_empty() {
            let publish = || async { log.publish(records.clone()).await.map(drop).map_err(Error::from) };
            retrying("publishing outcomes and late events", &mut self.health, &self.shutdown, publish)
                .await?;
        }

        let facts = Facts {
            impressions: &self.outputs.impressions,
            plays: &self.outputs.plays,
            unattributed: &self.outputs.unattributed,
            retract_unattributed: false,
        };
        let write = || async { store.write(facts, &progress).await.map_err(Error::Database) };
        retrying("writing counts and progress", &mut self.health, &self.shutdown, write).await?;
        m::outputs_written(&self.outputs);

        let commits: Vec<_> = progress
            .iter()
            .filter_map(|p| {
                let tp = TopicPartition::new(self.config.topics.impressions.clone(), p.partition);
                p.impressions.map(|s| (tp, s.committed))
            })
            .collect();
        if !commits.is_empty()
            && let Err(error) = self.consumer.commit(&commits).await
        {
            // The database holds the progress that recovery uses; a failed Kafka commit
            // (say, for a partition revoked meanwhile) only costs a longer replay.
            tracing::warn!(%error, "committing offsets to Kafka failed");
        }

        for job in self.jobs.values_mut() {
            job.dirty = false;
            let state = job.state();
            let status = PartitionStatus {
                watermarks: state.watermarks(),
                committed_impressions: job.next_offset(Source::Impressions),
                committed_plays: job.next_offset(Source::Plays),
                state_entries: state.state_entries() as u64,
                state_bytes: state.approx_state_bytes() as u64,
            };
            self.status.set(job.partition, status);
            m::partition_status(job.partition, &status);
        }
        self.outputs.clear();
        m::batch_written(started.elapsed(), self.config.batch_interval);
        Ok(())
    }
}

/// Runs `attempt` until it succeeds, retrying with backoff (up to 5 s) while it fails
/// in a way that can pass: a deadlock or busy database, a database or broker that is
/// down or restarting. Meanwhile the worker reads nothing new and says it is not ready;
/// nothing is lost, as offsets move only after the write. Gives up on a permanent error,
/// or when `shutdown` comes first (the next owner replays what was not written).
async fn retrying<F, Fut>(
    what: &str,
    health: &mut Health,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut failures: u32 = 0;
    loop {
        let error = match attempt().await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(failures, "{what} succeeded again");
                    health.writes_failing = false;
                }
                return Ok(());
            }
            Err(error) if is_transient(&error) => error,
            Err(error) => return Err(error),
        };
        failures += 1;
        // A lock conflict passes in milliseconds; anything else (the database or broker
        // unreachable) means the worker is not doing its job until it passes.
        if failures >= 3 || !is_lock_conflict(&error) {
            health.writes_failing = true;
            health.readiness.set_not_ready();
        }
        let backoff =
            Duration::from_millis(50u64.saturating_mul(1 << failures.min(7))).min(Duration::from_secs(5));
        tracing::warn!(%error, failures, retry_in = ?backoff, "{what} failed; retrying");
        tokio::select! {
            () = shutdown.cancelled() => {
                return Err(error);
            }
            () = tokio::time::sleep(backoff) => {}
        }
    }
}

/// Whether an error can pass by itself, so the write is worth retrying.
fn is_transient(error: &Error) -> bool {
    match error {
        Error::Database(error) => is_transient_database(error),
        Error::EventLog(error) => {
            matches!(error, nearline_eventlog::Error::Unavailable(_) | nearline_eventlog::Error::Other(_))
        }
        _ => false,
    }
}

/// Deadlock, serialization failure, lock not available; SQLite busy or locked.
fn is_lock_conflict(error: &Error) -> bool {
    matches!(error, Error::Database(sqlx::Error::Database(db)) if is_lock_conflict_code(db.code().as_deref()))
}

fn is_lock_conflict_code(code: Option<&str>) -> bool {
    matches!(code, Some("40P01" | "40001" | "55P03" | "5" | "6"))
}

fn is_transient_database(error: &sqlx::Error) -> bool {
    match error {
        // A lock conflict, or Postgres going away: admin or crash shutdown, cannot
        // connect now, and the connection exceptions (class 08).
        sqlx::Error::Database(db) => {
            let code = db.code();
            is_lock_conflict_code(code.as_deref())
                || code
                    .is_some_and(|c| matches!(c.as_ref(), "57P01" | "57P02" | "57P03") || c.starts_with("08"))
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}
