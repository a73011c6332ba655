//! A Kafka consumer group member: rebalance events interleaved with records, explicit
//! synchronous commits, and seeks that work right after an assignment.
//!
//! librdkafka runs the rebalance callback inside the consumer's poll. Our context
//! records each incremental assign or revoke in a queue that [`KafkaConsumer::poll`]
//! drains before it returns the next record, so the caller always sees
//! [`ConsumerEvent::Assigned`] before any record of a newly assigned partition and
//! [`ConsumerEvent::Revoked`] before anything that follows the revocation.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt as _;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientConfig, ClientContext};

use super::{blocking, is_unavailable, log_to_tracing, map_error};
use crate::{Consumer, ConsumerEvent, Error, Record, Result, TopicPartition};

/// Assignment changes the rebalance callback saw and `poll` has not returned yet.
type EventQueue = Arc<Mutex<VecDeque<ConsumerEvent>>>;

/// Forwards librdkafka's rebalance callbacks into an [`EventQueue`].
struct GroupContext {
    events: EventQueue,
}

impl ClientContext for GroupContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "librdkafka consumer error");
    }
}

impl ConsumerContext for GroupContext {
    // After, not before: by then librdkafka has applied the incremental assign or
    // unassign, so a seek issued on the Assigned event finds the partition assigned.
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let event = match rebalance {
            Rebalance::Assign(list) => ConsumerEvent::Assigned(partitions(list)),
            Rebalance::Revoke(list) => ConsumerEvent::Revoked(partitions(list)),
            Rebalance::Error(error) => {
                tracing::warn!(%error, "consumer group rebalance failed");
                return;
            }
        };
        // The cooperative protocol calls back with empty lists on every rebalance.
        if matches!(&event, ConsumerEvent::Assigned(tps) | ConsumerEvent::Revoked(tps) if tps.is_empty()) {
            return;
        }
        tracing::debug!(?event, "consumer group rebalance");
        self.events.lock().unwrap_or_else(PoisonError::into_inner).push_back(event);
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect()
}

/// Copies a librdkafka message out into a [`Record`].
pub(super) fn to_record(message: &BorrowedMessage<'_>) -> Record {
    Record {
        topic: message.topic().to_owned(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(Bytes::copy_from_slice).unwrap_or_default(),
        payload: message.payload().map(Bytes::copy_from_slice).unwrap_or_default(),
        timestamp_ms: message.timestamp().to_millis().unwrap_or(-1),
    }
}

/// What one wake-up of the underlying stream produced.
enum Next {
    Event(ConsumerEvent),
    Record(Record),
    Failed(KafkaError),
}

/// A member of a Kafka consumer group (cooperative-sticky, manual commits).
pub struct KafkaConsumer {
    /// `None` once closing has started; shared with blocking tasks.
    consumer: Option<Arc<StreamConsumer<GroupContext>>>,
    events: EventQueue,
    /// Events already taken from librdkafka but not yet returned, in order.
    buffered: VecDeque<ConsumerEvent>,
    /// Partitions as far as the caller has been told.
    assignment: BTreeSet<TopicPartition>,
    /// Paused partitions, and their records that librdkafka had already fetched when
    /// the pause began, returned first on resume.
    paused: BTreeSet<TopicPartition>,
    held: VecDeque<Record>,
    group: String,
    timeout: Duration,
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumer")
            .field("group", &self.group)
            .field("assignment", &self.assignment)
            .finish_non_exhaustive()
    }
}

impl KafkaConsumer {
    /// Creates the consumer and subscribes it; it joins the group on its first poll.
    pub(super) fn subscribe(
        config: &ClientConfig,
        group: &str,
        topics: &[&str],
        timeout: Duration,
    ) -> Result<Self> {
        let events = EventQueue::default();
        let consumer: StreamConsumer<GroupContext> = config
            .create_with_context(GroupContext { events: Arc::clone(&events) })
            .map_err(|e| Error::Other(format!("cannot create consumer for group {group}: {e}")))?;
        consumer
            .subscribe(topics)
            .map_err(|e| map_error(&format!("group {group} subscribing to {}", topics.join(",")), &e))?;
        Ok(Self {
            consumer: Some(Arc::new(consumer)),
            events,
            buffered: VecDeque::new(),
            assignment: BTreeSet::new(),
            paused: BTreeSet::new(),
            held: VecDeque::new(),
            group: group.to_owned(),
            timeout,
        })
    }

    fn consumer(&self) -> Result<&Arc<StreamConsumer<GroupContext>>> {
        self.consumer
            .as_ref()
            .ok_or_else(|| Error::Group(format!("consumer of group {} is closed", self.group)))
    }

