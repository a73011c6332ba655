//! The harness of the stream tests: its own topics and database per test, workers run
//! as tasks (a crash is an aborted task here; the process-level crash tests are in the
//! `nearline` crate's `tests/chaos.rs`), and the stored counts checked against the
//! reference.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nearline_attribution::batch::{self, Range};
use nearline_attribution::catalog::CatalogCache;
use nearline_attribution::service;
use nearline_attribution::status::StatusBoard;
use nearline_attribution::store::Store;
use nearline_attribution::topics::Topics;
use nearline_attribution::worker::{self, WorkerConfig};
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::memory::MemoryLog;
use nearline_eventlog::{EventLog, OutgoingRecord, TopicPartition, TopicSpec};
use nearline_proto::events::v1 as pb;
use nearline_runtime::config::{AttributionConfig, DatabaseConfig, DatabaseUrl};
use nearline_storage::Database;
use nearline_testkit::{TestDatabase, unique_name, wait_for};
use prost::Message as _;
use sqlx::AssertSqlSafe;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::workload::{Counts, Ev, PARTITIONS, reference};

/// Which event log and database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// The test broker (`NEARLINE_TEST_KAFKA`) and a fresh Postgres database.
    KafkaPostgres,
    /// The in-process log and a fresh SQLite file: the embedded deployment.
    InProcessSqlite,
}

/// Runs the named scenario `async fn name(backend: Backend)` once per backend, as
/// `name::kafka_postgres` and `name::in_process_sqlite`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn kafka_postgres() {
                super::$name($crate::harness::Backend::KafkaPostgres).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn in_process_sqlite() {
                super::$name($crate::harness::Backend::InProcessSqlite).await
            }
        }
    )*};
}
pub(crate) use on_both_backends;

/// Topics of their own, a fresh database, and workers spawned as tasks on them.
pub(crate) struct Harness {
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) topics: Topics,
    pub(crate) config: WorkerConfig,
    pub(crate) store: Store,
    pub(crate) database: Database,
    pub(crate) catalog: CatalogCache,
    published: BTreeMap<(String, i32), i64>,
    /// Keeps the Postgres test database alive (dropped with the harness).
    _postgres: Option<TestDatabase>,
}

impl Harness {
    /// A harness on `backend`.
    pub(crate) async fn on(backend: Backend) -> Harness {
        let name = unique_name("attr");
        let (log, database, postgres): (Arc<dyn EventLog>, Database, Option<TestDatabase>) = match backend {
            Backend::KafkaPostgres => {
                let log =
                    KafkaLog::connect(KafkaConfig::new(nearline_testkit::kafka_bootstrap())).expect("broker");
                let test_db = TestDatabase::create().await;
                let db_config = DatabaseConfig {
                    url: DatabaseUrl::new(test_db.url.clone()),
                    ..DatabaseConfig::default()
                };
                let pool = nearline_storage::connect_postgres(&db_config, false).await.expect("postgres");
                (Arc::new(log), Database::Postgres(pool), Some(test_db))
            }
            Backend::InProcessSqlite => {
                let path = std::env::temp_dir().join(format!("{name}.sqlite"));
                let pool = nearline_storage::connect_sqlite(path.to_str().expect("utf-8 path"))
                    .await
                    .expect("sqlite");
                (Arc::new(MemoryLog::new()), Database::Sqlite(pool), None)
            }
        };
        database.migrate().await.expect("migrate");
        let topics = Topics {
            impressions: format!("{name}.impressions"),
            plays: format!("{name}.plays"),
            outcomes: format!("{name}.outcomes"),
            late: format!("{name}.late"),
            mirrored_regions: Vec::new(),
        };
        let specs: Vec<_> = [&topics.impressions, &topics.plays, &topics.outcomes, &topics.late]
            .into_iter()
            .map(|t| TopicSpec { name: t.clone(), partitions: PARTITIONS, replication: 1 })
            .collect();
        log.create_topics(&specs).await.expect("topics");

        let attribution =
            AttributionConfig { consumer_group: format!("{name}.group"), ..AttributionConfig::default() };
        let config = WorkerConfig {
            join: service::join_config(&attribution),
            group: attribution.consumer_group.clone(),
            topics: topics.clone(),
            batch_interval: Duration::from_millis(100),
            max_batch_inputs: 10_000,
        };
        let store = service::store(&attribution, database.clone(), &topics);
        Harness {
            log,
            topics,
            config,
            store,
            database,
            catalog: CatalogCache::empty(),
            published: BTreeMap::new(),
            _postgres: postgres,
        }
    }

