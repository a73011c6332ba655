//! The partitioned, replayable event log that nearline services talk through.
//!
//! Three implementations sit behind one [`EventLog`] trait: [`kafka::KafkaLog`] for the
//! distributed deployment, [`durable::DurableLog`] (segment files on local disk) for the
//! embedded one, and [`memory::MemoryLog`] (in memory only) for tests and benchmarks;
//! the durable log is the in-memory one's groups and consumers over files. All give the
//! semantics nearline relies on: records partitioned by a hash of their key, consumer
//! groups with per-group committed offsets that move only when the caller commits,
//! seeking, watermarks and offsets-for-times, and group-less [`Reader`]s that read
//! chosen partitions from offsets the caller keeps. One conformance suite
//! (`tests/conformance.rs`) runs against all three.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub mod durable;
pub mod kafka;
pub mod memory;
mod partitioner;

pub use partitioner::partition_for_key;

/// Topic names every nearline deployment uses.
pub mod topics {
    /// Impressions from ingest, keyed by request id.
    pub const IMPRESSIONS: &str = "nearline.impressions.v1";
    /// Plays from ingest, keyed by request id; co-partitioned with impressions.
    pub const PLAYS: &str = "nearline.plays.v1";
    /// Bandit rewards from attribution.
    pub const OUTCOMES: &str = "nearline.outcomes.v1";
    /// Events too late for the stream, with their reason.
    pub const LATE: &str = "nearline.late.v1";
}

/// Errors of the event log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The broker could not be reached or did not answer in time.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// A topic that must exist does not.
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    /// A topic exists with a different partition count than required.
    #[error("topic {topic} has {actual} partitions, expected {expected}")]
    PartitionMismatch {
        /// The topic.
        topic: String,
        /// Partitions it has.
        actual: i32,
        /// Partitions asked for.
        expected: i32,
    },
    /// The consumer's group membership changed under it (for example a commit for a
    /// partition it no longer owns).
    #[error("consumer group: {0}")]
    Group(String),
    /// Any other broker or client error.
    #[error("event log: {0}")]
    Other(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A topic and one of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index, from 0.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a topic-partition pair.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self { topic: topic.into(), partition }
    }
}

/// A topic to create, with its partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor (ignored by the in-process log).
    pub replication: i32,
}

/// A record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    /// Destination topic.
    pub topic: String,
    /// Partitioning key; records with equal keys land on the same partition of
    /// co-partitioned topics.
    pub key: Bytes,
    /// Encoded payload (protobuf for nearline's topics).
    pub payload: Bytes,
    /// Record timestamp, ms since the Unix epoch; the log's append time when `None`.
    pub timestamp_ms: Option<i64>,
}

/// A record read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic the record is on.
    pub topic: String,
    /// Partition the record is on.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Partitioning key.
    pub key: Bytes,
    /// Payload.
    pub payload: Bytes,
    /// Record timestamp, ms since the Unix epoch.
    pub timestamp_ms: i64,
}

impl Record {
    /// The topic-partition this record is on.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }
}

/// Where a published record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// What a consumer's poll returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerEvent {
    /// Partitions newly assigned to this consumer (incremental). Consumption starts at
    /// the group's committed offset, or the earliest offset when none was committed;
    /// the caller may [`Consumer::seek`] any of them before records from it are used.
    Assigned(Vec<TopicPartition>),
    /// Partitions taken away from this consumer (incremental). Uncommitted work on them
    /// will be redelivered to their next owner.
    Revoked(Vec<TopicPartition>),
    /// A record.
    Record(Record),
}

/// The log: publishing, topic administration and consumer creation.
#[async_trait]
pub trait EventLog: Send + Sync + std::fmt::Debug {
    /// Creates the topics that do not exist yet; existing topics are left as they are.
    async fn create_topics(&self, topics: &[TopicSpec]) -> Result<()>;

    /// Number of partitions of `topic`, or [`Error::UnknownTopic`].
    async fn partition_count(&self, topic: &str) -> Result<i32>;

    /// Publishes records and returns once the log acknowledged every one of them
    /// (acks=all on Kafka), with where each landed, in input order. On error some of
    /// the records may have been published: callers retry the whole batch.
    async fn publish(&self, records: Vec<OutgoingRecord>) -> Result<Vec<Delivery>>;

    /// Joins consumer group `group` and subscribes to `topics`. Offsets are committed
    /// only by [`Consumer::commit`].
    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Consumer>>;

    /// Low (first retained) and high (next to be written) offsets of a partition.
    async fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64)>;

    /// Earliest offset whose timestamp is at or after `timestamp_ms`, or `None` when
    /// there is none.
    async fn offset_for_time(&self, tp: &TopicPartition, timestamp_ms: i64) -> Result<Option<i64>>;

    /// Offset committed by `group` for a partition, if any.
    async fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Result<Option<i64>>;

    /// A [`Reader`] with nothing assigned yet.
    async fn reader(&self) -> Result<Box<dyn Reader>>;
}

/// A member of a consumer group.
#[async_trait]
pub trait Consumer: Send + std::fmt::Debug {
    /// Waits up to `timeout` for the next event; `None` when nothing arrived in time.
    async fn poll(&mut self, timeout: Duration) -> Result<Option<ConsumerEvent>>;

    /// Commits, for each partition, the offset of the next record to consume.
    async fn commit(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()>;

    /// Moves the read position of an assigned partition to `offset`.
    async fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()>;

    /// Stops returning records of the assigned partitions `tps` (flow control; they stay
    /// assigned) until [`Consumer::resume`]. Pausing a paused partition does nothing.
    async fn pause(&mut self, tps: &[TopicPartition]) -> Result<()>;

    /// Returns records of `tps` again, from the first one not yet returned: nothing is
    /// skipped or repeated across a pause. Resuming a partition not paused does nothing.
    async fn resume(&mut self, tps: &[TopicPartition]) -> Result<()>;

    /// Partitions currently assigned to this consumer.
    fn assignment(&self) -> Vec<TopicPartition>;

    /// Leaves the group so its partitions move to the other members at once.
    async fn close(self: Box<Self>) -> Result<()>;
}

/// Reads chosen partitions from chosen offsets, outside any consumer group; never commits.
///
/// Records of one partition come in offset order. Nothing of a partition is returned
/// after [`Reader::unassign`] of it returns, and after [`Reader::assign`] the first
/// record of the partition returned is the one at the (clamped) offset asked for.
#[async_trait]
pub trait Reader: Send + std::fmt::Debug {
    /// Starts (or restarts) reading `tp` at `offset` (clamped to the retained range: an
    /// offset before the low watermark reads from the low watermark; at or past the high
    /// watermark waits for new records).
    async fn assign(&mut self, tp: &TopicPartition, offset: i64) -> Result<()>;

    /// Stops reading `tp`; records of it already buffered are dropped. Unassigning a
    /// partition that is not assigned does nothing.
    async fn unassign(&mut self, tp: &TopicPartition) -> Result<()>;

    /// Partitions being read.
    fn assignment(&self) -> Vec<TopicPartition>;

    /// Waits up to `timeout` for the next record of an assigned partition; `None` when
    /// none arrived in time.
    async fn poll(&mut self, timeout: Duration) -> Result<Option<Record>>;
}
