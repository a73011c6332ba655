//! The event log on Kafka, through librdkafka (`rdkafka`, bundled static build).
//!
//! [`KafkaLog`] owns an idempotent producer (renewed after failed deliveries, see
//! [`KafkaLog::renew_producer`]), one admin client and one group-less
//! consumer for metadata, watermarks and offsets-for-times; [`KafkaLog::subscribe`]
//! creates a [`KafkaConsumer`] per group member and [`KafkaLog::reader`] a group-less
//! [`KafkaReader`]. librdkafka calls that block (metadata,
//! watermarks, committed offsets, synchronous commits, seeks, closing a consumer) run
//! on tokio's blocking pool so they never stall the async executor.

mod consumer;
mod reader;
mod times;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

pub use self::consumer::KafkaConsumer;
pub use self::reader::KafkaReader;
use crate::{Consumer, Delivery, Error, EventLog, OutgoingRecord, Reader, Result, TopicPartition, TopicSpec};

/// How to reach the Kafka cluster.
#[derive(Clone)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list (`bootstrap.servers`).
    pub bootstrap_servers: String,
    /// Client id the brokers log and quota by (`client.id`).
    pub client_id: String,
    /// Bound on every broker request and operation, and on a record's delivery.
    pub timeout: Duration,
    /// How long a group member may go unheard before its partitions move on.
    pub session_timeout: Duration,
    /// librdkafka properties applied last, over nearline's settings (TLS, SASL, tuning).
    pub extra: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Settings for `bootstrap_servers` with client id `nearline` and a 30 s timeout.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: "nearline".to_owned(),
            timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(45),
            extra: Vec::new(),
        }
    }

    /// The properties every client shares: servers, id and the caller's overrides.
    fn client_config(&self, defaults: &[(&str, String)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id)
            .set("socket.timeout.ms", millis(self.timeout));
        for (key, value) in defaults {
            config.set(*key, value);
        }
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Overrides carry SASL and TLS secrets; show which keys are set, not their values.
        let extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(key, value)| {
                let secret = ["password", "secret", "token", "key"].iter().any(|word| key.contains(word));
                (key.as_str(), if secret { "***" } else { value.as_str() })
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("client_id", &self.client_id)
            .field("timeout", &self.timeout)
            .field("extra", &extra)
            .finish()
    }
}

fn millis(duration: Duration) -> String {
    duration.as_millis().max(1).to_string()
}

/// Sends librdkafka's log lines and client errors to `tracing` instead of the `log` crate.
#[derive(Debug, Clone, Copy, Default)]
struct TracingContext;

impl ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "librdkafka client error");
    }
}

impl ConsumerContext for TracingContext {}

fn log_to_tracing(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(facility, "librdkafka: {message}");
        }
        RDKafkaLogLevel::Warning => tracing::warn!(facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(facility, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(facility, "librdkafka: {message}"),
    }
}

/// The event log on a Kafka cluster.
pub struct KafkaLog {
    config: KafkaConfig,
    producer: RwLock<Arc<Producer>>,
    admin: AdminClient<TracingContext>,
    /// Group-less consumer for metadata, watermarks and offsets-for-times; shared with
    /// blocking tasks.
    meta: Arc<BaseConsumer<TracingContext>>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog").field("config", &self.config).finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Creates the clients. librdkafka connects lazily, so an unreachable cluster shows
    /// up on first use as [`Error::Unavailable`], not here.
    ///
    /// The producer partitions with librdkafka's `murmur2_random`, the Java client's
    /// default (murmur2 of the key), and uses it for every topic: topics with the same
    /// partition count are therefore co-partitioned, and a record lands where
    /// [`crate::partition_for_key`] (and the in-process log) says it does.
    pub fn connect(config: KafkaConfig) -> Result<Self> {
        let producer = RwLock::new(Arc::new(new_producer(&config)?));
        let admin = config
            .client_config(&[])
            .create_with_context(TracingContext)
            .map_err(|e| client_error("admin", e))?;
        let meta = config
            .client_config(&[("allow.auto.create.topics", "false".to_owned())])
            .create_with_context(TracingContext)
            .map_err(|e| client_error("metadata consumer", e))?;
        Ok(Self { config, producer, admin, meta: Arc::new(meta) })
    }

