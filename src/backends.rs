//! Opening the database and event log of either deployment.

use std::sync::Arc;

use anyhow::Context as _;
use nearline_eventlog::durable::{DurableLog, DurableOptions, FileLock};
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::{Error as EventLogError, EventLog, TopicSpec, topics};
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
    kafka_at(config, &config.kafka.bootstrap_servers)
}

/// Connects to the Kafka cluster at `bootstrap_servers`, otherwise as configured.
pub(crate) fn kafka_at(config: &Config, bootstrap_servers: &str) -> anyhow::Result<KafkaLog> {
    let mut kafka = KafkaConfig::new(bootstrap_servers.to_owned());
    kafka.client_id = config.kafka.client_id.clone();
    kafka.timeout = config.kafka.timeout;
    kafka.session_timeout = config.kafka.session_timeout;
    KafkaLog::connect(kafka).with_context(|| format!("connecting to Kafka at {bootstrap_servers}"))
}

/// The database and event log of the running deployment.
#[derive(Debug)]
pub(crate) struct Backends {
    pub(crate) database: Database,
    pub(crate) log: Arc<dyn EventLog>,
    /// The embedded log again, to be closed once nothing publishes any more.
    durable: Option<DurableLog>,
    /// Keeps a second process off the embedded SQLite file while this one runs.
    _sqlite_lock: Option<FileLock>,
}

impl Backends {
    /// The embedded log, when this is the embedded deployment.
    pub(crate) fn durable(&self) -> Option<&DurableLog> {
        self.durable.as_ref()
    }

    /// Closes what needs closing: the embedded log writes out what is queued (already
    /// nothing, once every publisher got its answer) and releases the data directory.
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        if let Some(log) = self.durable {
            log.close().await.with_context(|| format!("closing the event log in {}", log.dir().display()))?;
            tracing::info!(dir = %log.dir().display(), "embedded event log closed");
        }
        Ok(())
    }
}

/// Opens the storage and log of the chosen deployment.
///
/// Embedded: first the durable log, whose first act is to lock its directory, then a
/// lock on the SQLite file (each process must have both to itself, whether or not they
/// sit together), so a second process fails before it touches either; then the topics
/// and the SQLite file (migrated here, since there is no separate step). Distributed:
/// Postgres (which `nearline migrate` prepared) and Kafka.
pub(crate) async fn open(config: &Config, embedded: bool) -> anyhow::Result<Backends> {
    if embedded {
        let embedded = &config.embedded;
        let dir = embedded.log_dir();
        let options = DurableOptions {
            segment_bytes: embedded.segment_bytes,
            retention: embedded.retention,
            retention_bytes: embedded.retention_bytes,
            cache_bytes: embedded.cache_bytes,
            ..DurableOptions::new(dir.clone())
        };
        // Locks the directory before anything else, then recovers the segment files:
        // blocking work.
        let log = tokio::task::spawn_blocking(move || DurableLog::open(options))
            .await?
            .with_context(|| format!("opening the embedded event log in {}", dir.display()))?;
        // The SQLite file too, in case it is shared under another data_dir.
        let path = &embedded.sqlite_path;
        let sqlite_lock = if path.starts_with(':') {
            None // `:memory:`: nothing on disk to share
        } else {
            let what = format!("the embedded SQLite database {path}");
            let lock = nearline_eventlog::durable::lock_beside(std::path::Path::new(path), &what);
            Some(lock.context("another nearline process uses this SQLite file")?)
        };
        let fresh =
            matches!(log.partition_count(topics::IMPRESSIONS).await, Err(EventLogError::UnknownTopic(_)));
        log.create_topics(&topic_specs(embedded.partitions, 1)).await?;

        let pool = nearline_storage::connect_sqlite(path).await?;
        let database = Database::Sqlite(pool);
        database.migrate().await?;
        if fresh {
            // Offsets stored against an earlier log (a deleted data directory, or the
            // in-memory log of older versions) point at records this one never had;
            // the counts themselves are kept (they are idempotent sets).
            database.forget_stream_progress().await?;
        }
        tracing::info!(
            sqlite = %path,
            log = %dir.display(),
            partitions = embedded.partitions,
            new_log = fresh,
            "embedded storage and durable event log ready"
        );
        Ok(Backends { database, log: Arc::new(log.clone()), durable: Some(log), _sqlite_lock: sqlite_lock })
    } else {
        let pool = nearline_storage::connect_postgres(&config.database, false).await?;
        let log = kafka(config)?;
        tracing::info!(
            database = %config.database.url.masked(),
            kafka = %config.kafka.bootstrap_servers,
            "connected to Postgres and Kafka"
        );
        Ok(Backends {
            database: Database::Postgres(pool),
            log: Arc::new(log),
            durable: None,
            _sqlite_lock: None,
        })
    }
}
