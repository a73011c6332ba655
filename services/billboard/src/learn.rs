//! Learning from `nearline.outcomes.v1`, exactly once.
//!
//! One loop reads every partition of the topic and, every `billboard.flush_interval`,
//! saves what it read in one database transaction: the keys of the new outcomes (so a
//! re-emitted outcome changes nothing), the counters they change, the model version and
//! the next offset per partition, stored under `billboard.consumer_group`. Only after
//! that commit does the in-memory model change. Reading resumes from the saved offsets,
//! which are the truth: a crash before the commit re-reads everything that was not
//! applied, and nothing that was.
//!
//! One learner per `billboard.consumer_group`: the statistics are read-modify-written
//! from the learner's memory, so two instances learning into one database would lose
//! updates.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nearline_eventlog::{EventLog, Record, TopicPartition};
use nearline_proto::events::v1 as pb;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::policy::{Arm, Cell, Counter, Daypart, Observation};
use crate::service::Billboard;
use crate::store::{self, Batch};

/// Where and how the learner reads.
#[derive(Debug, Clone)]
pub struct LearnConfig {
    /// Consumer group.
    pub group: String,
    /// Outcomes topic.
    pub topic: String,
    /// How often a batch is saved.
    pub flush_interval: Duration,
}

/// The outcome of a record as the learner needs it; `None` for a record that is not an
/// outcome of a (title, artwork) impression.
pub fn observation(payload: &[u8]) -> Option<Observation> {
    let o = pb::Outcome::decode(payload).ok()?;
    if o.video_id <= 0 || o.artwork_id.is_empty() || o.request_id.is_empty() {
        return None;
    }
    // Learned in the context the policy decided in (`explore.context`, with the
    // client's local hour); an outcome without one (an impression billboard did not
    // decide) stands in the impression's country, device and UTC hour.
    let utc_hour = || (o.impression_time_ms.div_euclid(3_600_000)).rem_euclid(24) as u32;
    let (country, device, hour) = match o.explore.as_ref().and_then(|e| e.context.as_ref()) {
        Some(c) if !c.country.is_empty() && !c.device.is_empty() && c.hour_of_day < 24 => {
            (c.country.as_str(), c.device.as_str(), c.hour_of_day)
        }
        _ => (o.country.as_str(), o.device.as_str(), utc_hour()),
    };
    Some(Observation {
        arm: Arm::new(o.video_id, &o.artwork_id),
        cell: Cell {
            country: country.into(),
            device: device.into(),
            daypart: Daypart::of_hour(hour).unwrap_or(Daypart::Night),
        },
        played: o.played,
        time_ms: o.impression_time_ms,
        request_id: o.request_id,
    })
}

/// Learns until `shutdown`; then saves what was read and returns.
pub async fn run(
    billboard: Billboard,
    log: Arc<dyn EventLog>,
    config: LearnConfig,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        match consume(&billboard, log.as_ref(), &config, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, topic = %config.topic, "billboard learner stopped; restarting in {backoff:?}")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(Duration::from_secs(5)),
        }
    }
}

/// Reads every partition from the offsets saved with the statistics.
///
/// A group-less reader rather than a group member: the saved offsets are the truth
/// either way, and a member killed with SIGKILL keeps its partitions in the group until
/// the broker expires its session (minutes on tansu 0.6), which would stall a restarted
/// learner for as long.
async fn consume(
    billboard: &Billboard,
    log: &dyn EventLog,
    config: &LearnConfig,
    shutdown: &CancellationToken,
) -> Result<(), nearline_eventlog::Error> {
    let partitions = log.partition_count(&config.topic).await?;
    let saved = loop {
        match store::load_offsets(billboard.database(), &config.group, &config.topic).await {
            Ok(saved) => break saved,
            Err(error) => {
                tracing::warn!(%error, "cannot read saved offsets; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let mut reader = log.reader().await?;
    for partition in 0..partitions {
        // Offset 0 is clamped to the first retained record.
        let offset = saved.get(&partition).copied().unwrap_or(0);
        reader.assign(&TopicPartition::new(config.topic.clone(), partition), offset).await?;
    }
    tracing::info!(topic = %config.topic, partitions, "billboard learner reading outcomes");
    let mut batch = Batch::default();
    let mut next_flush = Instant::now() + config.flush_interval;
    let mut skipped = 0u64;
    loop {
        if shutdown.is_cancelled() {
            flush(billboard, config, &mut batch).await;
            return Ok(());
        }
        let wait = next_flush.saturating_duration_since(Instant::now()).min(Duration::from_millis(100));
        if let Some(record) = reader.poll(wait).await? {
            read(&record, &mut batch, &mut skipped);
        }
        if Instant::now() >= next_flush {
            if skipped > 0 {
                metrics::outcomes("skipped", std::mem::take(&mut skipped));
            }
            flush(billboard, config, &mut batch).await;
            next_flush = Instant::now() + config.flush_interval;
        }
    }
}

fn read(record: &Record, batch: &mut Batch, skipped: &mut u64) {
    match observation(&record.payload) {
        Some(o) => batch.observations.push(o),
        None => *skipped += 1,
    }
    batch.offsets.insert(record.partition, record.offset + 1);
}

/// Saves the batch, retrying until the database takes it, then installs it in the
/// model: nothing reaches the model that is not durable.
async fn flush(billboard: &Billboard, config: &LearnConfig, batch: &mut Batch) {
    if batch.offsets.is_empty() {
        return;
    }
    let discount = billboard.settings().params.discount;
    let mut backoff = Duration::from_millis(100);
    let saved = loop {
        // The counters the batch starts from; only this task changes them.
        let (base, info) = {
            let learned = billboard.learned();
            let base: HashMap<(Arm, Cell), Counter> = batch
                .observations
                .iter()
                .filter_map(|o| {
                    let c = learned.stats.counter(&o.arm, &o.cell)?;
                    Some(((o.arm.clone(), o.cell.clone()), *c))
                })
                .collect();
            (base, learned.info)
        };
        let now = chrono::Utc::now().timestamp_millis();
        match store::save(
            billboard.database(),
            &config.group,
            &config.topic,
            &base,
            info,
            batch,
            discount,
            now,
        )
        .await
        {
            Ok(saved) => break saved,
            Err(error) => {
                tracing::warn!(%error, "saving learned outcomes failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    metrics::outcomes("applied", saved.applied);
    metrics::outcomes("duplicate", saved.duplicates);
    if saved.applied > 0 {
        let mut learned = billboard.learned();
        let mut touched = HashSet::new();
        for (arm, cell, counter) in saved.counters {
            touched.insert(arm.clone());
            learned.stats.insert(arm, cell, counter);
        }
        learned.info = saved.info;
        billboard.rebuild_model(&learned, &touched);
    }
    *batch = Batch::default();
}