    fn current_producer(&self) -> Arc<Producer> {
        Arc::clone(&self.producer.read().expect("producer lock"))
    }

    /// Replaces `failed` with a fresh producer, unless another caller already did.
    ///
    /// After deliveries time out (say, while the broker was down) librdkafka's idempotent
    /// producer must bump its epoch before it may send again; a broker that refuses the
    /// bump (tansu 0.6 answers it with an unknown error) leaves that producer stuck for
    /// good. A new producer gets a new producer id instead, so the service recovers on
    /// its own once the broker is back. Nothing acknowledged is at stake: a failed
    /// publish was reported as failed, and its caller told its client so.
    fn renew_producer(&self, failed: Arc<Producer>) {
        let mut current = self.producer.write().expect("producer lock");
        if !Arc::ptr_eq(&current, &failed) {
            return;
        }
        match new_producer(&self.config) {
            Ok(fresh) => {
                let old = std::mem::replace(&mut *current, Arc::new(fresh));
                drop(current);
                tracing::warn!("deliveries failed; publishing through a new Kafka producer from now on");
                // Dropping a producer purges and flushes it, which blocks.
                tokio::task::spawn_blocking(move || drop((old, failed)));
            }
            Err(error) => tracing::error!(%error, "cannot create a new Kafka producer; keeping the old one"),
        }
    }

    /// Properties of a group member's consumer.
    fn consumer_config(&self, group: &str) -> ClientConfig {
        self.config.client_config(&[
            ("group.id", group.to_owned()),
            ("enable.auto.commit", "false".to_owned()),
            ("enable.auto.offset.store", "false".to_owned()),
            ("auto.offset.reset", "earliest".to_owned()),
            ("partition.assignment.strategy", "cooperative-sticky".to_owned()),
            ("session.timeout.ms", millis(self.config.session_timeout)),
            ("allow.auto.create.topics", "false".to_owned()),
        ])
    }

    /// Waits until the cluster's metadata lists `topic` with `partitions` partitions,
    /// so a caller can publish or ask for its partition count right after creating it.
    async fn await_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let mut backoff = Duration::from_millis(10);
        loop {
            match self.partition_count(topic).await {
                Ok(actual) if actual == partitions => return Ok(()),
                Ok(actual) => {
                    return Err(Error::PartitionMismatch {
                        topic: topic.to_owned(),
                        actual,
                        expected: partitions,
                    });
                }
                Err(Error::UnknownTopic(_)) if tokio::time::Instant::now() < deadline => {
                    // Metadata propagates to every broker asynchronously after creation.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                Err(Error::UnknownTopic(_)) => {
                    return Err(Error::Unavailable(format!(
                        "topic {topic} was created but is not in the metadata after {:?}",
                        self.config.timeout
                    )));
                }
                Err(other) => return Err(other),
            }
        }
    }
}

type Producer = FutureProducer<TracingContext>;

/// The idempotent producer: acks from all in-sync replicas, ordered retries, and the
/// Java client's partitioner so every topic is co-partitioned by key.
fn new_producer(config: &KafkaConfig) -> Result<Producer> {
    config
        .client_config(&[
            ("enable.idempotence", "true".to_owned()),
            ("acks", "all".to_owned()),
            ("linger.ms", "5".to_owned()),
            ("message.timeout.ms", millis(config.timeout)),
            ("request.timeout.ms", millis(config.timeout)),
            ("partitioner", "murmur2_random".to_owned()),
        ])
        .create_with_context(TracingContext)
        .map_err(|e| client_error("producer", e))
}

/// Runs a blocking librdkafka call on tokio's blocking pool.
async fn blocking<T, F>(what: &'static str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Other(format!("{what}: blocking task failed: {e}")))?
}

fn client_error(which: &str, error: KafkaError) -> Error {
    Error::Other(format!("cannot create Kafka {which} client: {error}"))
}

/// Whether a librdkafka error means the cluster could not be reached or did not answer
/// in time, as opposed to refusing the request.
fn is_unavailable(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::MessageTimedOut
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::TimedOutQueue
            | RDKafkaErrorCode::WaitingForCoordinator
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::BrokerNotAvailable
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::CoordinatorLoadInProgress
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::NotCoordinator
    )
}