    /// Returns `event` to the caller, keeping [`Consumer::assignment`] in step.
    fn deliver(&mut self, event: ConsumerEvent) -> ConsumerEvent {
        match &event {
            ConsumerEvent::Assigned(tps) => {
                self.assignment.extend(tps.iter().cloned());
                // A partition paused, revoked and now assigned again starts unpaused.
                if let Some(consumer) = &self.consumer
                    && let Err(error) = consumer.resume(&partition_list(tps))
                {
                    tracing::debug!(%error, "resuming newly assigned partitions");
                }
            }
            ConsumerEvent::Revoked(tps) => {
                for tp in tps {
                    self.assignment.remove(tp);
                    self.paused.remove(tp);
                }
                self.held.retain(|r| !tps.contains(&r.topic_partition()));
            }
            ConsumerEvent::Record(_) => {}
        }
        event
    }

    fn not_assigned(&self, tp: &TopicPartition) -> Error {
        Error::Group(format!(
            "{}/{} is not assigned to this member of group {}",
            tp.topic, tp.partition, self.group
        ))
    }
}

fn pop(events: &EventQueue) -> Option<ConsumerEvent> {
    events.lock().unwrap_or_else(PoisonError::into_inner).pop_front()
}

/// Retryable seek failures: the partition's fetcher has not started yet (right after
/// an assignment, while librdkafka still looks up the committed offset) or is stopping.
fn seek_not_ready(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::State | RDKafkaErrorCode::PreviousInProgress)
}

fn commit_error(group: &str, error: &KafkaError) -> Error {
    match error.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::FencedInstanceId
            | RDKafkaErrorCode::StaleMemberEpoch
            | RDKafkaErrorCode::UnknownTopicOrPartition,
        ) => Error::Group(format!("commit for group {group}: {error}")),
        Some(code) if is_unavailable(code) => {
            Error::Unavailable(format!("commit for group {group}: {error}"))
        }
        _ => Error::Other(format!("commit for group {group}: {error}")),
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, timeout: Duration) -> Result<Option<ConsumerEvent>> {
        let deadline = tokio::time::Instant::now() + timeout;
        while let Some(event) = self.next_event(deadline).await? {
            match event {
                // Fetched before the pause took effect: keep it for the resume.
                ConsumerEvent::Record(record) if self.paused.contains(&record.topic_partition()) => {
                    self.held.push_back(record);
                }
                event => return Ok(Some(event)),
            }
        }
        Ok(None)
    }

    async fn commit(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        self.commit_offsets(offsets).await
    }

    async fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.seek_partition(tp, offset).await
    }

    async fn pause(&mut self, tps: &[TopicPartition]) -> Result<()> {
        if let Some(tp) = tps.iter().find(|tp| !self.assignment.contains(*tp)) {
            return Err(self.not_assigned(tp));
        }
        let list = partition_list(tps);
        self.consumer()?
            .pause(&list)
            .map_err(|e| map_error(&format!("pause in group {}", self.group), &e))?;
        self.paused.extend(tps.iter().cloned());
        Ok(())
    }

    async fn resume(&mut self, tps: &[TopicPartition]) -> Result<()> {
        let tps: Vec<TopicPartition> = tps.iter().filter(|tp| self.paused.contains(*tp)).cloned().collect();
        if tps.is_empty() {
            return Ok(());
        }
        let list = partition_list(&tps);
        self.consumer()?
            .resume(&list)
            .map_err(|e| map_error(&format!("resume in group {}", self.group), &e))?;
        for tp in &tps {
            self.paused.remove(tp);
        }
        // What was held goes out before anything fetched after the resume.
        let (resumed, still_held): (VecDeque<Record>, VecDeque<Record>) =
            std::mem::take(&mut self.held).into_iter().partition(|r| tps.contains(&r.topic_partition()));
        self.held = still_held;
        for record in resumed.into_iter().rev() {
            self.buffered.push_front(ConsumerEvent::Record(record));
        }
        Ok(())
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.iter().cloned().collect()
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        self.close_consumer().await
    }
}

fn partition_list(tps: &[TopicPartition]) -> TopicPartitionList {
    let mut list = TopicPartitionList::with_capacity(tps.len());
    for tp in tps {
        list.add_partition(&tp.topic, tp.partition);
    }
    list
}