    /// Runs one statement on the test database (written to suit both backends).
    pub(crate) async fn execute(&self, sql: &str) {
        match &self.database {
            Database::Postgres(pool) => {
                sqlx::query(AssertSqlSafe(sql.to_owned())).execute(pool).await.map(drop)
            }
            Database::Sqlite(pool) => {
                sqlx::query(AssertSqlSafe(sql.to_owned())).execute(pool).await.map(drop)
            }
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    /// One integer from the test database.
    pub(crate) async fn scalar(&self, sql: &str) -> i64 {
        match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_scalar(AssertSqlSafe(sql.to_owned())).fetch_one(pool).await
            }
            Database::Sqlite(pool) => sqlx::query_scalar(AssertSqlSafe(sql.to_owned())).fetch_one(pool).await,
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    pub(crate) async fn publish(&mut self, events: &[Ev]) {
        let records = events.iter().enumerate().map(|(i, ev)| event_record(&self.topics, i, ev)).collect();
        self.publish_records(records).await;
    }

    /// Publishes records to the input topics and notes how far each partition now goes.
    pub(crate) async fn publish_records(&mut self, records: Vec<OutgoingRecord>) {
        for chunk in records.chunks(500) {
            self.log.publish(chunk.to_vec()).await.expect("published");
        }
        for topic in [&self.topics.impressions, &self.topics.plays] {
            for p in 0..PARTITIONS {
                let (_, high) = self.log.watermarks(&TopicPartition::new(topic.clone(), p)).await.unwrap();
                self.published.insert((topic.clone(), p), high);
            }
        }
    }

    pub(crate) fn spawn_worker(&self) -> (JoinHandle<nearline_attribution::Result<()>>, CancellationToken) {
        let (handle, stop, _) = self.spawn_worker_with_status();
        (handle, stop)
    }

    pub(crate) fn spawn_worker_with_status(
        &self,
    ) -> (JoinHandle<nearline_attribution::Result<()>>, CancellationToken, StatusBoard) {
        let stop = CancellationToken::new();
        let status = StatusBoard::default();
        let handle = tokio::spawn(worker::run(
            self.log.clone(),
            self.store.clone(),
            self.catalog.clone(),
            self.config.clone(),
            status.clone(),
            nearline_runtime::Readiness::new(),
            stop.clone(),
        ));
        (handle, stop, status)
    }

    /// Records whose effects are stored, over both topics.
    pub(crate) async fn stored_offsets(&self) -> i64 {
        let all = self.store.load_all().await.expect("progress");
        all.iter().map(|p| p.committed_total()).sum()
    }

    /// Records on the late topic, over all partitions.
    pub(crate) async fn late_records(&self) -> i64 {
        let mut sum = 0;
        for partition in 0..PARTITIONS {
            let tp = TopicPartition::new(self.topics.late.clone(), partition);
            sum += self.log.watermarks(&tp).await.unwrap().1;
        }
        sum
    }

    async fn total_published(&self) -> i64 {
        self.published.values().sum()
    }

    pub(crate) async fn wait_drained(&self) {
        let total = self.total_published().await;
        wait_for("every published record to be stored", Duration::from_secs(90), || async {
            (self.stored_offsets().await == total).then_some(())
        })
        .await;
    }

    /// Every stored count.
    pub(crate) async fn counts(&self) -> Counts {
        let stored = self.store.load_counts(i64::MIN, i64::MAX).await.expect("stored counts");
        Counts {
            cells: stored.cells.into_iter().collect(),
            unattributed: stored.unattributed.into_iter().collect(),
        }
    }

    /// The batch recount of `[from, to)` from the topics.
    pub(crate) async fn recount(&self, from_ms: i64, to_ms: i64) -> batch::BatchFacts {
        let range = Range::new(from_ms, to_ms, &self.config.join).expect("aligned range");
        let (inputs, undecodable) =
            batch::from_log(self.log.as_ref(), &self.topics, range, &self.config.join, |_, _| {})
                .await
                .expect("read");
        assert_eq!(undecodable, 0);
        batch::run(self.config.join, range, inputs).expect("batch join")
    }

    /// Cells of `[from, to)` whose stored counts differ from the batch recount.
    pub(crate) async fn reconcile(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Vec<nearline_attribution::store::Difference> {
        let facts = self.recount(from_ms, to_ms).await;
        let stored = self.store.load_counts(from_ms, to_ms).await.expect("stored counts");
        nearline_attribution::store::compare(&facts.counts(&self.config.join), &stored)
    }

    /// Counts stored must equal the reference, and each set's size its count.
    pub(crate) async fn assert_counts(&self, events: &[Ev]) {
        let expected = reference(events, &self.config.join);
        let actual = self.counts().await;
        assert!(!actual.cells.is_empty(), "nothing was stored");
        let differing: Vec<_> = expected
            .cells
            .iter()
            .filter(|(k, v)| actual.cells.get(*k) != Some(v))
            .map(|(k, v)| format!("{k:?}: expected {v:?}, stored {:?}", actual.cells.get(k)))
            .chain(
                actual
                    .cells
                    .keys()
                    .filter(|k| !expected.cells.contains_key(*k))
                    .map(|k| format!("{k:?}: unexpected")),
            )
            .collect();
        assert!(differing.is_empty(), "{} cells differ:\n{}", differing.len(), differing.join("\n"));
        assert_eq!(actual.unattributed, expected.unattributed, "unattributed counts");
    }
}

/// The record ingest would publish for `ev` (the `i`-th of its batch) on `topics`.
pub(crate) fn event_record(topics: &Topics, i: usize, ev: &Ev) -> OutgoingRecord {
    event_record_logged(topics, i, ev, ev.default_region())
}

/// The record of `ev` as `region` logged it.
pub(crate) fn event_record_logged(topics: &Topics, i: usize, ev: &Ev, region: &str) -> OutgoingRecord {
    let (topic, payload) = match ev {
        Ev::Impression { request, video, t, country, device, canvas } => (
            &topics.impressions,
            pb::Impression {
                event_id: format!("e{i}"),
                request_id: request.clone(),
                member_id: "m".into(),
                video_id: *video,
                canvas: canvas.to_string(),
                country: country.to_string(),
                device: device.to_string(),
                region: region.into(),
                event_time_ms: *t,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        Ev::Play { request, video, t, country, device } => (
            &topics.plays,
            pb::Play {
                event_id: format!("e{i}"),
                request_id: request.clone(),
                member_id: "m".into(),
                video_id: *video,
                country: country.to_string(),
                device: device.to_string(),
                region: region.into(),
                event_time_ms: *t,
                watch_seconds: 60,
            }
            .encode_to_vec(),
        ),
    };
    OutgoingRecord {
        topic: topic.clone(),
        key: Bytes::copy_from_slice(ev.request().as_bytes()),
        payload: payload.into(),
        timestamp_ms: Some(ev.time()),
    }
}

/// Publishes `tail` (sentinels moving both watermarks of every partition past all
/// deadlines) once the workload is consumed, so the stream settles its unattributed
/// plays and outcomes; `events` then includes them.
pub(crate) async fn settle(harness: &mut Harness, tail: Vec<Ev>, events: &mut Vec<Ev>) {
    harness.publish(&tail).await;
    harness.wait_drained().await;
    events.extend(tail);
}

/// Every record of `topic`, over all partitions.
pub(crate) async fn read_topic(log: &dyn EventLog, topic: &str) -> Vec<nearline_eventlog::Record> {
    let mut reader = log.reader().await.expect("reader");
    let mut expected = 0;
    for partition in 0..PARTITIONS {
        let tp = TopicPartition::new(topic.to_string(), partition);
        expected += log.watermarks(&tp).await.expect("watermarks").1;
        reader.assign(&tp, 0).await.expect("assign");
    }
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while (records.len() as i64) < expected && tokio::time::Instant::now() < deadline {
        if let Some(record) = reader.poll(Duration::from_millis(200)).await.expect("poll") {
            records.push(record);
        }
    }
    records
}
