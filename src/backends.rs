//! Opening the database and event log of either deployment.

use std::sync::Arc;

use anyhow::Context as _;
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::memory::MemoryLog;
use nearline_eventlog::{EventLog, TopicSpec, topics};
use nearline_runtime::Config;
use nearline_storage::Database;

/// The topics every deployment has, with the partition layout of its configuration.
pub(crate) fn topic_specs(partitions: i32, replication: i32) -> Vec<TopicSpec> {
    [topics::IMPRESSIONS, topics::PLAYS, topics::OUTCOMES, topics::LATE]
        .into_iter()
        .map(|name| TopicSpec { name: name.to_string(), partitions, replication })
        .collect()
}

/// Connects to the configured Kafka.
pub(crate) fn kafka(config: &Config) -> anyhow::Result<KafkaLog> {
    let mut kafka = KafkaConfig::new(config.kafka.bootstrap_servers.clone());
    kafka.client_id = config.kafka.client_id.clone();
    kafka.timeout = config.kafka.timeout;
    kafka.session_timeout = config.kafka.session_timeout;
    KafkaLog::connect(kafka)
        .with_context(|| format!("connecting to Kafka at {}", config.kafka.bootstrap_servers))
}

/// Opens the storage and log of the chosen deployment.
///
/// Embedded: the SQLite file (migrated here, since there is no separate step) and a
/// fresh in-process log with nearline's topics. Distributed: Postgres (which `nearline
/// migrate` prepared) and Kafka.
pub(crate) async fn open(config: &Config, embedded: bool) -> anyhow::Result<(Database, Arc<dyn EventLog>)> {
    if embedded {
        let path = &config.embedded.sqlite_path;
        let pool = nearline_storage::connect_sqlite(path).await?;
        let database = Database::Sqlite(pool);
        database.migrate().await?;
        // The in-process log starts empty on every run, so offsets stored by an earlier
        // run point nowhere; the counts themselves are kept (they are idempotent sets).
        database.forget_stream_progress().await?;
        let log = MemoryLog::new();
        log.create_topics(&topic_specs(config.embedded.partitions, 1)).await?;
        tracing::info!(sqlite = %path, partitions = config.embedded.partitions, "embedded storage and in-process log ready");
        Ok((database, Arc::new(log)))
    } else {
        let pool = nearline_storage::connect_postgres(&config.database, false).await?;
        let log = kafka(config)?;
        tracing::info!(
            database = %config.database.url.masked(),
            kafka = %config.kafka.bootstrap_servers,
            "connected to Postgres and Kafka"
        );
        Ok((Database::Postgres(pool), Arc::new(log)))
    }
}
