//! End-to-end benchmark of the streaming join: topics -> join -> Postgres counts, on the
//! test broker and Postgres, then the recovery time after a kill with the whole load
//! still pending in join state.
//!
//! `DATABASE_URL=... NEARLINE_TEST_KAFKA=... cargo bench -p nearline-attribution --bench pipeline`
//! (EVENTS=n to change the load, 1 000 000 by default). Bounded in count and time: every
//! wait gives up after 10 minutes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nearline_attribution::catalog::CatalogCache;
use nearline_attribution::service;
use nearline_attribution::status::StatusBoard;
use nearline_attribution::topics::Topics;
use nearline_attribution::worker::{self, WorkerConfig};
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::{EventLog, OutgoingRecord, TopicPartition, TopicSpec};
use nearline_proto::events::v1 as pb;
use nearline_runtime::config::{AttributionConfig, DatabaseConfig, DatabaseUrl};
use nearline_storage::Database;
use prost::Message as _;
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 4;
const T0: i64 = 1_795_132_800_000;
const LIMIT: Duration = Duration::from_secs(600);

fn records(topics: &Topics, events: usize) -> Vec<OutgoingRecord> {
    let mut out = Vec::with_capacity(events);
    let mut i = 0u64;
    while out.len() < events {
        let request = format!("{:08x}-0000-4000-8000-{:012x}", i >> 16, i);
        let t = T0 + (i as i64 * 3_600_000) / events as i64;
        let video = 80_000_000 + (i % 500) as i64;
        let key = Bytes::from(request.clone().into_bytes());
        let impression = pb::Impression {
            request_id: request.clone(),
            member_id: format!("m{}", i % 100_000),
            video_id: video,
            canvas: ["row", "billboard", "search"][(i % 3) as usize].into(),
            country: ["US", "CA", "BR", "GB"][(i % 4) as usize].into(),
            device: ["tv", "phone", "web"][(i % 3) as usize].into(),
            region: "us-east".into(),
            event_time_ms: t,
            ..Default::default()
        };
        out.push(OutgoingRecord {
            topic: topics.impressions.clone(),
            key: key.clone(),
            payload: impression.encode_to_vec().into(),
            timestamp_ms: Some(t),
        });
        if i % 10 < 3 && out.len() < events {
            let play = pb::Play {
                request_id: request,
                member_id: format!("m{}", i % 100_000),
                video_id: video,
                country: "US".into(),
                device: "tv".into(),
                region: "eu-west".into(),
                event_time_ms: t + 120_000,
                watch_seconds: 300,
                ..Default::default()
            };
            out.push(OutgoingRecord {
                topic: topics.plays.clone(),
                key,
                payload: play.encode_to_vec().into(),
                timestamp_ms: Some(t + 120_000),
            });
        }
        i += 1;
    }
    out
}

async fn stored(store: &nearline_attribution::store::Store) -> i64 {
    let all = store.load_all().await.expect("progress");
    all.iter().map(|p| p.committed_total()).sum()
}

