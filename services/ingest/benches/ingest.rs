//! Throughput and memory of the ingest service against a real Kafka-protocol broker.
//!
//! Not a timed test: it prints numbers. Run with
//! `NEARLINE_TEST_KAFKA=127.0.0.1:PORT cargo bench -p nearline-ingest --bench ingest`
//! (without the variable it starts its own tansu broker). Each phase is bounded in
//! time and in batches:
//!
//! 1. HTTP: concurrent clients POST JSON batches of 500 events; accepted events/s;
//! 2. gRPC: concurrent `PublishStream`s of 500-event batches; accepted events/s;
//! 3. overload: many more clients than the in-flight budget admits; 200s and 429s, and
//!    the process's peak RSS (VmHWM) during the phase;
//! 4. HTTP again with producer tuning (lz4, linger 20 ms) through `KafkaConfig::extra`;
//! 5. HTTP into the embedded durable log (segment files in a temporary directory, every
//!    200 after the group commit's `fdatasync`), with 8 and with 32 clients;
//! 6. HTTP into the in-process log: the service's own ceiling without a broker or a
//!    disk (last, since that log keeps every event in this process's memory).
//!
//! `NEARLINE_BENCH_EMBEDDED_ONLY=1` runs only phases 5 and 6 (no broker needed).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nearline_eventlog::durable::{DurableLog, DurableOptions};
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::{EventLog, TopicSpec};
use nearline_ingest::Topics;
use nearline_proto::events::v1::{Event, Impression, Play, event};
use nearline_proto::ingest::v1::PublishRequest;
use nearline_proto::ingest::v1::ingest_service_client::IngestServiceClient;
use nearline_runtime::Config;
use nearline_runtime::server::Listeners;
use nearline_storage::Database;
use tokio_util::sync::CancellationToken;

const BATCH: usize = 500;
const PHASE: Duration = Duration::from_secs(10);
const MAX_BATCHES: u64 = 6_000;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let topics = Topics {
        impressions: nearline_testkit::unique_name("bench_impressions"),
        plays: nearline_testkit::unique_name("bench_plays"),
    };
    let specs: Vec<TopicSpec> = [&topics.impressions, &topics.plays]
        .into_iter()
        .map(|name| TopicSpec { name: name.clone(), partitions: 4, replication: 1 })
        .collect();
    let body = Arc::new(json_body());
    if std::env::var_os("NEARLINE_BENCH_EMBEDDED_ONLY").is_none() {
        kafka_phases(&topics, &specs, &body).await?;
    }

    // The embedded deployment's durable log.
    for clients in [8, 32] {
        let dir = std::env::temp_dir().join(nearline_testkit::unique_name("ingest_bench_log"));
        let durable = DurableLog::open(DurableOptions::new(&dir))?;
        durable.create_topics(&specs).await?;
        let (http, _grpc, shutdown) =
            start(Config::default(), Arc::new(durable.clone()), topics.clone()).await?;
        reset_peak_rss();
        let (events, elapsed, _, _) = http_phase(&http, &body, clients, PHASE).await;
        println!(
            "HTTP JSON, durable embedded log: {:>9.0} events/s  ({events} events in {elapsed:.1?}, {clients} clients; peak RSS {} MiB)",
            events as f64 / elapsed.as_secs_f64(),
            peak_rss_kib() / 1024
        );
        shutdown.cancel();
        durable.close().await?;
        std::fs::remove_dir_all(dir)?;
    }

    // The service alone, into the in-process log: what ingest costs without a broker.
    let memory: Arc<dyn EventLog> = Arc::new(nearline_eventlog::memory::MemoryLog::new());
    memory.create_topics(&specs).await?;
    let (http, _grpc, shutdown) = start(Config::default(), memory, topics.clone()).await?;
    reset_peak_rss();
    let (events, elapsed, _, _) = http_phase(&http, &body, 8, PHASE / 2).await;
    println!(
        "HTTP JSON, in-process log: {:>9.0} events/s  ({events} events in {elapsed:.1?}, 8 clients; peak RSS {} MiB)",
        events as f64 / elapsed.as_secs_f64(),
        peak_rss_kib() / 1024
    );
    shutdown.cancel();
    Ok(())
}

