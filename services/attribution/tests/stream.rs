//! The streaming worker against the real broker and Postgres: whatever happens to the
//! workers (kills at random points, a second worker joining, late plays), the stored
//! counts equal a reference computed directly from the DESIGN §3 definitions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nearline_attribution::batch::{self, Range};
use nearline_attribution::catalog::CatalogCache;
use nearline_attribution::grpc::AttributionApi;
use nearline_attribution::store::Store;
use nearline_attribution::worker::{self, StatusBoard, Topics, WorkerConfig};
use nearline_attribution::{join::JoinConfig, service};
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::{EventLog, OutgoingRecord, TopicPartition, TopicSpec, partition_for_key};
use nearline_proto::attribution::v1::GetProgressRequest;
use nearline_proto::attribution::v1::attribution_service_server::AttributionService as _;
use nearline_proto::events::v1 as pb;
use nearline_runtime::config::{AttributionConfig, DatabaseConfig, DatabaseUrl};
use nearline_storage::Database;
use nearline_testkit::{TestDatabase, unique_name, wait_for};
use prost::Message as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 4;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// 2026-11-20T00:00:00Z.
const T0: i64 = 1_795_132_800_000;

/// A test event, in the few fields the counts depend on.
#[derive(Debug, Clone)]
enum Ev {
    Impression {
        request: String,
        video: i64,
        t: i64,
        country: &'static str,
        device: &'static str,
        canvas: &'static str,
    },
    Play {
        request: String,
        video: i64,
        t: i64,
        country: &'static str,
        device: &'static str,
    },
}

impl Ev {
    fn request(&self) -> &str {
        match self {
            Ev::Impression { request, .. } | Ev::Play { request, .. } => request,
        }
    }

    fn time(&self) -> i64 {
        match self {
            Ev::Impression { t, .. } | Ev::Play { t, .. } => *t,
        }
    }
}

/// A small deterministic generator (the workload must be the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next(items.len() as u64) as usize]
    }
}

/// Impressions over 3 hours; some played within the window, some outside it, some plays
/// without any impression; published roughly in time order with jitter and duplicates.
fn workload(seed: u64, requests: usize) -> Vec<Ev> {
    let mut rng = Lcg(seed);
    let mut events = Vec::new();
    for r in 0..requests {
        let request = format!("req-{seed}-{r}");
        let t = T0 + rng.next(3 * HOUR as u64) as i64;
        let country = rng.pick(&["US", "CA", "BR"]);
        let device = rng.pick(&["tv", "phone"]);
        let video = 100 + rng.next(5) as i64;
        match rng.next(10) {
            // A play with no impression at all.
            0 => events.push(Ev::Play { request, video, t, country, device }),
            k => {
                let canvas = rng.pick(&["row", "billboard"]);
                events.push(Ev::Impression { request: request.clone(), video, t, country, device, canvas });
                if k <= 4 {
                    // Mostly inside [t - 60 s, t + 1 h], a few just outside either end.
                    let dt = rng.next(75 * MINUTE as u64) as i64 - 2 * MINUTE;
                    events.push(Ev::Play { request, video, t: t + dt, country, device });
                }
            }
        }
    }
    events.sort_by_key(Ev::time);
    // Reorder within ~20 minutes and duplicate one event in ten.
    let mut jittered: Vec<(i64, Ev)> = Vec::new();
    for ev in events {
        let at = ev.time() + rng.next(20 * MINUTE as u64) as i64;
        if rng.next(10) == 0 {
            jittered.push((at + rng.next(5 * MINUTE as u64) as i64, ev.clone()));
        }
        jittered.push((at, ev));
    }
    jittered.sort_by_key(|(at, _)| *at);
    jittered.into_iter().map(|(_, ev)| ev).collect()
}

/// The first request id `{prefix}-{i}` that lands on `partition`.
fn request_on(prefix: &str, partition: i32) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|r| partition_for_key(r.as_bytes(), PARTITIONS) == partition)
        .unwrap()
}

