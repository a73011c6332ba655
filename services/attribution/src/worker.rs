//! The streaming join (`nearline serve attribution`).
//!
//! Ownership of partition number p follows the consumer group's assignment of the local
//! impressions partition p; partition p of every other source (the local plays, and the
//! impressions and plays of each mirrored region, `kafka.mirrored_regions`) is then read
//! through a group-less reader, because cooperative-sticky assignment does not keep
//! equal partition numbers of several topics together. Every batch interval the worker applies what it read,
//! publishes outcomes and too-late events, writes facts and progress in one database
//! transaction, and only then commits the impressions offsets to Kafka (DESIGN §4).
//! A restart rebuilds state by replaying from the oldest offsets the state still needed.
//!
//! Each source is judged against its own watermark (DESIGN §3), so the counts never
//! depend on how the sources happen to be interleaved, nor on how far a mirror lags.
//! Pacing still matters for memory: when catching up on a backlog the broker hands out
//! one topic's partition hours ahead of the other's, and state waiting on the lagging
//! source's watermark would pile up. The worker therefore paces each partition: a
//! source that runs more than a quarter of the allowed lateness ahead of another is
//! paused until that one catches up or has nothing more to read (a mirror that is down
//! holds nothing back; its sources hold state instead). Correctness never relies on it.

mod partition;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nearline_eventlog::{Consumer, ConsumerEvent, EventLog, Reader, Record, TopicPartition};
use nearline_runtime::Readiness;
use tokio_util::sync::CancellationToken;

use crate::catalog::CatalogCache;
use crate::join::{JoinConfig, Origin, Outputs, Source};
use crate::metrics as m;
use crate::status::{PartitionStatus, SourceStatus, StatusBoard};
use crate::store::{Facts, Store};
use crate::topics::{SourceTopic, Topics, source_index};
use crate::wire;
use crate::{Error, Result};
use partition::{PartitionJob, SourceId};