fn is_unknown_topic(code: RDKafkaErrorCode) -> bool {
    matches!(code, RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
}

/// Maps a librdkafka error of an operation described by `what` (which names the topic).
fn map_error(what: &str, error: &KafkaError) -> Error {
    match error.rdkafka_error_code() {
        Some(code) if is_unavailable(code) => Error::Unavailable(format!("{what}: {error}")),
        _ => Error::Other(format!("{what}: {error}")),
    }
}

/// Like [`map_error`], but an unknown topic or partition is [`Error::UnknownTopic`].
fn map_topic_error(topic: &str, what: &str, error: &KafkaError) -> Error {
    match error.rdkafka_error_code() {
        Some(code) if is_unknown_topic(code) => Error::UnknownTopic(topic.to_owned()),
        _ => map_error(what, error),
    }
}

fn offset_value(offset: Offset) -> Option<i64> {
    match offset {
        Offset::Offset(value) if value >= 0 => Some(value),
        _ => None,
    }
}

fn single_partition(tp: &TopicPartition, offset: Offset) -> Result<TopicPartitionList> {
    let mut list = TopicPartitionList::with_capacity(1);
    list.add_partition_offset(&tp.topic, tp.partition, offset)
        .map_err(|e| Error::Other(format!("{}/{}: {e}", tp.topic, tp.partition)))?;
    Ok(list)
}

/// The single element's offset of a one-partition answer, or its error.
fn single_offset(tp: &TopicPartition, what: &str, list: &TopicPartitionList) -> Result<Offset> {
    let elements = list.elements();
    let element = elements
        .iter()
        .find(|e| e.topic() == tp.topic && e.partition() == tp.partition)
        .ok_or_else(|| Error::Other(format!("{what}: no answer for {}/{}", tp.topic, tp.partition)))?;
    element.error().map_err(|e| map_topic_error(&tp.topic, what, &e))?;
    Ok(element.offset())
}

/// Partition count of `topic` from the cluster's metadata. Blocks.
fn fetch_partition_count(meta: &BaseConsumer<TracingContext>, topic: &str, timeout: Duration) -> Result<i32> {
    let what = format!("metadata of topic {topic}");
    let metadata =
        meta.fetch_metadata(Some(topic), timeout).map_err(|e| map_topic_error(topic, &what, &e))?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(Error::UnknownTopic(topic.to_owned()));
    };
    if let Some(error) = found.error() {
        let code = RDKafkaErrorCode::from(error);
        return Err(if is_unknown_topic(code) {
            Error::UnknownTopic(topic.to_owned())
        } else {
            map_error(&what, &KafkaError::MetadataFetch(code))
        });
    }
    match found.partitions().len() {
        0 => Err(Error::UnknownTopic(topic.to_owned())),
        n => Ok(i32::try_from(n).expect("Kafka partition counts are i32")),
    }
}

/// Low and high watermarks of `tp`. Blocks.
fn fetch_watermarks(
    meta: &BaseConsumer<TracingContext>,
    tp: &TopicPartition,
    timeout: Duration,
) -> Result<(i64, i64)> {
    let what = format!("watermarks of {}/{}", tp.topic, tp.partition);
    meta.fetch_watermarks(&tp.topic, tp.partition, timeout).map_err(|error| {
        match error.rdkafka_error_code() {
            // librdkafka says "unknown partition" whether the partition or the whole
            // topic is missing; the metadata tells which.
            Some(RDKafkaErrorCode::UnknownPartition) => {
                match fetch_partition_count(meta, &tp.topic, timeout) {
                    Err(Error::UnknownTopic(topic)) => Error::UnknownTopic(topic),
                    _ => map_error(&what, &error),
                }
            }
            _ => map_topic_error(&tp.topic, &what, &error),
        }
    })
}