async fn wait_stored(store: &nearline_attribution::store::Store, target: i64) {
    let start = Instant::now();
    while stored(store).await < target {
        assert!(start.elapsed() < LIMIT, "gave up waiting for {target} stored offsets");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Reads both input topics to their end with a group-less reader: the broker's own
/// consume rate, for the ratio to the worker's. Returns the seconds it took.
async fn read_everything(log: &dyn EventLog, topics: &Topics, events: usize) -> f64 {
    let start = Instant::now();
    let mut reader = log.reader().await.expect("reader");
    for topic in [&topics.impressions, &topics.plays] {
        for partition in 0..PARTITIONS {
            reader.assign(&TopicPartition::new(topic.clone(), partition), 0).await.expect("assign");
        }
    }
    let mut read = 0;
    while read < events && start.elapsed() < LIMIT {
        if reader.poll(Duration::from_millis(500)).await.expect("poll").is_some() {
            read += 1;
        }
    }
    start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::var("EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let bootstrap = std::env::var("NEARLINE_TEST_KAFKA").expect("NEARLINE_TEST_KAFKA: a running broker");
    let server = std::env::var("DATABASE_URL").expect("DATABASE_URL: a Postgres server");
    let name = format!("bench_{}", std::process::id());

    let log: Arc<dyn EventLog> = Arc::new(KafkaLog::connect(KafkaConfig::new(bootstrap)).expect("broker"));
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
    let url = format!("{}/{name}", server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base));
    let db_config = DatabaseConfig { url: DatabaseUrl::new(url), ..DatabaseConfig::default() };
    let database =
        Database::Postgres(nearline_storage::connect_postgres(&db_config, true).await.expect("postgres"));
    database.migrate().await.expect("migrate");

    println!("publishing {events} events (70% impressions, 30% plays) over 1 h of event time ...");
    let start = Instant::now();
    for chunk in records(&topics, events).chunks(20_000) {
        log.publish(chunk.to_vec()).await.expect("publish");
    }
    let publish_s = start.elapsed().as_secs_f64();
    println!(
        "  broker produce: {events} events in {publish_s:.1} s = {:.0} events/s",
        events as f64 / publish_s
    );
    let consume_s = read_everything(log.as_ref(), &topics, events).await;
    println!("  broker consume (a plain reader, no join): {:.0} events/s", events as f64 / consume_s);

    let attribution =
        AttributionConfig { consumer_group: format!("{name}.group"), ..AttributionConfig::default() };
    let config = WorkerConfig {
        join: service::join_config(&attribution),
        group: attribution.consumer_group.clone(),
        topics: topics.clone(),
        batch_interval: Duration::from_secs(1),
        max_batch_inputs: 200_000,
    };
    let store = service::store(&attribution, database.clone(), &topics);
    let status = StatusBoard::default();
    let stop = CancellationToken::new();
    let start = Instant::now();
    let running = tokio::spawn(worker::run(
        log.clone(),
        store.clone(),
        CatalogCache::empty(),
        config.clone(),
        status.clone(),
        nearline_runtime::Readiness::new(),
        stop.clone(),
    ));
    wait_stored(&store, events as i64).await;
    let took = start.elapsed();
    let state: (u64, u64) = status
        .snapshot()
        .values()
        .fold((0, 0), |(entries, bytes), s| (entries + s.state_entries, bytes + s.state_bytes));
    println!(
        "end to end: {events} events from topics to committed Postgres counts in {:.2} s = {:.0} events/s",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64()
    );
    println!(
        "  pending join state: {} entries, {:.1} MiB ({:.0} bytes/entry); peak RSS {:.0} MiB",
        state.0,
        state.1 as f64 / 1_048_576.0,
        state.1 as f64 / state.0.max(1) as f64,
        peak_rss_mib()
    );

    // Kill with everything still pending, restart, and time until the state is rebuilt
    // and one new record per partition is stored behind the replay.
    running.abort();
    let _ = running.await;
    let markers: Vec<OutgoingRecord> = (0..PARTITIONS)
        .map(|p| {
            let key = (0..)
                .map(|i| format!("marker-{i}"))
                .find(|k| nearline_eventlog::partition_for_key(k.as_bytes(), PARTITIONS) == p);
            let key = key.expect("a key for every partition");
            let t = T0 + 3_600_000;
            let impression = pb::Impression {
                request_id: key.clone(),
                video_id: 1,
                canvas: "row".into(),
                country: "US".into(),
                device: "tv".into(),
                event_time_ms: t,
                ..Default::default()
            };
            OutgoingRecord {
                topic: topics.impressions.clone(),
                key: Bytes::from(key.into_bytes()),
                payload: impression.encode_to_vec().into(),
                timestamp_ms: Some(t),
            }
        })
        .collect();
    log.publish(markers).await.expect("markers");
    let start = Instant::now();
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker::run(
        log.clone(),
        store.clone(),
        CatalogCache::empty(),
        config,
        StatusBoard::default(),
        nearline_runtime::Readiness::new(),
        stop.clone(),
    ));
    wait_stored(&store, events as i64 + i64::from(PARTITIONS)).await;
    println!(
        "recovery after a kill with {} pending entries: {:.2} s to rebuild state and process new records",
        state.0,
        start.elapsed().as_secs_f64()
    );
    stop.cancel();
    let _ = running.await;
}