impl KafkaConsumer {
    /// The next event, buffered or from librdkafka, paused or not; `None` at `deadline`.
    async fn next_event(&mut self, deadline: tokio::time::Instant) -> Result<Option<ConsumerEvent>> {
        if let Some(event) = self.buffered.pop_front() {
            return Ok(Some(self.deliver(event)));
        }
        loop {
            let consumer = Arc::clone(self.consumer()?);
            let events = Arc::clone(&self.events);
            let next = {
                let mut stream = consumer.stream();
                // Polling the stream is what runs the rebalance callback; look at the
                // queue after each poll so an assignment change is returned at once
                // rather than when the next record happens to arrive.
                let next = futures::future::poll_fn(|cx| {
                    if let Some(event) = pop(&events) {
                        return Poll::Ready(Next::Event(event));
                    }
                    match stream.poll_next_unpin(cx) {
                        Poll::Ready(Some(Ok(message))) => Poll::Ready(Next::Record(to_record(&message))),
                        Poll::Ready(Some(Err(error))) => Poll::Ready(Next::Failed(error)),
                        Poll::Ready(None) => unreachable!("rdkafka message streams never end"),
                        Poll::Pending => pop(&events).map_or(Poll::Pending, |e| Poll::Ready(Next::Event(e))),
                    }
                });
                tokio::time::timeout_at(deadline, next).await
            };
            let event = match next {
                Err(_elapsed) => return Ok(None),
                Ok(Next::Event(event)) => event,
                Ok(Next::Record(record)) => {
                    // Changes queued before this record came out of librdkafka go first.
                    let mut queued = self.events.lock().unwrap_or_else(PoisonError::into_inner);
                    if queued.is_empty() {
                        ConsumerEvent::Record(record)
                    } else {
                        self.buffered.extend(queued.drain(..));
                        drop(queued);
                        self.buffered.push_back(ConsumerEvent::Record(record));
                        self.buffered.pop_front().expect("just filled")
                    }
                }
                Ok(Next::Failed(KafkaError::MessageConsumptionFatal(code))) => {
                    return Err(Error::Other(format!("consumer of group {} failed: {code}", self.group)));
                }
                Ok(Next::Failed(error)) => {
                    // librdkafka reports transient trouble (a broker going away, a
                    // subscribed topic not there yet) and recovers by itself.
                    tracing::warn!(group = %self.group, %error, "consumer error, continuing");
                    continue;
                }
            };
            return Ok(Some(self.deliver(event)));
        }
    }

    async fn commit_offsets(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        if offsets.is_empty() {
            // librdkafka would read an empty list as "commit the current positions".
            return Ok(());
        }
        if let Some((tp, _)) = offsets.iter().find(|(tp, _)| !self.assignment.contains(tp)) {
            return Err(self.not_assigned(tp));
        }
        let mut list = TopicPartitionList::with_capacity(offsets.len());
        for (tp, offset) in offsets {
            list.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset)).map_err(|e| {
                Error::Other(format!("cannot commit {offset} for {}/{}: {e}", tp.topic, tp.partition))
            })?;
        }
        let consumer = Arc::clone(self.consumer()?);
        let group = self.group.clone();
        // A synchronous commit returns once the group coordinator has stored the offsets.
        blocking("commit", move || {
            consumer.commit(&list, CommitMode::Sync).map_err(|e| commit_error(&group, &e))
        })
        .await
    }

    async fn seek_partition(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        if !self.assignment.contains(tp) {
            return Err(self.not_assigned(tp));
        }
        // Records of the partition already taken from librdkafka predate the seek.
        self.buffered.retain(
            |e| !matches!(e, ConsumerEvent::Record(r) if r.topic == tp.topic && r.partition == tp.partition),
        );
        self.held.retain(|r| r.topic != tp.topic || r.partition != tp.partition);

        // Right after an assignment librdkafka refuses seeks ("Local: Erroneous state")
        // until the partition's fetcher has started, which it does once the committed
        // offset is known, typically one round trip later. Retrying until then, bounded
        // by the operation timeout, is safe: a seek bumps the partition's op version, so
        // whatever was fetched from the committed offset in between is discarded.
        // Re-assigning the partition with an explicit offset instead would touch
        // librdkafka's group state from outside the rebalance callback and race with the
        // next rebalance.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut backoff = Duration::from_millis(5);
        let what = format!("seek {}/{} to {offset} in group {}", tp.topic, tp.partition, self.group);
        loop {
            let consumer = Arc::clone(self.consumer()?);
            let list = super::single_partition(tp, Offset::Offset(offset))?;
            let timeout = self.timeout;
            let answer = blocking("seek", move || {
                consumer.seek_partitions(list, timeout).map_err(|e| Error::Other(e.to_string()))
            })
            .await
            .map_err(|e| Error::Other(format!("{what}: {e}")))?;
            let element = answer
                .elements()
                .into_iter()
                .find(|e| e.topic() == tp.topic && e.partition() == tp.partition);
            let result = element.map_or(Ok(()), |e| e.error());
            match result {
                Ok(()) => return Ok(()),
                Err(error) => match error.rdkafka_error_code() {
                    Some(code) if seek_not_ready(code) && tokio::time::Instant::now() < deadline => {
                        tracing::debug!(%what, %error, "partition not fetching yet, retrying seek");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_millis(200));
                    }
                    _ => return Err(map_error(&what, &error)),
                },
            }
        }
    }

    async fn close_consumer(&mut self) -> Result<()> {
        if let Some(consumer) = self.consumer.take() {
            // Dropping the last handle closes the consumer: librdkafka revokes the
            // assignment, sends LeaveGroup and waits for it, so the group rebalances at
            // once instead of after the session timeout. That wait blocks.
            blocking("close", move || {
                drop(consumer);
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        // Closing blocks on the broker; keep it off the async executor when there is one.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || drop(consumer));
            }
            Err(_) => drop(consumer),
        }
    }
}
