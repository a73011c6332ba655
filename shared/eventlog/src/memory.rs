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
//! another only after the first has seen the [`crate::ConsumerEvent::Revoked`] event (it
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
//!
//! The same groups, consumers and readers serve the durable embedded log
//! ([`crate::durable::DurableLog`]): there, the shared state holds the storage, each
//! partition keeps only a bounded tail in memory over its segment files, publishing
//! goes through the group-commit writer and commits are written to the offsets file.

mod consumer;
mod group;
pub(crate) mod partition;
mod reader;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::watch;

pub use self::consumer::MemoryConsumer;
pub(crate) use self::group::Group;
use self::partition::{Partition, Stored};
pub use self::reader::MemoryReader;
use crate::durable::{self, Storage};
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

impl MemoryLog {
    /// A log over `state` recovered from disk, kept durable by `storage`.
    pub(crate) fn durable(state: State, storage: Storage) -> Self {
        let shared =
            Shared { state: Mutex::new(state), changes: watch::Sender::new(0), durable: Some(storage) };
        Self { shared: Arc::new(shared) }
    }

    /// What every handle on this log shares (for the durable log's writer).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// What every handle on the log shares.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Bumped after every change a waiting consumer could be interested in.
    pub(crate) changes: watch::Sender<u64>,
    /// The files behind the log, when it is durable.
    pub(crate) durable: Option<Storage>,
}

impl Default for Shared {
    fn default() -> Self {
        Self { state: Mutex::new(State::default()), changes: watch::Sender::new(0), durable: None }
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before anything that can
        // panic, so a poisoned lock still guards valid data; going on keeps one
        // panicking test or task from taking the whole embedded log down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn wake_consumers(&self) {
        self.changes.send_modify(|version| *version = version.wrapping_add(1));
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) topics: HashMap<String, Vec<Partition>>,
    pub(crate) groups: HashMap<String, Group>,
    pub(crate) next_member: u64,
    /// Appends waiting for the durable log's writer (unused by the in-memory log).
    pub(crate) pending: durable::Pending,
}

/// Converts a partition index of the in-memory vectors to Kafka's `i32`.
fn index(p: usize) -> i32 {
    i32::try_from(p).expect("partition counts come from an i32")
}

pub(crate) fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

fn partition_of<'a>(
    topics: &'a mut HashMap<String, Vec<Partition>>,
    tp: &TopicPartition,
) -> Result<&'a mut Partition> {
    let partitions = topics.get_mut(&tp.topic).ok_or_else(|| Error::UnknownTopic(tp.topic.clone()))?;
    usize::try_from(tp.partition)
        .ok()
        .and_then(|p| partitions.get_mut(p))
        .ok_or_else(|| Error::Other(format!("topic {} has no partition {}", tp.topic, tp.partition)))
}

/// The next record of the partitions in `positions`, round-robin from `cursor` so one
/// busy partition does not starve the others; advances that partition's position.
fn next_record(
    topics: &mut HashMap<String, Vec<Partition>>,
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
        // Retention may have deleted what a position points at: go on from the log
        // start, as Kafka's `auto.offset.reset=earliest` does.
        let position = position.max(log.start);
        let Some(record) = log.record(tp, position)? else {
            continue;
        };
        *cursor = at + 1;
        positions.insert(record.topic_partition(), position + 1);
        return Ok(Some(record));
    }
    Ok(None)
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<()> {
        let mut state = self.shared.lock();
        for spec in specs {
            if spec.partitions < 1 {
                return Err(Error::Other(format!("topic {} needs at least one partition", spec.name)));
            }
            if spec.name.is_empty()
                || !spec.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                || spec.name.starts_with('.')
            {
                // Kafka's rule, which also makes every name a safe directory name.
                return Err(Error::Other(format!(
                    "topic name {:?} may only hold ASCII letters, digits, '.', '_' and '-'",
                    spec.name
                )));
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
            if state.topics.contains_key(&spec.name) {
                continue;
            }
            let partitions = match &self.shared.durable {
                Some(storage) => storage.create_topic(&spec.name, spec.partitions)?,
                None => (0..spec.partitions).map(|_| Partition::default()).collect(),
            };
            state.topics.insert(spec.name.clone(), partitions);
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
        if self.shared.durable.is_some() {
            return durable::publish(&self.shared, records).await;
        }
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
            let offset = log.high();
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
        let mut state = self.shared.lock();
        let log = partition_of(&mut state.topics, tp)?;
        Ok((log.start, log.high()))
    }

    async fn offset_for_time(&self, tp: &TopicPartition, timestamp_ms: i64) -> Result<Option<i64>> {
        let mut state = self.shared.lock();
        partition_of(&mut state.topics, tp)?.offset_for_time(timestamp_ms)
    }

    async fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Result<Option<i64>> {
        let state = self.shared.lock();
        Ok(state.groups.get(group).and_then(|g| g.committed.get(tp)).copied())
    }

    async fn reader(&self) -> Result<Box<dyn Reader>> {
        Ok(Box::new(MemoryReader::new(Arc::clone(&self.shared))))
    }
}
