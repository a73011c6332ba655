//! Two regions, each with a Kafka-protocol broker of its own (two tansu processes on
//! free ports, or the two of `NEARLINE_TEST_KAFKA_REGIONS=host:port,host:port`) and a
//! database, and a copier standing in for MirrorMaker 2: it copies each region's
//! impressions and plays into the other cluster as `<region>.<topic>`, same partition,
//! as far in event time as the test lets it. Each region's worker reads its own topics
//! and the mirrored ones (`kafka.mirrored_regions`).
//!
//! Pairs are split at random between the regions. Through a mirror outage of eight
//! hours of event time (longer than the allowed lateness) and its catch-up, nothing is
//! judged too late, the local pairs keep being counted, `complete_until` stays behind
//! what the mirror delivered, and at the end both regions hold the global counts of
//! the single-region reference, which a batch recount over their topics confirms.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use nearline_attribution::batch::{self, Range};
use nearline_attribution::catalog::CatalogCache;
use nearline_attribution::grpc::AttributionApi;
use nearline_attribution::service;
use nearline_attribution::status::StatusBoard;
use nearline_attribution::store::Store;
use nearline_attribution::topics::{Topics, mirrored_topic};
use nearline_attribution::worker::{self, WorkerConfig};
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::{EventLog, OutgoingRecord, TopicPartition, TopicSpec};
use nearline_proto::attribution::v1::attribution_service_server::AttributionService as _;
use nearline_proto::attribution::v1::{GetProgressRequest, GetProgressResponse};
use nearline_runtime::config::{AttributionConfig, DatabaseConfig, DatabaseUrl};
use nearline_storage::Database;
use nearline_testkit::{TestDatabase, unique_name, wait_for};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::harness::event_record_logged;
use crate::workload::{Counts, Ev, HOUR, Lcg, MINUTE, PARTITIONS, T0, reference_logged, sentinels};

/// A tansu broker of the test's own, SQLite storage in a temp dir; killed on drop.
struct Broker {
    dir: PathBuf,
    child: Child,
}

