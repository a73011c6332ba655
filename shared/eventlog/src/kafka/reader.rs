//! A group-less Kafka reader: partitions assigned by the caller at offsets it keeps.
//!
//! The consumer never subscribes, so it never joins a group and never commits; it
//! carries a unique dummy `group.id` only because librdkafka refuses assignments
//! without one. Partitions are added and removed with `incremental_assign` and
//! `incremental_unassign` and an explicit start offset, clamped to the partition's
//! watermarks first so that both logs treat out-of-range offsets alike.
//!
//! Stale records are dropped twice over: librdkafka bumps a partition's op version
//! when it stops or (re)starts its fetcher, which discards what was fetched before,
//! and [`KafkaReader::poll`] also skips records of partitions no longer assigned.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::Offset;

use super::consumer::to_record;
use super::{TracingContext, blocking, fetch_watermarks, map_error, single_partition};
use crate::{Error, Reader, Record, Result, TopicPartition};

/// Reads chosen partitions of a Kafka cluster from chosen offsets.
pub struct KafkaReader {
    /// `None` only while being dropped; shared with blocking tasks.
    consumer: Option<Arc<StreamConsumer<TracingContext>>>,
    /// The log's metadata consumer, for the watermarks offsets are clamped to.
    meta: Arc<BaseConsumer<TracingContext>>,
    assignment: BTreeSet<TopicPartition>,
    group: String,
    timeout: Duration,
}

impl std::fmt::Debug for KafkaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaReader")
            .field("group", &self.group)
            .field("assignment", &self.assignment)
            .finish_non_exhaustive()
    }
}

/// A `group.id` no other client uses, so the reader can never share a group's state.
pub(super) fn dummy_group(client_id: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{client_id}-reader-{}-{nanos}-{n}", std::process::id())
}

impl KafkaReader {
    /// Creates the consumer; `config` must carry a unique `group.id` and no commits.
    pub(super) fn create(
        config: &ClientConfig,
        meta: Arc<BaseConsumer<TracingContext>>,
        group: String,
        timeout: Duration,
    ) -> Result<Self> {
        let consumer: StreamConsumer<TracingContext> = config
            .create_with_context(TracingContext)
            .map_err(|e| Error::Other(format!("cannot create Kafka reader: {e}")))?;
        Ok(Self { consumer: Some(Arc::new(consumer)), meta, assignment: BTreeSet::new(), group, timeout })
    }

    fn consumer(&self) -> Arc<StreamConsumer<TracingContext>> {
        Arc::clone(self.consumer.as_ref().expect("taken only on drop"))
    }
}

#[async_trait]
impl Reader for KafkaReader {
    async fn assign(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        // Before touching the assignment, so a missing topic or partition leaves the
        // reader as it was.
        let meta = Arc::clone(&self.meta);
        let timeout = self.timeout;
        let target = tp.clone();
        let (low, high) =
            blocking("reader watermarks", move || fetch_watermarks(&meta, &target, timeout)).await?;
        let start = offset.clamp(low, high);
        let what = format!("reader assigning {}/{} at {start}", tp.topic, tp.partition);
        if self.assignment.contains(tp) {
            // librdkafka refuses to assign a partition twice; stopping it first also
            // discards what its fetcher had read ahead from the old position.
            self.unassign(tp).await?;
        }
        let consumer = self.consumer();
        let list = single_partition(tp, Offset::Offset(start))?;
        blocking("reader assign", move || {
            consumer.incremental_assign(&list).map_err(|e| map_error(&what, &e))
        })
        .await?;
        self.assignment.insert(tp.clone());
        Ok(())
    }

    async fn unassign(&mut self, tp: &TopicPartition) -> Result<()> {
        if !self.assignment.contains(tp) {
            return Ok(());
        }
        let consumer = self.consumer();
        let what = format!("reader unassigning {}/{}", tp.topic, tp.partition);
        let list = single_partition(tp, Offset::Invalid)?;
        blocking("reader unassign", move || {
            consumer.incremental_unassign(&list).map_err(|e| map_error(&what, &e))
        })
        .await?;
        self.assignment.remove(tp);
        Ok(())
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.iter().cloned().collect()
    }

    async fn poll(&mut self, timeout: Duration) -> Result<Option<Record>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let consumer = self.consumer();
        loop {
            // `recv` is cancel-safe: a message is taken from librdkafka only when ready.
            let next = match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Err(_elapsed) => return Ok(None),
                Ok(next) => next.map(|message| to_record(&message)),
            };
            match next {
                Ok(record) if self.assignment.contains(&record.topic_partition()) => {
                    return Ok(Some(record));
                }
                Ok(record) => {
                    tracing::debug!(
                        topic = %record.topic,
                        partition = record.partition,
                        offset = record.offset,
                        "dropping a record of a partition no longer assigned"
                    );
                }
                Err(KafkaError::MessageConsumptionFatal(code)) => {
                    return Err(Error::Other(format!("reader {} failed: {code}", self.group)));
                }
                Err(error) => {
                    // Transient trouble (a broker going away, a leader moving);
                    // librdkafka recovers by itself.
                    tracing::warn!(group = %self.group, %error, "reader error, continuing");
                }
            }
        }
    }
}

impl Drop for KafkaReader {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        // Closing waits for the fetchers to stop; keep it off the async executor.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || drop(consumer));
            }
            Err(_) => drop(consumer),
        }
    }
}