/// The local impressions: the group-consumed source that partition ownership follows.
const LOCAL_IMPRESSIONS: SourceId = (Origin::LOCAL, Source::Impressions);

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
    let sources = config.topics.sources();
    let by_topic = sources.iter().map(|s| (s.name.clone(), (s.origin, s.kind))).collect();
    let mut worker = Worker {
        sources,
        by_topic,
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
    /// Every source topic, indexed by [`source_index`].
    sources: Vec<SourceTopic>,
    /// The reader's topics: which source a record of each comes from.
    by_topic: HashMap<String, SourceId>,
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
            let mut others = 0;
            while others < POLL_BURST {
                match self.reader.poll(Duration::ZERO).await? {
                    Some(record) => {
                        others += 1;
                        let Some(&source) = self.by_topic.get(&record.topic) else { continue };
                        let partition = record.partition;
                        self.on_record(record, source);
                        self.pause_if_ahead(partition, source).await?;
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
            if read + others == 0 {
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
                self.on_record(record, LOCAL_IMPRESSIONS);
                self.pause_if_ahead(partition, LOCAL_IMPRESSIONS).await?;
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
        let has_stored = stored.is_some();
        let job = PartitionJob::start(partition, self.config.join, self.config.topics.origins(), stored)?;
        if has_stored {
            let impressions = self.topic_partition(LOCAL_IMPRESSIONS, partition);
            self.consumer.seek(&impressions, job.start_offset(LOCAL_IMPRESSIONS)).await?;
        }
        for source in job.sources().filter(|&s| s != LOCAL_IMPRESSIONS) {
            let tp = self.topic_partition(source, partition);
            self.reader.assign(&tp, job.start_offset(source)).await?;
        }
        let from: Vec<String> =
            job.sources().map(|s| format!("{}@{}", self.source_topic(s).name, job.start_offset(s))).collect();
        tracing::info!(
            partition,
            from = from.join(", "),
            replaying = job.is_replaying(),
            "partition assigned"
        );
        self.jobs.insert(partition, job);
        Ok(())
    }

    /// Pauses, per partition, each source read too far ahead of another in event time,
    /// and resumes it once every such other source caught up or has nothing more to read.
    async fn pace(&mut self) -> Result<()> {
        let partitions: Vec<i32> = self.jobs.keys().copied().collect();
        for partition in partitions {
            let sources: Vec<SourceId> = self.jobs[&partition].sources().collect();
            for source in sources {
                let pause = self.holds_back(partition, source).await;
                if pause != self.jobs[&partition].is_paused(source) {
                    self.set_paused(partition, source, pause).await?;
                }
            }
        }
        Ok(())
    }

    /// Whether `source` of `partition` runs ahead of a source that still has records
    /// to read.
    async fn holds_back(&mut self, partition: i32, source: SourceId) -> bool {
        let behind = self.jobs[&partition].ahead_of(source, pacing_slack_ms(&self.config));
        for other in behind {
            if !self.caught_up(partition, other).await {
                return true;
            }
        }
        false
    }

    /// Checked after every record, so a source stops within one record of running ahead
    /// (a read round can span hours of a sparse partition).
    async fn pause_if_ahead(&mut self, partition: i32, source: SourceId) -> Result<()> {
        let Some(job) = self.jobs.get(&partition) else { return Ok(()) };
        if job.is_paused(source) || !job.is_ahead(source, pacing_slack_ms(&self.config)) {
            return Ok(());
        }
        if self.holds_back(partition, source).await {
            self.set_paused(partition, source, true).await?;
        }
        Ok(())
    }

    /// Whether `source` of `partition` has been read up to its high watermark (asked
    /// of the log at most once per batch interval). When the log cannot say, it counts
    /// as caught up until the next ask: pacing is an optimisation, never a reason to
    /// stop reading or to wait on an unreachable broker for every record.
    async fn caught_up(&mut self, partition: i32, source: SourceId) -> bool {
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

    async fn set_paused(&mut self, partition: i32, source: SourceId, pause: bool) -> Result<()> {
        let tp = self.topic_partition(source, partition);
        match (source == LOCAL_IMPRESSIONS, pause) {
            (true, true) => self.consumer.pause(std::slice::from_ref(&tp)).await?,
            (true, false) => self.consumer.resume(std::slice::from_ref(&tp)).await?,
            // The reader is group-less: pausing is not reading the partition, and
            // resuming reads on from the first offset not yet taken.
            (false, true) => self.reader.unassign(&tp).await?,
            (false, false) => {
                let next = self.jobs[&partition].next_offset(source);
                self.reader.assign(&tp, next).await?;
            }
        }
        let job = self.jobs.get_mut(&partition).expect("paced partitions are owned");
        job.set_paused(source, pause);
        if pause {
            m::paused(source.1);
        }
        tracing::debug!(partition, topic = %tp.topic, pause, "pacing the sources of a partition");
        Ok(())
    }

    fn source_topic(&self, (origin, kind): SourceId) -> &SourceTopic {
        &self.sources[source_index(origin, kind)]
    }

    fn topic_partition(&self, source: SourceId, partition: i32) -> TopicPartition {
        TopicPartition::new(self.source_topic(source).name.clone(), partition)
    }

    async fn release(&mut self, partition: i32) -> Result<()> {
        if let Some(job) = self.jobs.remove(&partition) {
            for source in job.sources().filter(|&s| s != LOCAL_IMPRESSIONS) {
                let tp = self.topic_partition(source, partition);
                self.reader.unassign(&tp).await?;
            }
        }
        self.status.remove(partition);
        m::forget_partition(partition);
        tracing::info!(partition, "partition revoked");
        Ok(())
    }

    fn on_record(&mut self, record: Record, source: SourceId) {
        let Some(job) = self.jobs.get_mut(&record.partition) else {
            // A record fetched just before its partition was revoked.
            return;
        };
        let (origin, kind) = source;
        m::event_read(kind);
        let input = match wire::input(&record, kind) {
            Ok(input) => Some(crate::join::Input { origin, ..input }),
            Err(error) => {
                // One bad record must not stop counting: it goes to the late topic with
                // why and its bytes, and its offset is passed like any other.
                m::undecodable(kind);
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

        // Only the local impressions are group-consumed; every source's offset is in the
        // progress just written, which is what recovery reads.
        let commits: Vec<_> = progress
            .iter()
            .filter_map(|p| {
                let tp = self.topic_partition(LOCAL_IMPRESSIONS, p.partition);
                p.source(0).map(|s| (tp, s.committed))
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
            let sources = job
                .sources()
                .map(|(origin, kind)| SourceStatus {
                    watermark_ms: state.watermarks(origin).get(kind),
                    committed: job.next_offset((origin, kind)),
                })
                .collect();
            let status = PartitionStatus {
                sources,
                state_entries: state.state_entries() as u64,
                state_bytes: state.approx_state_bytes() as u64,
            };
            m::partition_status(job.partition, &status, &self.sources);
            self.status.set(job.partition, status);
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