impl Broker {
    fn start() -> (Broker, String) {
        let port = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let address = format!("127.0.0.1:{port}");
        let dir = std::env::temp_dir().join(unique_name("regions_broker"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = std::fs::File::create(dir.join("broker.log")).expect("broker log");
        let url = format!("tcp://{address}");
        let mut child = Command::new("tansu")
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://broker.db"])
            .current_dir(&dir)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("tansu starts (scripts/test.sh installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(&address).is_ok() {
                return (Broker { dir, child }, address);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("tansu did not listen on {address}; see {}", dir.display());
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The two brokers: from `NEARLINE_TEST_KAFKA_REGIONS`, or started here.
fn brokers() -> (Vec<Broker>, [String; 2]) {
    if let Ok(list) = std::env::var("NEARLINE_TEST_KAFKA_REGIONS") {
        let addresses: Vec<String> = list.split(',').map(|a| a.trim().to_owned()).collect();
        let [a, b] = <[String; 2]>::try_from(addresses)
            .unwrap_or_else(|_| panic!("NEARLINE_TEST_KAFKA_REGIONS={list}: expected host:port,host:port"));
        return (Vec::new(), [a, b]);
    }
    let (a, first) = Broker::start();
    let (b, second) = Broker::start();
    (vec![a, b], [first, second])
}

/// One region: its cluster, its database and its worker's configuration.
struct Region {
    name: &'static str,
    log: Arc<dyn EventLog>,
    topics: Topics,
    config: WorkerConfig,
    store: Store,
    database: Database,
    _postgres: TestDatabase,
}

impl Region {
    async fn start(name: &'static str, other: &'static str, address: &str, base: &str) -> Region {
        let log: Arc<dyn EventLog> =
            Arc::new(KafkaLog::connect(KafkaConfig::new(address.to_owned())).expect("broker"));
        let topics = Topics {
            impressions: format!("{base}.impressions"),
            plays: format!("{base}.plays"),
            outcomes: format!("{base}.outcomes"),
            late: format!("{base}.late"),
            mirrored_regions: vec![other.to_owned()],
        };
        // The mirrored topics are created here as MirrorMaker 2 creates them: same name
        // policy, same partition count.
        let names = [&topics.impressions, &topics.plays, &topics.outcomes, &topics.late]
            .map(String::clone)
            .into_iter()
            .chain([mirrored_topic(other, &topics.impressions), mirrored_topic(other, &topics.plays)]);
        let specs: Vec<_> =
            names.map(|name| TopicSpec { name, partitions: PARTITIONS, replication: 1 }).collect();
        log.create_topics(&specs).await.expect("topics");
        let postgres = TestDatabase::create().await;
        let db_config =
            DatabaseConfig { url: DatabaseUrl::new(postgres.url.clone()), ..DatabaseConfig::default() };
        let database = Database::Postgres(
            nearline_storage::connect_postgres(&db_config, false).await.expect("postgres"),
        );
        database.migrate().await.expect("migrate");
        let attribution = AttributionConfig {
            consumer_group: format!("{base}.{name}.group"),
            ..AttributionConfig::default()
        };
        let config = WorkerConfig {
            join: service::join_config(&attribution),
            group: attribution.consumer_group.clone(),
            topics: topics.clone(),
            batch_interval: Duration::from_millis(100),
            max_batch_inputs: 10_000,
        };
        assert_eq!(service::check_topics(log.as_ref(), &topics).await.expect("co-partitioned"), PARTITIONS);
        let store = service::store(&attribution, database.clone(), &topics);
        Region { name, log, topics, config, store, database, _postgres: postgres }
    }

    fn spawn_worker(&self) -> (JoinHandle<nearline_attribution::Result<()>>, CancellationToken) {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(worker::run(
            self.log.clone(),
            self.store.clone(),
            CatalogCache::empty(),
            self.config.clone(),
            StatusBoard::default(),
            nearline_runtime::Readiness::new(),
            stop.clone(),
        ));
        (handle, stop)
    }

    async fn publish(&self, events: &[&Ev]) {
        let records: Vec<_> = events
            .iter()
            .enumerate()
            .map(|(i, ev)| event_record_logged(&self.topics, i, ev, self.name))
            .collect();
        for chunk in records.chunks(500) {
            self.log.publish(chunk.to_vec()).await.expect("published");
        }
    }

    /// Records on the source topics now (local and mirrored), over all partitions.
    async fn available(&self) -> i64 {
        let mut sum = 0;
        for source in self.topics.sources() {
            for p in 0..PARTITIONS {
                sum += self.log.watermarks(&TopicPartition::new(source.name.clone(), p)).await.unwrap().1;
            }
        }
        sum
    }

    /// Waits until the effects of every record now on the source topics are stored.
    async fn wait_drained(&self) {
        let what = format!("{}: every record on its topics stored", self.name);
        wait_for(&what, Duration::from_secs(120), || async {
            let stored: i64 =
                self.store.load_all().await.expect("progress").iter().map(|p| p.committed_total()).sum();
            (stored == self.available().await).then_some(())
        })
        .await;
    }

    async fn late_records(&self) -> i64 {
        let mut sum = 0;
        for p in 0..PARTITIONS {
            sum += self.log.watermarks(&TopicPartition::new(self.topics.late.clone(), p)).await.unwrap().1;
        }
        sum
    }

    async fn counts(&self) -> Counts {
        let stored = self.store.load_counts(i64::MIN, i64::MAX).await.expect("stored counts");
        Counts {
            cells: stored.cells.into_iter().collect(),
            unattributed: stored.unattributed.into_iter().collect(),
        }
    }

    /// Per stored source, its smallest watermark over the partitions.
    async fn source_watermarks(&self) -> BTreeMap<String, Option<i64>> {
        let all = self.store.load_all().await.expect("progress");
        self.topics
            .sources()
            .into_iter()
            .enumerate()
            .map(|(i, source)| {
                let min = all.iter().map(|p| p.source(i).and_then(|s| s.watermark_ms)).min().flatten();
                (source.name, min)
            })
            .collect()
    }

    async fn complete_until(&self) -> Option<i64> {
        nearline_storage::progress::complete_until(&self.database, &self.config.group, self.lateness())
            .await
            .expect("progress")
    }

    async fn progress(&self) -> GetProgressResponse {
        let api = AttributionApi {
            store: self.store.clone(),
            status: StatusBoard::default(),
            log: self.log.clone(),
            topics: self.topics.clone(),
            allowed_lateness_ms: self.lateness(),
        };
        api.get_progress(tonic::Request::new(GetProgressRequest {})).await.expect("progress").into_inner()
    }

    fn lateness(&self) -> i64 {
        self.config.join.allowed_lateness_ms
    }

    /// The batch recount of `[from, to)` over the region's topics, mirrored ones included,
    /// against the stored counts.
    async fn reconcile(&self, from_ms: i64, to_ms: i64) -> Vec<nearline_attribution::store::Difference> {
        let range = Range::new(from_ms, to_ms, &self.config.join).expect("aligned range");
        let (inputs, undecodable) =
            batch::from_log(self.log.as_ref(), &self.topics, range, &self.config.join, |_, _| {})
                .await
                .expect("read");
        assert_eq!(undecodable, 0);
        let facts = batch::run(self.config.join, range, inputs).expect("batch join");
        let stored = self.store.load_counts(from_ms, to_ms).await.expect("stored counts");
        nearline_attribution::store::compare(&facts.counts(&self.config.join), &stored)
    }
}

/// Copies `from`'s impressions and plays to `to` as `<region>.<topic>`, partition by
/// partition in order, records whose time is at most the gate's value only: a record
/// past it waits, and so does everything after it in its partition.
struct Copier {
    gate: watch::Sender<i64>,
    copied: Arc<AtomicI64>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Copier {
    async fn start(from: &Region, to: &Region) -> Copier {
        let (gate, mut open_to) = watch::channel(i64::MAX);
        let copied = Arc::new(AtomicI64::new(0));
        let stop = CancellationToken::new();
        let mut reader = from.log.reader().await.expect("reader");
        let mut targets = BTreeMap::new();
        for topic in [&from.topics.impressions, &from.topics.plays] {
            targets.insert(topic.clone(), mirrored_topic(from.name, topic));
            for p in 0..PARTITIONS {
                reader.assign(&TopicPartition::new(topic.clone(), p), 0).await.expect("assign");
            }
        }
        let (target, count, done) = (to.log.clone(), copied.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut waiting: BTreeMap<(String, i32), std::collections::VecDeque<nearline_eventlog::Record>> =
                BTreeMap::new();
            while !done.is_cancelled() {
                if let Some(record) = reader.poll(Duration::from_millis(50)).await.expect("poll") {
                    waiting.entry((record.topic.clone(), record.partition)).or_default().push_back(record);
                }
                let gate = *open_to.borrow_and_update();
                let mut ready = Vec::new();
                for queue in waiting.values_mut() {
                    while queue.front().is_some_and(|r| r.timestamp_ms <= gate) {
                        ready.push(queue.pop_front().expect("front"));
                    }
                }
                if ready.is_empty() {
                    continue;
                }
                let out: Vec<OutgoingRecord> = ready
                    .iter()
                    .map(|r| OutgoingRecord {
                        topic: targets[&r.topic].clone(),
                        key: r.key.clone(),
                        payload: r.payload.clone(),
                        timestamp_ms: Some(r.timestamp_ms),
                    })
                    .collect();
                let deliveries = target.publish(out).await.expect("mirror published");
                for (record, delivery) in ready.iter().zip(&deliveries) {
                    assert_eq!(delivery.partition, record.partition, "the mirror keeps partitions");
                }
                count.fetch_add(ready.len() as i64, Ordering::SeqCst);
            }
        });
        Copier { gate, copied, stop, task }
    }

    /// Lets records up to `until` (event time) through; `i64::MAX` for all.
    fn open_to(&self, until: i64) {
        self.gate.send_replace(until);
    }

    async fn wait_copied(&self, total: i64) {
        wait_for("the mirror to copy everything", Duration::from_secs(120), || async {
            (self.copied.load(Ordering::SeqCst) == total).then_some(())
        })
        .await;
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("copier");
    }
}

/// Twelve hours of traffic; each request's impression and play are logged in a region
/// each, at random, so about half the pairs cross regions. Some plays have no
/// impression, some impressions no play. Per region in log order (time plus up to 20
/// minutes of jitter): `(region, event)`.
fn split_workload(requests: usize) -> Vec<(usize, Ev)> {
    let mut rng = Lcg(17);
    let mut logged = Vec::new();
    for r in 0..requests {
        let request = format!("mr-{r}");
        let t = T0 + rng.next(12 * HOUR as u64) as i64;
        let country = rng.pick(&["US", "DE", "BR"]);
        let device = rng.pick(&["tv", "phone"]);
        let video = 100 + rng.next(6) as i64;
        let canvas = rng.pick(&["row", "billboard"]);
        let region = |rng: &mut Lcg| rng.next(2) as usize;
        match rng.next(10) {
            0 => logged.push((region(&mut rng), Ev::Play { request, video, t, country, device })),
            k => {
                let imp = Ev::Impression { request: request.clone(), video, t, country, device, canvas };
                logged.push((region(&mut rng), imp));
                if k <= 5 {
                    let dt = rng.next(62 * MINUTE as u64) as i64 - MINUTE;
                    logged.push((region(&mut rng), Ev::Play { request, video, t: t + dt, country, device }));
                }
            }
        }
    }
    let mut arrivals: Vec<(i64, usize, Ev)> = logged
        .into_iter()
        .map(|(region, ev)| (ev.time() + rng.next(20 * MINUTE as u64) as i64, region, ev))
        .collect();
    arrivals.sort_by_key(|(at, ..)| *at);
    arrivals.into_iter().map(|(_, region, ev)| (region, ev)).collect()
}

/// Pairs whose impression and attributed play were logged in different regions.
fn cross_region_pairs(logged: &[(usize, Ev)]) -> usize {
    let mut impressions = BTreeMap::new();
    for (region, ev) in logged {
        if let Ev::Impression { request, .. } = ev {
            impressions.insert(request.clone(), *region);
        }
    }
    logged
        .iter()
        .filter(|(region, ev)| matches!(ev, Ev::Play { request, .. } if impressions.get(request).is_some_and(|r| r != region)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_region_pairs_count_once_through_a_mirror_outage() {
    let (_brokers, addresses) = brokers();
    let base = unique_name("mr");
    let regions = [
        Region::start("us-east", "eu-west", &addresses[0], &base).await,
        Region::start("eu-west", "us-east", &addresses[1], &base).await,
    ];
    let [us, eu] = &regions;
    // us-east -> eu-west is the mirror that will fail; eu-west -> us-east keeps going.
    let to_eu = Copier::start(us, eu).await;
    let to_us = Copier::start(eu, us).await;
    let workers = [us.spawn_worker(), eu.spawn_worker()];

    let logged = split_workload(2_400);
    let crossing = cross_region_pairs(&logged);
    assert!(crossing > 300, "the workload crosses regions ({crossing} pairs)");
    let in_region = |n: usize, from: i64, to: i64| -> Vec<&Ev> {
        logged.iter().filter(|(r, ev)| *r == n && (from..to).contains(&ev.time())).map(|(_, ev)| ev).collect()
    };
    // Each phase publishes what a region logged in a span of event time, in log order.

    // Hours 0-3 with both mirrors running.
    let outage_from = T0 + 3 * HOUR;
    for (n, region) in regions.iter().enumerate() {
        region.publish(&in_region(n, i64::MIN, outage_from)).await;
    }
    to_eu.wait_copied(in_region(0, i64::MIN, outage_from).len() as i64).await;
    to_us.wait_copied(in_region(1, i64::MIN, outage_from).len() as i64).await;
    eu.wait_drained().await;
    us.wait_drained().await;

    // us-east's mirror stops for eight hours of event time (longer than the allowed
    // lateness) while both regions keep logging: it copies nothing after hour 3.
    to_eu.open_to(outage_from - 1);
    let outage_to = T0 + 11 * HOUR;
    for (n, region) in regions.iter().enumerate() {
        region.publish(&in_region(n, outage_from, outage_to)).await;
    }
    to_us.wait_copied(in_region(1, i64::MIN, outage_to).len() as i64).await;
    us.wait_drained().await;
    eu.wait_drained().await;

    // During the outage eu-west judges nothing too late, keeps counting its own pairs
    // (cells an hour past the outage's start can hold nothing from us-east yet), and
    // its complete_until stays behind what the mirror delivered.
    assert_eq!(eu.late_records().await, 0, "nothing judged too late while the mirror lags");
    let eu_local: Vec<Ev> = in_region(1, i64::MIN, outage_to).into_iter().cloned().collect();
    let eu_logged: Vec<(&str, &Ev)> = eu_local.iter().map(|ev| (eu.name, ev)).collect();
    let local_reference = reference_logged(&eu_logged, &eu.config.join);
    let stored = eu.counts().await;
    let after = outage_from + HOUR;
    let local_cells: Vec<_> =
        local_reference.cells.iter().filter(|((_, epoch, ..), _)| *epoch >= after).collect();
    assert!(local_cells.len() > 50, "eu-west logged pairs during the outage");
    for (cell, counts) in local_cells {
        assert_eq!(stored.cells.get(cell), Some(counts), "eu-west's own counts during the outage: {cell:?}");
    }
    let watermarks = eu.source_watermarks().await;
    let mirrored = mirrored_topic("us-east", &eu.topics.plays);
    let mirror_wm = watermarks[&mirrored].expect("the mirror delivered before the outage");
    assert!(mirror_wm <= outage_from, "the mirror's watermark stopped at the outage");
    let local_wm = watermarks[&eu.topics.plays].expect("local plays");
    assert!(local_wm > outage_to - 2 * HOUR, "eu-west's own topics went on");
    let complete_until = eu.complete_until().await.expect("every source has a watermark");
    let complete_until_during_outage = complete_until;
    assert!(
        complete_until <= mirror_wm - eu.lateness(),
        "complete_until {complete_until} must not pass the mirror's watermark {mirror_wm} minus the lateness"
    );
    // GetProgress says the same, and shows the lagging mirror per source.
    let progress = eu.progress().await;
    assert_eq!(progress.complete_until_ms, Some(complete_until), "GetProgress and insights agree");
    for partition in &progress.partitions {
        let sources: Vec<_> = partition.sources.iter().map(|s| s.topic.as_str()).collect();
        assert_eq!(sources.len(), 4, "local and mirrored impressions and plays: {sources:?}");
        for source in partition.sources.iter().filter(|s| s.region == "us-east") {
            let lag = source.watermark_lag_ms.expect("the mirror delivered before the outage");
            assert!(lag > 6 * HOUR, "{}: the mirror lags by {lag} ms", source.topic);
        }
    }

    // The mirror catches up, both regions log the rest, and sentinels far ahead settle
    // every unattributed play.
    to_eu.open_to(i64::MAX);
    for (n, region) in regions.iter().enumerate() {
        region.publish(&in_region(n, outage_to, i64::MAX)).await;
    }
    let tail = sentinels(T0 + 14 * HOUR);
    for region in &regions {
        region.publish(&tail.iter().collect::<Vec<_>>()).await;
    }
    let us_total = (in_region(0, i64::MIN, i64::MAX).len() + tail.len()) as i64;
    let eu_total = (in_region(1, i64::MIN, i64::MAX).len() + tail.len()) as i64;
    to_eu.wait_copied(us_total).await;
    to_us.wait_copied(eu_total).await;
    us.wait_drained().await;
    eu.wait_drained().await;
    for (handle, stop) in workers {
        stop.cancel();
        handle.await.expect("joined").expect("clean stop");
    }
    to_eu.stop().await;
    to_us.stop().await;

    // Both regions now hold the global counts: every pair once, in the cell of the region
    // its impression was logged in (the sentinels were logged in both: once per region).
    let mut all: Vec<(&str, &Ev)> = logged.iter().map(|(n, ev)| (regions[*n].name, ev)).collect();
    for region in &regions {
        all.extend(tail.iter().map(|ev| (region.name, ev)));
    }
    let expected = reference_logged(&all, &us.config.join);
    for region in &regions {
        assert_eq!(region.late_records().await, 0, "{}: nothing judged too late", region.name);
        let stored = region.counts().await;
        let differing: Vec<_> = expected
            .cells
            .iter()
            .filter(|(k, v)| stored.cells.get(*k) != Some(v))
            .map(|(k, v)| format!("{k:?}: expected {v:?}, stored {:?}", stored.cells.get(k)))
            .collect();
        assert!(
            differing.is_empty(),
            "{}: {} cells differ:\n{}",
            region.name,
            differing.len(),
            differing.join("\n")
        );
        assert_eq!(stored.unattributed, expected.unattributed, "{}: unattributed counts", region.name);
        assert_eq!(stored.cells.len(), expected.cells.len(), "{}: no unexpected cell", region.name);
        let complete_until = region.complete_until().await.expect("complete");
        assert!(complete_until >= T0 + 14 * HOUR, "{}: complete once every source passed", region.name);
        let differences = region.reconcile(T0 - HOUR, T0 + 14 * HOUR).await;
        assert_eq!(differences, vec![], "{}: reconcile finds no difference", region.name);
    }

    // Without mirroring, the batch merge over both clusters' own topics (what `nearline
    // reconcile --input kafka://us --input kafka://eu` reads) finds the same counts.
    let join = us.config.join;
    let range = Range::new(T0 - HOUR, T0 + 14 * HOUR, &join).expect("aligned range");
    let mut union = Vec::new();
    for region in &regions {
        let own = Topics { mirrored_regions: Vec::new(), ..region.topics.clone() };
        let (read, undecodable) =
            batch::from_log(region.log.as_ref(), &own, range, &join, |_, _| {}).await.expect("read");
        assert_eq!(undecodable, 0);
        union.extend(read);
    }
    let merged = batch::run(join, range, union).expect("batch join");
    let stored = eu.store.load_counts(range.from_ms, range.to_ms).await.expect("stored counts");
    assert_eq!(nearline_attribution::store::compare(&merged.counts(&join), &stored), vec![], "batch merge");
    eprintln!(
        "{} events over two regions, {crossing} plays logged in the other region than their \
         impression; eu-west during the outage: complete_until {} h, mirror watermark {} h, own \
         plays watermark {} h (hours after T0)",
        logged.len(),
        (complete_until_during_outage - T0) as f64 / HOUR as f64,
        (mirror_wm - T0) as f64 / HOUR as f64,
        (local_wm - T0) as f64 / HOUR as f64,
    );
}

/// A mirrored region whose topics are not in the cluster stops attribution at start with
/// the region and the missing topic named.
#[tokio::test]
async fn a_region_without_its_mirrored_topics_is_refused_by_name() {
    let log = nearline_eventlog::memory::MemoryLog::new();
    let topics = Topics::default().with_mirrored_regions(&["eu-west".to_owned()]);
    let local: Vec<_> = [&topics.impressions, &topics.plays]
        .map(|name| TopicSpec { name: name.clone(), partitions: PARTITIONS, replication: 1 })
        .to_vec();
    log.create_topics(&local).await.expect("topics");
    let error = service::check_topics(&log, &topics).await.expect_err("the mirror is missing").to_string();
    assert!(error.contains("eu-west.nearline.impressions.v1 does not exist"), "{error}");
    assert!(error.contains("kafka.mirrored_regions names region \"eu-west\""), "{error}");
}
