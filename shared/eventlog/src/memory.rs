//! An in-process event log for the embedded deployment.
//!
//! [`MemoryLog`] keeps every record in memory and gives the semantics nearline relies on
//! from Kafka: partitions chosen by the same murmur2 hash of the key (so equal
//! partition counts mean co-partitioned topics), offsets from 0, consumer groups whose
//! committed offsets move only on [`Consumer::commit`], and a cooperative rebalance on
//! every join and leave in which only the partitions that move are revoked and
//! assigned.
//!
//! Like Kafka's cooperative protocol, a partition taken from one member is given to
//! another only after the first has seen the [`ConsumerEvent::Revoked`] event (it
//! polled past it), so two members never read the same partition at once. A member
//! that stops polling therefore holds on to the partitions it is losing until it polls
//! again, closes or is dropped; in one process that is a bug of the caller rather than
//! a failure to detect.
//!
//! A [`MemoryReader`] reads the same partition storage from offsets of its own, outside
//! any group.
//!
//! All state sits behind one `std::sync::Mutex`, taken only for short, synchronous
//! sections and never across an `.await`. Waiting consumers and readers are woken
//! through a `tokio::sync::watch` counter that is bumped on every append and group
//! change.

mod consumer;
mod group;
mod reader;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

pub use self::consumer::MemoryConsumer;
use self::group::Group;
pub use self::reader::MemoryReader;
use crate::{
    Consumer, Delivery, Error, EventLog, OutgoingRecord, Reader, Record, Result, TopicPartition, TopicSpec,
    partition_for_key,
};

/// The in-process log; cheap to clone, clones share the same topics and groups.
#[derive(Clone, Default)]
pub struct MemoryLog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MemoryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("MemoryLog");
        // `try_lock`: formatting must not deadlock if the caller holds the state.
        if let Ok(state) = self.shared.state.try_lock() {
            out.field("topics", &state.topics.len()).field("groups", &state.groups.len());
        }
        out.finish_non_exhaustive()
    }
}

impl MemoryLog {
    /// An empty log with no topics.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What every handle on the log shares.
struct Shared {
    state: Mutex<State>,
    /// Bumped after every change a waiting consumer could be interested in.
    changes: watch::Sender<u64>,
}

impl Default for Shared {
    fn default() -> Self {
        Self { state: Mutex::new(State::default()), changes: watch::Sender::new(0) }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before anything that can
        // panic, so a poisoned lock still guards valid data; going on keeps one
        // panicking test or task from taking the whole embedded log down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_consumers(&self) {
        self.changes.send_modify(|version| *version = version.wrapping_add(1));
    }
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Vec<Vec<Stored>>>,
    groups: HashMap<String, Group>,
    next_member: u64,
}

struct Stored {
    key: Bytes,
    payload: Bytes,
    timestamp_ms: i64,
}

/// Converts a partition index of the in-memory vectors to Kafka's `i32`.
fn index(p: usize) -> i32 {
    i32::try_from(p).expect("partition counts come from an i32")
}

fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

fn partition_of<'a>(
    topics: &'a HashMap<String, Vec<Vec<Stored>>>,
    tp: &TopicPartition,
) -> Result<&'a [Stored]> {
    let partitions = topics.get(&tp.topic).ok_or_else(|| Error::UnknownTopic(tp.topic.clone()))?;
    usize::try_from(tp.partition)
        .ok()
        .and_then(|p| partitions.get(p))
        .map(Vec::as_slice)
        .ok_or_else(|| Error::Other(format!("topic {} has no partition {}", tp.topic, tp.partition)))
}