/// One impression per partition far in the future, so every partition's watermark passes
/// every deadline and the stream settles all unattributed plays.
fn sentinels(after: i64) -> Vec<Ev> {
    (0..PARTITIONS)
        .map(|p| {
            let request = request_on("sentinel", p);
            Ev::Impression {
                request,
                video: 999,
                t: after + 10 * HOUR,
                country: "US",
                device: "tv",
                canvas: "row",
            }
        })
        .collect()
}

type CellKey = (i64, i64, String, String, String);
type UnattributedKey = (i64, i64, String, String);

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    cells: BTreeMap<CellKey, (i64, i64)>,
    unattributed: BTreeMap<UnattributedKey, i64>,
}

/// DESIGN §3, written out directly over the whole input.
fn reference(events: &[Ev], config: &JoinConfig) -> Counts {
    let epoch_start = |t: i64| t.div_euclid(config.epoch_len_ms) * config.epoch_len_ms;
    let mut impressions: BTreeMap<CellKey, BTreeSet<String>> = BTreeMap::new();
    let mut plays: BTreeMap<CellKey, BTreeSet<String>> = BTreeMap::new();
    let mut unattributed: BTreeMap<UnattributedKey, BTreeSet<String>> = BTreeMap::new();
    let mut by_key: HashMap<(String, i64), Vec<&Ev>> = HashMap::new();
    for ev in events {
        if let Ev::Impression { request, video, .. } = ev {
            by_key.entry((request.clone(), *video)).or_default().push(ev);
        }
    }
    for ev in events {
        if let Ev::Impression { request, video, t, country, device, canvas } = ev {
            let cell = (*video, epoch_start(*t), country.to_string(), device.to_string(), canvas.to_string());
            impressions.entry(cell).or_default().insert(request.clone());
        }
    }
    for ev in events {
        let Ev::Play { request, video, t: pt, country, device } = ev else { continue };
        let mut attributed = false;
        for imp in by_key.get(&(request.clone(), *video)).into_iter().flatten() {
            let Ev::Impression { t, country: ic, device: id, canvas, .. } = imp else { continue };
            if *t - config.skew_ms <= *pt && *pt <= *t + config.attribution_window_ms {
                attributed = true;
                let cell = (*video, epoch_start(*t), ic.to_string(), id.to_string(), canvas.to_string());
                plays.entry(cell).or_default().insert(request.clone());
            }
        }
        if !attributed {
            let key = (*video, epoch_start(*pt), country.to_string(), device.to_string());
            unattributed.entry(key).or_default().insert(request.clone());
        }
    }
    let mut counts = Counts::default();
    for (cell, set) in impressions {
        counts.cells.entry(cell).or_default().0 = set.len() as i64;
    }
    for (cell, set) in plays {
        counts.cells.entry(cell).or_default().1 = set.len() as i64;
    }
    counts.unattributed = unattributed.into_iter().map(|(k, s)| (k, s.len() as i64)).collect();
    counts
}

struct Harness {
    log: Arc<dyn EventLog>,
    pool: sqlx::PgPool,
    topics: Topics,
    config: WorkerConfig,
    store: Store,
    database: Database,
    catalog: CatalogCache,
    published: BTreeMap<(String, i32), i64>,
}