#[async_trait]
impl EventLog for KafkaLog {
    async fn create_topics(&self, topics: &[TopicSpec]) -> Result<()> {
        if topics.is_empty() {
            return Ok(());
        }
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(t.replication)))
            .collect();
        let options = AdminOptions::new()
            .request_timeout(Some(self.config.timeout))
            .operation_timeout(Some(self.config.timeout));
        let results =
            self.admin.create_topics(&new, &options).await.map_err(|e| map_error("create topics", &e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    let error = KafkaError::AdminOp(code);
                    return Err(if is_unavailable(code) {
                        Error::Unavailable(format!("create topic {topic}: {error}"))
                    } else {
                        Error::Other(format!("create topic {topic}: {error}"))
                    });
                }
            }
        }
        // Also checks that topics that already existed have the partition count asked for.
        for topic in topics {
            self.await_topic(&topic.name, topic.partitions).await?;
        }
        Ok(())
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        let meta = Arc::clone(&self.meta);
        let timeout = self.config.timeout;
        let topic = topic.to_owned();
        blocking("partition count", move || fetch_partition_count(&meta, &topic, timeout)).await
    }

    async fn publish(&self, records: Vec<OutgoingRecord>) -> Result<Vec<Delivery>> {
        // Every send is queued before any delivery is awaited, in input order, so the
        // batch goes out together and records of one partition keep their order
        // (idempotence keeps it across retries).
        let producer = self.current_producer();
        let sends = records.iter().map(|record| {
            let mut future =
                FutureRecord::to(&record.topic).key(&record.key[..]).payload(&record.payload[..]);
            if let Some(timestamp) = record.timestamp_ms {
                future = future.timestamp(timestamp);
            }
            producer.send(future, self.config.timeout)
        });
        let results = futures::future::join_all(sends).await;
        let deliveries: Result<Vec<Delivery>> = results
            .into_iter()
            .zip(&records)
            .map(|(result, record)| match result {
                Ok(delivery) => Ok(Delivery { partition: delivery.partition, offset: delivery.offset }),
                Err((error, _)) => {
                    Err(map_topic_error(&record.topic, &format!("publish to topic {}", record.topic), &error))
                }
            })
            .collect();
        // A missing topic is the caller's problem; anything else may be the producer's.
        if matches!(deliveries, Err(Error::Unavailable(_) | Error::Other(_))) {
            self.renew_producer(producer);
        }
        deliveries
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Consumer>> {
        let consumer =
            KafkaConsumer::subscribe(&self.consumer_config(group), group, topics, self.config.timeout)?;
        Ok(Box::new(consumer))
    }

    async fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64)> {
        let meta = Arc::clone(&self.meta);
        let timeout = self.config.timeout;
        let tp = tp.clone();
        blocking("watermarks", move || fetch_watermarks(&meta, &tp, timeout)).await
    }

    async fn offset_for_time(&self, tp: &TopicPartition, timestamp_ms: i64) -> Result<Option<i64>> {
        let meta = Arc::clone(&self.meta);
        let probe = self.consumer_config(&format!("{}-offset-probe", self.config.client_id));
        let timeout = self.config.timeout;
        let tp = tp.clone();
        blocking("offset for time", move || times::offset_for_time(&meta, &probe, &tp, timestamp_ms, timeout))
            .await
    }

    async fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Result<Option<i64>> {
        // A consumer with the group's id that never subscribes: it can read the group's
        // offsets without joining, so it causes no rebalance.
        let reader: BaseConsumer<TracingContext> = self
            .consumer_config(group)
            .create_with_context(TracingContext)
            .map_err(|e| client_error("offset reader", e))?;
        let timeout = self.config.timeout;
        let tp = tp.clone();
        let group = group.to_owned();
        blocking("committed offset", move || {
            let what = format!("offset of group {group} for {}/{}", tp.topic, tp.partition);
            let query = single_partition(&tp, Offset::Invalid)?;
            let answer = reader
                .committed_offsets(query, timeout)
                .map_err(|e| map_topic_error(&tp.topic, &what, &e))?;
            let offset = single_offset(&tp, &what, &answer)?;
            // Dropped here, on the blocking pool: closing a group consumer waits on the broker.
            drop(reader);
            Ok(offset_value(offset))
        })
        .await
    }

    async fn reader(&self) -> Result<Box<dyn Reader>> {
        let group = reader::dummy_group(&self.config.client_id);
        // The group's offsets are never read (every assignment has an explicit offset)
        // nor written; `earliest` only matters if retention overtakes a clamped start.
        let config = self.config.client_config(&[
            ("group.id", group.clone()),
            ("enable.auto.commit", "false".to_owned()),
            ("enable.auto.offset.store", "false".to_owned()),
            ("auto.offset.reset", "earliest".to_owned()),
            ("allow.auto.create.topics", "false".to_owned()),
        ]);
        let reader = KafkaReader::create(&config, Arc::clone(&self.meta), group, self.config.timeout)?;
        Ok(Box::new(reader))
    }
}