/// The next record of the partitions in `positions`, round-robin from `cursor` so one
/// busy partition does not starve the others; advances that partition's position.
fn next_record(
    topics: &HashMap<String, Vec<Vec<Stored>>>,
    positions: &mut BTreeMap<TopicPartition, i64>,
    paused: &BTreeSet<TopicPartition>,
    cursor: &mut usize,
) -> Result<Option<Record>> {
    let start = if positions.is_empty() { 0 } else { *cursor % positions.len() };
    let rotated = positions.iter().enumerate().skip(start).chain(positions.iter().enumerate().take(start));
    for (at, (tp, &position)) in rotated {
        if paused.contains(tp) {
            continue;
        }
        let log = partition_of(topics, tp)?;
        let Some(stored) = usize::try_from(position).ok().and_then(|p| log.get(p)) else {
            continue;
        };
        let record = Record {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset: position,
            key: stored.key.clone(),
            payload: stored.payload.clone(),
            timestamp_ms: stored.timestamp_ms,
        };
        *cursor = at + 1;
        positions.insert(record.topic_partition(), position + 1);
        return Ok(Some(record));
    }
    Ok(None)
}

/// Length of a partition as an offset: its high watermark.
fn high_watermark(log: &[Stored]) -> i64 {
    i64::try_from(log.len()).expect("fewer than i64::MAX records")
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<()> {
        let mut state = self.shared.lock();
        for spec in specs {
            if spec.partitions < 1 {
                return Err(Error::Other(format!("topic {} needs at least one partition", spec.name)));
            }
            if let Some(existing) = state.topics.get(&spec.name)
                && index(existing.len()) != spec.partitions
            {
                return Err(Error::PartitionMismatch {
                    topic: spec.name.clone(),
                    actual: index(existing.len()),
                    expected: spec.partitions,
                });
            }
        }
        for spec in specs {
            state.topics.entry(spec.name.clone()).or_insert_with(|| {
                let count = usize::try_from(spec.partitions).expect("checked positive above");
                (0..count).map(|_| Vec::new()).collect()
            });
        }
        // Members may be subscribed to a topic that did not exist when they joined.
        let State { topics, groups, .. } = &mut *state;
        for group in groups.values_mut() {
            group.rebalance(topics);
        }
        drop(state);
        self.shared.wake_consumers();
        Ok(())
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        let state = self.shared.lock();
        let partitions = state.topics.get(topic).ok_or_else(|| Error::UnknownTopic(topic.to_owned()))?;
        Ok(index(partitions.len()))
    }

    async fn publish(&self, records: Vec<OutgoingRecord>) -> Result<Vec<Delivery>> {
        let mut state = self.shared.lock();
        // All or nothing here, which is stronger than the trait asks for.
        if let Some(missing) = records.iter().find(|r| !state.topics.contains_key(&r.topic)) {
            return Err(Error::UnknownTopic(missing.topic.clone()));
        }
        let now = now_ms();
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let partitions = state.topics.get_mut(&record.topic).expect("checked above");
            let partition = partition_for_key(&record.key, index(partitions.len()));
            let log = &mut partitions[usize::try_from(partition).expect("partition_for_key is non-negative")];
            let offset = i64::try_from(log.len()).expect("fewer than i64::MAX records");
            log.push(Stored {
                key: record.key,
                payload: record.payload,
                timestamp_ms: record.timestamp_ms.unwrap_or(now),
            });
            deliveries.push(Delivery { partition, offset });
        }
        drop(state);
        self.shared.wake_consumers();
        Ok(deliveries)
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Consumer>> {
        Ok(Box::new(MemoryConsumer::join(Arc::clone(&self.shared), group, topics)))
    }

    async fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64)> {
        let state = self.shared.lock();
        let log = partition_of(&state.topics, tp)?;
        Ok((0, high_watermark(log)))
    }

    async fn offset_for_time(&self, tp: &TopicPartition, timestamp_ms: i64) -> Result<Option<i64>> {
        let state = self.shared.lock();
        let log = partition_of(&state.topics, tp)?;
        Ok(log
            .iter()
            .position(|r| r.timestamp_ms >= timestamp_ms)
            .map(|p| i64::try_from(p).expect("fewer than i64::MAX records")))
    }

    async fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Result<Option<i64>> {
        let state = self.shared.lock();
        Ok(state.groups.get(group).and_then(|g| g.committed.get(tp)).copied())
    }

    async fn reader(&self) -> Result<Box<dyn Reader>> {
        Ok(Box::new(MemoryReader::new(Arc::clone(&self.shared))))
    }
}
