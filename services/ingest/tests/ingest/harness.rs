//! Starting the service on free ports, creating topics, building events and reading
//! back what landed on the log.

use std::sync::Arc;
use std::time::Duration;

use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::memory::MemoryLog;
use nearline_eventlog::{ConsumerEvent, EventLog, Record, TopicPartition, TopicSpec};
use nearline_ingest::Topics;
use nearline_runtime::Config;
use nearline_runtime::config::Secret;
use nearline_runtime::server::Listeners;
use nearline_storage::Database;
use nearline_testkit::{unique_name, wait_for};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A configuration that binds free ports and drains quickly.
pub(crate) fn config() -> Config {
    let mut config = Config::default();
    config.ingest.http_port = 0;
    config.ingest.grpc_port = 0;
    config.ingest.grace_period = Duration::from_secs(5);
    config.ingest.default_region = "test-region".into();
    config
}

/// `config` requiring `token`.
pub(crate) fn with_token(mut config: Config, token: &str) -> Config {
    config.auth.tokens = vec![Secret::new(token)];
    config
}

/// A Kafka log on the test broker (or `bootstrap`) with operations bounded by `timeout`.
pub(crate) fn kafka(bootstrap: &str, timeout: Duration) -> Arc<dyn EventLog> {
    let mut config = KafkaConfig::new(bootstrap);
    config.client_id = "nearline-ingest-tests".into();
    config.timeout = timeout;
    Arc::new(KafkaLog::connect(config).expect("Kafka clients are created lazily"))
}

/// The test broker's log.
pub(crate) fn test_kafka() -> Arc<dyn EventLog> {
    kafka(&nearline_testkit::kafka_bootstrap(), Duration::from_secs(30))
}

/// An in-process log.
pub(crate) fn memory() -> Arc<dyn EventLog> {
    Arc::new(MemoryLog::new())
}

/// Fresh topics with these partition counts.
pub(crate) async fn topics(log: &Arc<dyn EventLog>, impressions: i32, plays: i32) -> Topics {
    let topics = Topics { impressions: unique_name("impressions"), plays: unique_name("plays") };
    log.create_topics(&[
        TopicSpec { name: topics.impressions.clone(), partitions: impressions, replication: 1 },
        TopicSpec { name: topics.plays.clone(), partitions: plays, replication: 1 },
    ])
    .await
    .expect("topics are created");
    topics
}

/// A migrated SQLite database in memory.
pub(crate) async fn sqlite() -> Database {
    let database = Database::Sqlite(nearline_storage::connect_sqlite(":memory:").await.unwrap());
    database.migrate().await.unwrap();
    database
}

/// A fresh, migrated Postgres database.
pub(crate) async fn postgres() -> Database {
    let test = nearline_testkit::TestDatabase::create().await;
    let mut config = nearline_runtime::config::DatabaseConfig::default();
    config.url = nearline_runtime::config::DatabaseUrl::new(test.url);
    let database = Database::Postgres(nearline_storage::connect_postgres(&config, false).await.unwrap());
    database.migrate().await.unwrap();
    database
}

/// A running service; stopped when dropped.
pub(crate) struct Service {
    /// `http://127.0.0.1:PORT`.
    pub(crate) http: String,
    /// `http://127.0.0.1:PORT` of the gRPC server.
    pub(crate) grpc: String,
    pub(crate) topics: Topics,
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) client: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<JoinHandle<nearline_ingest::Result<()>>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Service {
    /// Starts the service and waits until it is ready.
    pub(crate) async fn start(
        config: Config,
        database: Database,
        log: Arc<dyn EventLog>,
        topics: Topics,
    ) -> Service {
        let listeners = Listeners::bind(&config.ingest.server()).await.unwrap();
        let http = format!("http://{}", listeners.http_addr());
        let grpc = format!("http://{}", listeners.grpc_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(nearline_ingest::run_with_topics(
            Arc::new(config),
            database,
            Arc::clone(&log),
            topics.clone(),
            listeners,
            shutdown.clone(),
        ));
        let client = reqwest::Client::new();
        let readyz = format!("{http}/readyz");
        wait_for("the ingest service to be ready", Duration::from_secs(30), || {
            let (client, readyz) = (client.clone(), readyz.clone());
            async move { client.get(readyz).send().await.ok().filter(|r| r.status() == 200).map(drop) }
        })
        .await;
        Service { http, grpc, topics, log, client, shutdown, task: Some(task) }
    }

    /// Stops the service and returns how `run` ended.
    pub(crate) async fn stop(mut self) -> nearline_ingest::Result<()> {
        self.shutdown.cancel();
        self.task.take().unwrap().await.unwrap()
    }

    /// POSTs `body` to `/v1/events` as `content_type`.
    pub(crate) async fn post(&self, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/events", self.http))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs `{"events": events}`.
    pub(crate) async fn post_json(&self, events: &[Value]) -> reqwest::Response {
        self.post("application/json", serde_json::to_vec(&json!({ "events": events })).unwrap()).await
    }

    /// A gRPC client.
    pub(crate) async fn grpc_client(
        &self,
    ) -> nearline_proto::ingest::v1::ingest_service_client::IngestServiceClient<tonic::transport::Channel>
    {
        nearline_proto::ingest::v1::ingest_service_client::IngestServiceClient::connect(self.grpc.clone())
            .await
            .unwrap()
    }

    /// High watermarks of every partition of both topics, impressions first.
    pub(crate) async fn high_watermarks(&self) -> Vec<i64> {
        let mut marks = Vec::new();
        for topic in [&self.topics.impressions, &self.topics.plays] {
            let partitions = self.log.partition_count(topic).await.unwrap();
            for partition in 0..partitions {
                marks.push(
                    self.log.watermarks(&TopicPartition::new(topic.clone(), partition)).await.unwrap().1,
                );
            }
        }
        marks
    }
}

/// Milliseconds since the Unix epoch now.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A valid impression (the example, at the current time).
pub(crate) fn impression(event_id: &str, request_id: &str) -> Value {
    json!({
        "type": "impression", "event_id": event_id, "request_id": request_id, "member_id": "m1",
        "video_id": 80100172, "artwork_id": "a3", "canvas": "row", "country": "US", "device": "tv",
        "region": "us-east", "event_time": chrono::Utc::now().to_rfc3339(),
        "explore": {"policy": "billboard-ts", "model_version": "7", "propensity": 0.25, "explored": true,
                    "candidates": [80100172, 80057281]}
    })
}

/// A valid play (the example, at the current time in ms).
pub(crate) fn play(event_id: &str, request_id: &str) -> Value {
    json!({
        "type": "play", "event_id": event_id, "request_id": request_id, "member_id": "m1",
        "video_id": 80100172, "country": "US", "device": "tv", "region": "us-east",
        "event_time": now_ms(), "watch_seconds": 120
    })
}

/// Reads `count` records of `topic` from the beginning with a new consumer group.
pub(crate) async fn consume(log: &Arc<dyn EventLog>, topic: &str, count: usize) -> Vec<Record> {
    let mut consumer = log.subscribe(&unique_name("reader"), &[topic]).await.unwrap();
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while records.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "read {} of {count} records of {topic} before the deadline",
            records.len()
        );
        if let Some(ConsumerEvent::Record(record)) = consumer.poll(Duration::from_millis(500)).await.unwrap()
        {
            records.push(record);
        }
    }
    consumer.close().await.unwrap();
    records
}

/// The JSON body of a response.
pub(crate) async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}