impl Harness {
    async fn new() -> Harness {
        let log: Arc<dyn EventLog> = Arc::new(
            KafkaLog::connect(KafkaConfig::new(nearline_testkit::kafka_bootstrap())).expect("broker"),
        );
        let name = unique_name("attr");
        let topics = Topics {
            impressions: format!("{name}.impressions"),
            plays: format!("{name}.plays"),
            outcomes: format!("{name}.outcomes"),
            late: format!("{name}.late"),
        };
        let specs: Vec<_> = [&topics.impressions, &topics.plays, &topics.outcomes, &topics.late]
            .into_iter()
            .map(|t| TopicSpec { name: t.clone(), partitions: PARTITIONS, replication: 1 })
            .collect();
        log.create_topics(&specs).await.expect("topics");

        let test_db = TestDatabase::create().await;
        let db_config = DatabaseConfig { url: DatabaseUrl::new(test_db.url), ..DatabaseConfig::default() };
        let pool = nearline_storage::connect_postgres(&db_config, false).await.expect("postgres");
        let database = Database::Postgres(pool.clone());
        database.migrate().await.expect("migrate");

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
            pool,
            topics,
            config,
            store,
            database,
            catalog: CatalogCache::empty(),
            published: BTreeMap::new(),
        }
    }

    async fn publish(&mut self, events: &[Ev]) {
        let records: Vec<OutgoingRecord> = events
            .iter()
            .enumerate()
            .map(|(i, ev)| {
                let (topic, payload) = match ev {
                    Ev::Impression { request, video, t, country, device, canvas } => (
                        &self.topics.impressions,
                        pb::Impression {
                            event_id: format!("e{i}"),
                            request_id: request.clone(),
                            member_id: "m".into(),
                            video_id: *video,
                            canvas: canvas.to_string(),
                            country: country.to_string(),
                            device: device.to_string(),
                            region: "us-east".into(),
                            event_time_ms: *t,
                            ..Default::default()
                        }
                        .encode_to_vec(),
                    ),
                    Ev::Play { request, video, t, country, device } => (
                        &self.topics.plays,
                        pb::Play {
                            event_id: format!("e{i}"),
                            request_id: request.clone(),
                            member_id: "m".into(),
                            video_id: *video,
                            country: country.to_string(),
                            device: device.to_string(),
                            region: "eu-west".into(),
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
            })
            .collect();
        self.publish_records(records).await;
    }

    /// Publishes records to the input topics and notes how far each partition now goes.
    async fn publish_records(&mut self, records: Vec<OutgoingRecord>) {
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

    fn spawn_worker(&self) -> (JoinHandle<nearline_attribution::Result<()>>, CancellationToken) {
        let (handle, stop, _) = self.spawn_worker_with_status();
        (handle, stop)
    }

    fn spawn_worker_with_status(
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
            stop.clone(),
        ));
        (handle, stop, status)
    }

    /// Records whose effects are stored, over both topics.
    async fn stored_offsets(&self) -> i64 {
        let all = self.store.load_all().await.expect("progress");
        all.iter()
            .map(|p| p.impressions.map_or(0, |s| s.committed) + p.plays.map_or(0, |s| s.committed))
            .sum()
    }

    /// Records on the late topic, over all partitions.
    async fn late_records(&self) -> i64 {
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

    async fn wait_drained(&self) {
        let total = self.total_published().await;
        wait_for("every published record to be stored", Duration::from_secs(90), || async {
            (self.stored_offsets().await == total).then_some(())
        })
        .await;
    }

    async fn counts(&self) -> Counts {
        let cells: Vec<(i64, i64, String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT video_id, epoch_start_ms, country, device, canvas, impressions, plays FROM cell_counts",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap();
        let unattributed: Vec<(i64, i64, String, String, i64)> = sqlx::query_as(
            "SELECT video_id, epoch_start_ms, country, device, plays FROM unattributed_counts",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap();
        Counts {
            cells: cells.into_iter().map(|(v, e, c, d, k, i, p)| ((v, e, c, d, k), (i, p))).collect(),
            unattributed: unattributed.into_iter().map(|(v, e, c, d, p)| ((v, e, c, d), p)).collect(),
        }
    }

    /// The batch recount of `[from, to)` from the topics.
    async fn recount(&self, from_ms: i64, to_ms: i64) -> batch::BatchFacts {
        let range = Range::new(from_ms, to_ms, &self.config.join).expect("aligned range");
        let (inputs, undecodable) =
            batch::from_log(self.log.as_ref(), &self.topics, range, &self.config.join, |_, _| {})
                .await
                .expect("read");
        assert_eq!(undecodable, 0);
        batch::run(self.config.join, range, inputs).expect("batch join")
    }

    /// Cells of `[from, to)` whose stored counts differ from the batch recount.
    async fn reconcile(&self, from_ms: i64, to_ms: i64) -> Vec<batch::Difference> {
        let facts = self.recount(from_ms, to_ms).await;
        let stored = self.store.load_counts(from_ms, to_ms).await.expect("stored counts");
        batch::compare(&facts.counts(&self.config.join), &stored)
    }

    /// Counts stored must equal the reference, and each set's size its count.
    async fn assert_counts(&self, events: &[Ev]) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_still_give_exact_counts() {
    let mut harness = Harness::new().await;
    let mut events = workload(7, 1200);
    let tail = sentinels(T0 + 5 * HOUR);
    let expected_events: Vec<Ev> = events.iter().chain(&tail).cloned().collect();
    let expected = reference(&expected_events, &harness.config.join);
    assert!(
        expected.cells.values().filter(|(_, plays)| *plays > 0).count() > 10
            && expected.unattributed.len() > 10,
        "the workload exercises attributed and unattributed plays"
    );
    let chunks: Vec<Vec<Ev>> = events.chunks(events.len() / 4 + 1).map(<[Ev]>::to_vec).collect();

    let mut stored_before = 0;
    for chunk in &chunks {
        harness.publish(chunk).await;
        let (worker, _stop) = harness.spawn_worker();
        // Kill (abort, no clean shutdown) once this worker has stored some progress.
        let target = stored_before + 1;
        wait_for("the worker to store progress", Duration::from_secs(60), || async {
            (harness.stored_offsets().await >= target).then_some(())
        })
        .await;
        worker.abort();
        let _ = worker.await;
        stored_before = harness.stored_offsets().await;
    }
    let (worker, stop) = harness.spawn_worker();
    harness.wait_drained().await;
    settle(&mut harness, tail, &mut events).await;
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");
    harness.assert_counts(&events).await;
    assert_eq!(harness.reconcile(T0 - HOUR, T0 + 6 * HOUR).await, vec![], "reconcile finds no difference");

    // GetProgress reports every partition caught up, watermarks at the sentinels.
    let api = AttributionApi {
        store: harness.store.clone(),
        status: StatusBoard::default(),
        log: harness.log.clone(),
        topics: harness.topics.clone(),
        allowed_lateness_ms: harness.config.join.allowed_lateness_ms,
    };
    let progress =
        api.get_progress(tonic::Request::new(GetProgressRequest {})).await.expect("progress").into_inner();
    assert_eq!(progress.partitions.len(), PARTITIONS as usize);
    for partition in &progress.partitions {
        assert_eq!(partition.lag, 0, "partition {} is caught up", partition.partition);
        assert_eq!(partition.watermark_ms, T0 + 15 * HOUR, "partition {} watermark", partition.partition);
    }
    assert_eq!(progress.complete_until_ms, T0 + 15 * HOUR - harness.config.join.allowed_lateness_ms);
}

/// Moves every partition's watermark past all deadlines once the workload is consumed
/// (an impression far ahead on each), so the stream settles its unattributed plays.
///
/// Published only after the rest is drained: the watermark spans both topics, and a
/// sentinel read before the plays of its partition would make those plays too late.
async fn settle(harness: &mut Harness, tail: Vec<Ev>, events: &mut Vec<Ev>) {
    harness.publish(&tail).await;
    harness.wait_drained().await;
    events.extend(tail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_worker_joining_mid_stream_keeps_counts_exact() {
    let mut harness = Harness::new().await;
    let mut events = workload(11, 1000);
    let (first_half, second_half) = events.split_at(events.len() / 2);

    harness.publish(first_half).await;
    let (first, first_stop) = harness.spawn_worker();
    wait_for("the first worker to store progress", Duration::from_secs(60), || async {
        (harness.stored_offsets().await > 0).then_some(())
    })
    .await;
    let (second, second_stop, second_status) = harness.spawn_worker_with_status();
    harness.publish(second_half).await;
    harness.wait_drained().await;
    wait_for("the second worker to own partitions", Duration::from_secs(30), || async {
        (!second_status.snapshot().is_empty()).then_some(())
    })
    .await;
    settle(&mut harness, sentinels(T0 + 5 * HOUR), &mut events).await;
    first_stop.cancel();
    second_stop.cancel();
    first.await.expect("joined").expect("first stops cleanly");
    second.await.expect("joined").expect("second stops cleanly");
    harness.assert_counts(&events).await;
    assert_eq!(harness.reconcile(T0 - HOUR, T0 + 6 * HOUR).await, vec![], "reconcile finds no difference");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_four_hours_late_counts_in_its_impressions_epoch() {
    let mut harness = Harness::new().await;
    let request = "late-play".to_string();
    let p = partition_for_key(request.as_bytes(), PARTITIONS);
    // Traffic on the same partition moves the watermark 4 h past the impression.
    let filler = request_on("filler", p);
    let impression_time = T0 + 10 * MINUTE;
    let impressions = vec![
        Ev::Impression {
            request: request.clone(),
            video: 7,
            t: impression_time,
            country: "US",
            device: "tv",
            canvas: "row",
        },
        Ev::Impression {
            request: filler,
            video: 8,
            t: impression_time + 4 * HOUR,
            country: "US",
            device: "tv",
            canvas: "row",
        },
    ];
    let play = Ev::Play {
        request: request.clone(),
        video: 7,
        t: impression_time + 30 * MINUTE,
        country: "US",
        device: "tv",
    };
    harness.publish(&impressions).await;
    let (worker, stop) = harness.spawn_worker();
    // The play arrives only once the watermark stands 4 h past the impression.
    harness.wait_drained().await;
    harness.publish(std::slice::from_ref(&play)).await;
    harness.wait_drained().await;
    let events: Vec<Ev> = impressions.into_iter().chain([play]).collect();
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");
    let counts = harness.counts().await;
    let cell = (7, T0, "US".to_string(), "tv".to_string(), "row".to_string());
    assert_eq!(
        counts.cells.get(&cell),
        Some(&(1, 1)),
        "the play counts in the impression's epoch: {counts:?}"
    );
    harness.assert_counts(&events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_late_events_go_to_the_late_topic_and_backfill_counts_them() {
    let mut harness = Harness::new().await;
    let request = "too-late".to_string();
    let p = partition_for_key(request.as_bytes(), PARTITIONS);
    let filler = request_on("filler", p);
    let advance = vec![Ev::Impression {
        request: filler,
        video: 8,
        t: T0 + 8 * HOUR,
        country: "US",
        device: "tv",
        canvas: "row",
    }];
    // Both more than the allowed 6 h behind the watermark when they arrive.
    let late = vec![
        Ev::Impression {
            request: request.clone(),
            video: 7,
            t: T0 + 10 * MINUTE,
            country: "CA",
            device: "tv",
            canvas: "row",
        },
        Ev::Play { request: request.clone(), video: 7, t: T0 + 20 * MINUTE, country: "CA", device: "tv" },
    ];
    harness.publish(&advance).await;
    let (worker, stop) = harness.spawn_worker();
    harness.wait_drained().await;
    harness.publish(&late).await;
    harness.wait_drained().await;

    assert_eq!(harness.late_records().await, 2, "both too-late events are on the late topic");
    let cell = (7, T0, "CA".to_string(), "tv".to_string(), "row".to_string());
    assert_eq!(harness.counts().await.cells.get(&cell), None, "the stream did not count them");
    assert_eq!(harness.reconcile(T0, T0 + HOUR).await.len(), 1, "reconcile reports the one missing cell");

    let facts = harness.recount(T0, T0 + HOUR).await;
    harness.store.write(facts.as_facts(), &[]).await.expect("backfill written");
    assert_eq!(harness.counts().await.cells.get(&cell), Some(&(1, 1)), "backfill counted them");
    // A second backfill changes nothing.
    harness.store.write(facts.as_facts(), &[]).await.expect("backfill written again");
    assert_eq!(harness.counts().await.cells.get(&cell), Some(&(1, 1)));
    assert_eq!(
        harness.reconcile(T0, T0 + 9 * HOUR).await,
        vec![],
        "reconcile finds no difference after backfill"
    );
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");
}

/// An explored impression of `video` at `t`, as a bandit's pick would be logged.
fn explored_impression(topics: &Topics, request: &str, video: i64, t: i64) -> OutgoingRecord {
    let impression = pb::Impression {
        event_id: format!("{request}-impression"),
        request_id: request.into(),
        member_id: "m1".into(),
        video_id: video,
        artwork_id: "a3".into(),
        canvas: "billboard".into(),
        country: "US".into(),
        device: "tv".into(),
        region: "us-east".into(),
        event_time_ms: t,
        explore: Some(pb::Explore {
            policy: "billboard-ts".into(),
            model_version: "7".into(),
            propensity: 0.25,
            explored: true,
            candidates: vec![video, 5],
        }),
    };
    OutgoingRecord {
        topic: topics.impressions.clone(),
        key: Bytes::copy_from_slice(request.as_bytes()),
        payload: impression.encode_to_vec().into(),
        timestamp_ms: Some(t),
    }
}

/// Every record on `topic`, read from the start of each partition.
async fn read_topic(log: &dyn EventLog, topic: &str) -> Vec<nearline_eventlog::Record> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_carry_the_reward_and_the_catalogs_facts_about_the_title() {
    let mut harness = Harness::new().await;
    sqlx::query(
        "INSERT INTO videos (video_id, title, kind, genres, launch_at_ms) VALUES (42, 'Known', 'series', '[\"drama\",\"crime\"]', $1)",
    )
    .bind(T0 - HOUR)
    .execute(&harness.pool)
    .await
    .expect("catalog row");
    assert_eq!(harness.catalog.refresh(&harness.database).await.expect("catalog loaded"), 1);

    // A known title played 5 minutes after its impression (a reward); a title the
    // catalog does not know, never played (no reward once the watermark passes).
    let mut records = vec![
        explored_impression(&harness.topics, "rewarded", 42, T0),
        explored_impression(&harness.topics, "unrewarded", 43, T0),
    ];
    records.push(OutgoingRecord {
        topic: harness.topics.plays.clone(),
        key: Bytes::from_static(b"rewarded"),
        payload: pb::Play {
            event_id: "rewarded-play".into(),
            request_id: "rewarded".into(),
            member_id: "m1".into(),
            video_id: 42,
            country: "US".into(),
            device: "tv".into(),
            region: "eu-west".into(),
            event_time_ms: T0 + 5 * MINUTE,
            watch_seconds: 60,
        }
        .encode_to_vec()
        .into(),
        timestamp_ms: Some(T0 + 5 * MINUTE),
    });
    harness.publish_records(records).await;
    harness.publish(&sentinels(T0)).await;
    let (worker, stop) = harness.spawn_worker();
    harness.wait_drained().await;
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");

    let outcomes: HashMap<String, pb::Outcome> = read_topic(harness.log.as_ref(), &harness.topics.outcomes)
        .await
        .iter()
        .map(|r| {
            let outcome = pb::Outcome::decode(r.payload.as_ref()).expect("an outcome");
            assert_eq!(r.key.as_ref(), outcome.request_id.as_bytes(), "keyed by request id");
            (outcome.request_id.clone(), outcome)
        })
        .collect();
    assert_eq!(outcomes.len(), 2, "one outcome per explored impression: {outcomes:?}");

    let rewarded = &outcomes["rewarded"];
    assert!(rewarded.played);
    assert_eq!(rewarded.play_time_ms, Some(T0 + 5 * MINUTE));
    assert_eq!(
        (rewarded.video_id, rewarded.artwork_id.as_str(), rewarded.canvas.as_str()),
        (42, "a3", "billboard")
    );
    let explore = rewarded.explore.as_ref().expect("explore kept");
    assert_eq!((explore.policy.as_str(), explore.propensity), ("billboard-ts", 0.25));
    assert_eq!(
        rewarded.title,
        Some(pb::TitleInfo {
            kind: "series".into(),
            genres: vec!["drama".into(), "crime".into()],
            launch_at_ms: Some(T0 - HOUR)
        }),
        "enriched from the catalog"
    );

    let unrewarded = &outcomes["unrewarded"];
    assert!(!unrewarded.played);
    assert_eq!(unrewarded.play_time_ms, None);
    assert_eq!(unrewarded.title, None, "a title the catalog does not know is sent without facts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_attributing_a_play_the_stream_expired_takes_it_out_of_unattributed() {
    let mut harness = Harness::new().await;
    let request = "orphan".to_string();
    let p = partition_for_key(request.as_bytes(), PARTITIONS);
    let filler = request_on("filler", p);
    // The play, then (once it is read) an impression 8 h later on its partition: the
    // stream expires the play as unattributed.
    let play =
        Ev::Play { request: request.clone(), video: 9, t: T0 + 30 * MINUTE, country: "US", device: "tv" };
    let advance = Ev::Impression {
        request: filler,
        video: 8,
        t: T0 + 8 * HOUR,
        country: "US",
        device: "tv",
        canvas: "row",
    };
    harness.publish(&[play]).await;
    let (worker, stop) = harness.spawn_worker();
    harness.wait_drained().await;
    harness.publish(&[advance]).await;
    harness.wait_drained().await;
    let slice = (9, T0 + 30 * MINUTE, "US".to_string(), "tv".to_string());
    let counts = harness.counts().await;
    assert_eq!(counts.unattributed.get(&slice), Some(&1), "the stream expired the play: {counts:?}");

    // Its impression arrives too late for the stream; backfill attributes the play.
    let impression =
        Ev::Impression { request, video: 9, t: T0 + 20 * MINUTE, country: "US", device: "tv", canvas: "row" };
    harness.publish(&[impression]).await;
    harness.wait_drained().await;
    let facts = harness.recount(T0, T0 + 9 * HOUR).await;
    harness.store.write(facts.as_facts(), &[]).await.expect("backfill written");

    let counts = harness.counts().await;
    let cell = (9, T0, "US".to_string(), "tv".to_string(), "row".to_string());
    assert_eq!(counts.cells.get(&cell), Some(&(1, 1)), "backfill counted the impression and its play");
    assert_eq!(counts.unattributed.get(&slice), Some(&0), "and the play is no longer unattributed");
    let members: i64 =
        sqlx::query_scalar("SELECT count(*) FROM unattributed_members WHERE request_id = 'orphan'")
            .fetch_one(&harness.pool)
            .await
            .unwrap();
    assert_eq!(members, 0);
    // Idempotent: a second backfill subtracts nothing more.
    harness.store.write(facts.as_facts(), &[]).await.expect("backfill written again");
    assert_eq!(harness.counts().await.unattributed.get(&slice), Some(&0));
    assert_eq!(harness.reconcile(T0, T0 + 9 * HOUR).await, vec![], "reconcile agrees");
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");
}

/// Ten hours of traffic, five impressions for every play, in event-time order.
fn backlog(requests: usize) -> Vec<Ev> {
    let mut rng = Lcg(7);
    let mut events = Vec::new();
    for r in 0..requests {
        let request = format!("backlog-{r}");
        let t = T0 + (r as i64 * 10 * HOUR) / requests as i64;
        let (country, device, canvas) = ("US", "tv", "row");
        let video = 100 + rng.next(3) as i64;
        events.push(Ev::Impression { request: request.clone(), video, t, country, device, canvas });
        if r % 5 == 0 {
            let play_t = t + rng.next(30 * MINUTE as u64) as i64;
            events.push(Ev::Play { request, video, t: play_t, country, device });
        }
    }
    events.sort_by_key(Ev::time);
    events
}

/// A backlog longer than the allowed lateness, read from the start: without pacing the
/// two topics per partition, the broker hands out one topic's partition hours ahead of
/// the other's and about 6 900 of these 24 000 in-bounds events were judged too late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_on_a_long_backlog_judges_nothing_too_late() {
    let mut harness = Harness::new().await;
    // Everything is published before the worker starts, as after an outage longer than
    // the allowed lateness; read unpaced, the plays would run hours ahead.
    let mut events = backlog(20_000);
    harness.publish(&events).await;
    let tail = sentinels(T0 + 10 * HOUR);
    let (worker, stop) = harness.spawn_worker();
    harness.wait_drained().await;
    harness.publish(&tail).await;
    harness.wait_drained().await;
    events.extend(tail);
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");

    assert_eq!(harness.late_records().await, 0, "no in-bounds event was judged too late");
    harness.assert_counts(&events).await;
}