/// Phases 1 to 4, against a Kafka-protocol broker.
async fn kafka_phases(topics: &Topics, specs: &[TopicSpec], body: &Arc<Vec<u8>>) -> anyhow::Result<()> {
    let mut own_broker = None;
    let bootstrap = match std::env::var("NEARLINE_TEST_KAFKA") {
        Ok(address) => address,
        Err(_) => {
            let (child, address, dir) = start_tansu().await?;
            own_broker = Some((child, dir));
            address
        }
    };
    println!(
        "broker: {bootstrap}; batches of {BATCH} events; phases of at most {PHASE:?} / {MAX_BATCHES} batches"
    );

    let mut kafka = KafkaConfig::new(bootstrap.clone());
    kafka.client_id = "nearline-ingest-bench".into();
    kafka.timeout = Duration::from_secs(10);
    let log: Arc<dyn EventLog> = Arc::new(KafkaLog::connect(kafka)?);
    log.create_topics(specs).await?;

    let (http, grpc, shutdown) = start(Config::default(), Arc::clone(&log), topics.clone()).await?;

    reset_peak_rss();
    let (events, elapsed, _, _) = http_phase(&http, body, 8, PHASE).await;
    println!(
        "HTTP JSON, Kafka:          {:>9.0} events/s  ({events} events in {elapsed:.1?}, 8 clients; peak RSS {} MiB)",
        events as f64 / elapsed.as_secs_f64(),
        peak_rss_kib() / 1024
    );

    reset_peak_rss();
    let (events, elapsed) = grpc_phase(&grpc, 4).await?;
    println!(
        "gRPC stream, Kafka:        {:>9.0} events/s  ({events} events in {elapsed:.1?}, 4 streams; peak RSS {} MiB)",
        events as f64 / elapsed.as_secs_f64(),
        peak_rss_kib() / 1024
    );
    shutdown.cancel();

    // Overload: a budget of 5 000 events against 64 clients of 500 each.
    let mut config = Config::default();
    config.ingest.max_in_flight_events = 5_000;
    let (http, _grpc, shutdown) = start(config, Arc::clone(&log), topics.clone()).await?;
    reset_peak_rss();
    let (events, elapsed, ok, refused) = http_phase(&http, body, 64, PHASE).await;
    println!(
        "overload, Kafka:           {:>9.0} events/s accepted ({ok} x 200, {refused} x 429 in {elapsed:.1?}, 64 clients, budget 5000 events); peak RSS {} MiB",
        events as f64 / elapsed.as_secs_f64(),
        peak_rss_kib() / 1024
    );
    shutdown.cancel();

    // The same with producer tuning a deployment can set through `KafkaConfig::extra`.
    let mut kafka = KafkaConfig::new(bootstrap.clone());
    kafka.client_id = "nearline-ingest-bench-tuned".into();
    kafka.timeout = Duration::from_secs(10);
    kafka.extra = vec![("linger.ms".into(), "20".into()), ("compression.type".into(), "lz4".into())];
    let tuned: Arc<dyn EventLog> = Arc::new(KafkaLog::connect(kafka)?);
    let (http, _grpc, shutdown) = start(Config::default(), tuned, topics.clone()).await?;
    reset_peak_rss();
    let (events, elapsed, _, _) = http_phase(&http, body, 8, PHASE).await;
    println!(
        "HTTP JSON, Kafka lz4+linger 20ms: {:>9.0} events/s  ({events} events in {elapsed:.1?}, 8 clients; peak RSS {} MiB)",
        events as f64 / elapsed.as_secs_f64(),
        peak_rss_kib() / 1024
    );
    shutdown.cancel();

    if let Some((mut child, dir)) = own_broker {
        child.kill()?;
        child.wait()?;
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}

/// Starts an ingest service on free ports; returns its HTTP and gRPC URLs.
async fn start(
    mut config: Config,
    log: Arc<dyn EventLog>,
    topics: Topics,
) -> anyhow::Result<(String, String, CancellationToken)> {
    config.ingest.http_port = 0;
    config.ingest.grpc_port = 0;
    // A stream lasts the whole phase; the default 10 s request timeout would cut it.
    config.ingest.request_timeout = PHASE * 3;
    let listeners = Listeners::bind(&config.ingest.server()).await?;
    let http = format!("http://{}", listeners.http_addr());
    let grpc = format!("http://{}", listeners.grpc_addr());
    let database = Database::Sqlite(nearline_storage::connect_sqlite(":memory:").await?);
    database.migrate().await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(nearline_ingest::run_with_topics(
        Arc::new(config),
        database,
        log,
        topics,
        listeners,
        shutdown.clone(),
    ));
    let client = reqwest::Client::new();
    let ready = format!("{http}/readyz");
    nearline_testkit::wait_for("ingest to be ready", Duration::from_secs(30), || {
        let (client, ready) = (client.clone(), ready.clone());
        async move { client.get(ready).send().await.ok().filter(|r| r.status() == 200).map(drop) }
    })
    .await;
    Ok((http, grpc, shutdown))
}

fn events() -> Vec<Event> {
    let now = chrono::Utc::now().timestamp_millis();
    (0..BATCH)
        .map(|i| {
            let request_id = format!("req-{}", i / 2);
            let kind = if i % 2 == 0 {
                event::Kind::Impression(Impression {
                    event_id: format!("i-{i}"),
                    request_id,
                    member_id: format!("member-{i}"),
                    video_id: 80_100_172 + (i as i64 % 50),
                    artwork_id: "a3".into(),
                    canvas: "row".into(),
                    country: "US".into(),
                    device: "tv".into(),
                    region: "us-east".into(),
                    event_time_ms: now,
                    explore: None,
                })
            } else {
                event::Kind::Play(Play {
                    event_id: format!("p-{i}"),
                    request_id,
                    member_id: format!("member-{i}"),
                    video_id: 80_100_172 + (i as i64 % 50),
                    country: "US".into(),
                    device: "tv".into(),
                    region: "us-east".into(),
                    event_time_ms: now,
                    watch_seconds: 120,
                })
            };
            Event { kind: Some(kind) }
        })
        .collect()
}

/// The same events as the JSON contract.
fn json_body() -> Vec<u8> {
    let events: Vec<serde_json::Value> = events()
        .into_iter()
        .map(|e| match e.kind.unwrap() {
            event::Kind::Impression(i) => serde_json::json!({
                "type": "impression", "event_id": i.event_id, "request_id": i.request_id,
                "member_id": i.member_id, "video_id": i.video_id, "artwork_id": i.artwork_id,
                "canvas": i.canvas, "country": i.country, "device": i.device, "region": i.region,
                "event_time": i.event_time_ms}),
            event::Kind::Play(p) => serde_json::json!({
                "type": "play", "event_id": p.event_id, "request_id": p.request_id,
                "member_id": p.member_id, "video_id": p.video_id, "country": p.country,
                "device": p.device, "region": p.region, "event_time": p.event_time_ms,
                "watch_seconds": p.watch_seconds}),
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap()
}

/// `clients` loops POSTing `body` until `duration` or [`MAX_BATCHES`]; returns accepted
/// events, elapsed time, 200s and 429s.
async fn http_phase(
    url: &str,
    body: &Arc<Vec<u8>>,
    clients: usize,
    duration: Duration,
) -> (u64, Duration, u64, u64) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap();
    let (accepted, ok, refused, sent) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url, body) = (client.clone(), format!("{url}/v1/events"), Arc::clone(body));
            let (accepted, ok, refused, sent) = (accepted.clone(), ok.clone(), refused.clone(), sent.clone());
            tokio::spawn(async move {
                while start.elapsed() < duration && sent.fetch_add(1, Ordering::Relaxed) < MAX_BATCHES {
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.as_ref().clone())
                        .send()
                        .await;
                    match response.map(|r| r.status().as_u16()) {
                        Ok(200) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            accepted.fetch_add(BATCH as u64, Ordering::Relaxed);
                        }
                        Ok(429) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            // A well-behaved client backs off; a short pause keeps the overload sustained.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        other => panic!("unexpected answer {other:?}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (
        accepted.load(Ordering::Relaxed),
        start.elapsed(),
        ok.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    )
}

/// `streams` concurrent `PublishStream`s sharing [`MAX_BATCHES`]; accepted events and time.
async fn grpc_phase(url: &str, streams: usize) -> anyhow::Result<(u64, Duration)> {
    let request = PublishRequest { events: events() };
    let per_stream = MAX_BATCHES / streams as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let mut client = IngestServiceClient::connect(url.to_owned()).await?;
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let batches = futures::stream::iter(0..per_stream)
                .take_while(move |_| futures::future::ready(start.elapsed() < PHASE))
                .map(move |_| request.clone());
            client.publish_stream(batches).await.map(|r| r.into_inner().accepted)
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await??;
    }
    Ok((accepted, start.elapsed()))
}

use futures::StreamExt as _;

/// Resets the kernel's peak-RSS counter of this process (`VmHWM`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process since the last reset, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Starts a tansu broker on a free port in a new directory.
async fn start_tansu() -> anyhow::Result<(std::process::Child, String, std::path::PathBuf)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name("ingest_bench_broker"));
    std::fs::create_dir_all(&dir)?;
    let url = format!("tcp://127.0.0.1:{port}");
    let tansu = std::env::var("HOME").map(|home| format!("{home}/.cargo/bin/tansu")).unwrap_or_default();
    let program = if std::path::Path::new(&tansu).is_file() { tansu } else { "tansu".into() };
    let child = std::process::Command::new(program)
        .current_dir(&dir)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "sqlite://broker.db",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let address = format!("127.0.0.1:{port}");
    nearline_testkit::wait_for("tansu to listen", Duration::from_secs(30), || {
        let address = address.clone();
        async move { tokio::net::TcpStream::connect(address).await.ok().map(drop) }
    })
    .await;
    Ok((child, address, dir))
}
