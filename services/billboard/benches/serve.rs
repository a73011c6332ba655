//! Decisions over the wire: the service in process (SQLite in memory, the in-process
//! log), a pool of 25 titles × 2 artworks (50 candidates), and a client in the same
//! process. Open loop at a fixed offered rate over gRPC and HTTP (latency percentiles as
//! the client sees them on loopback), then a closed loop over gRPC for throughput.
//!
//! `cargo bench -p nearline-billboard --bench serve [-- RATE]`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nearline_eventlog::memory::MemoryLog;
use nearline_eventlog::{EventLog, TopicSpec};
use nearline_proto::billboard::v1 as pb;
use nearline_proto::billboard::v1::billboard_service_client::BillboardServiceClient;
use nearline_runtime::Config;
use nearline_runtime::server::Listeners;
use nearline_storage::Database;
use tokio_util::sync::CancellationToken;

/// The allocator of the `nearline` binary, so the numbers are the ones it gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TITLES: i64 = 25;
const PHASE: Duration = Duration::from_secs(8);

fn context(i: u64) -> pb::Context {
    pb::Context {
        country: ["US", "BR", "FR", "IN", "JP"][(i % 5) as usize].into(),
        device: ["tv", "mobile", "web"][(i / 5 % 3) as usize].into(),
        hour_of_day: (i % 24) as u32,
    }
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    format!("p50 {:?}  p99 {:?}  max {:?}  ({} requests)", at(0.5), at(0.99), at(1.0), samples.len())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let rate: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2_000);
    let database = Database::Sqlite(nearline_storage::connect_sqlite(":memory:").await.expect("SQLite"));
    database.migrate().await.expect("migrate");
    let Database::Sqlite(pool) = &database else { unreachable!() };
    for id in 1..=TITLES {
        sqlx::query(
            "INSERT INTO videos (video_id, title, kind, genres, artworks) VALUES ($1, $2, 'movie', '[\"drama\"]', $3)",
        )
        .bind(id)
        .bind(format!("t{id}"))
        .bind(serde_json::json!([format!("a{id}.0"), format!("a{id}.1")]).to_string())
        .execute(pool)
        .await
        .expect("insert");
    }
    let mut config = Config::default();
    config.billboard.http_port = 0;
    config.billboard.grpc_port = 0;
    let log = Arc::new(MemoryLog::new());
    log.create_topics(&[TopicSpec {
        name: config.billboard.outcomes_topic.clone(),
        partitions: 2,
        replication: 1,
    }])
    .await
    .expect("topic");
    let listeners = Listeners::bind(&config.billboard.server()).await.expect("bind");
    let http = format!("http://{}", listeners.http_addr());
    let grpc = format!("http://{}", listeners.grpc_addr());
    let shutdown = CancellationToken::new();
    let dyn_log: Arc<dyn EventLog> = log;
    tokio::spawn(nearline_billboard::run(Arc::new(config), database, dyn_log, listeners, shutdown.clone()));
    let client = reqwest::Client::new();
    loop {
        if client.get(format!("{http}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids: Vec<i64> = (1..=TITLES).collect();
    let r = client
        .put(format!("{http}/v1/billboard/pool"))
        .json(&serde_json::json!({"video_ids": ids}))
        .send()
        .await;
    assert_eq!(r.unwrap().status(), 200);
    let grpc_client = BillboardServiceClient::connect(grpc.clone()).await.expect("gRPC");
    println!("offered {rate} decisions/s for {PHASE:?}, 50 candidates (the pool), default policy mix");

    for transport in ["gRPC", "HTTP"] {
        let before = server_histogram(&client, &http).await;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let mut i = 0u64;
        while start.elapsed() < PHASE {
            ticker.tick().await;
            i += 1;
            let samples = samples.clone();
            let (mut grpc_client, client, http) = (grpc_client.clone(), client.clone(), http.clone());
            tasks.spawn(async move {
                let sent = Instant::now();
                if transport == "gRPC" {
                    let request = pb::ChooseBillboardRequest {
                        member_id: format!("m{i}"),
                        context: Some(context(i)),
                        candidates: Vec::new(),
                    };
                    grpc_client.choose_billboard(request).await.expect("decision");
                } else {
                    let c = context(i);
                    let body = serde_json::json!({"member_id": format!("m{i}"), "context":
                        {"country": c.country, "device": c.device, "hour_of_day": c.hour_of_day}});
                    let r = client
                        .post(format!("{http}/v1/billboard"))
                        .json(&body)
                        .send()
                        .await
                        .expect("decision");
                    assert_eq!(r.status(), 200);
                    r.bytes().await.expect("body");
                }
                samples.lock().unwrap().push(sent.elapsed());
            });
        }
        while tasks.join_next().await.is_some() {}
        let samples = std::mem::take(&mut *samples.lock().unwrap());
        println!("{transport:<5} open loop: {}", percentiles(samples));
        let during = server_histogram(&client, &http).await.since(&before);
        println!("      server side: p50 {}  p99 {}", during.quantile(0.5), during.quantile(0.99));
    }

    // Closed loop: 32 requests in flight, over one connection and then spread over
    // several (a deployment's clients hold many; over one, both ends' HTTP/2 connection
    // tasks serialise every frame on one core each).
    for connections in [1usize, 4] {
        let mut channels = Vec::with_capacity(connections);
        for _ in 0..connections {
            channels.push(BillboardServiceClient::connect(grpc.clone()).await.expect("gRPC"));
        }
        let rate = closed_loop(&channels, 32).await;
        println!("gRPC  closed loop, 32 in flight over {connections} connection(s): {rate:.0} decisions/s");
    }
    let all = server_histogram(&client, &http).await;
    println!(
        "server-side decision time, all phases ({} decisions): p50 {}  p99 {}  p99.9 {}",
        all.total(),
        all.quantile(0.5),
        all.quantile(0.99),
        all.quantile(0.999)
    );
    shutdown.cancel();
}

/// The server's own decision-time histogram (`nearline_billboard_decision_seconds`,
/// endpoint billboard): cumulative counts by upper bound, as `/metrics` shows them.
struct Histogram(Vec<(String, u64)>);

impl Histogram {
    fn total(&self) -> u64 {
        self.0.last().map_or(0, |(_, n)| *n)
    }

    /// The decisions counted after `earlier` was read.
    fn since(&self, earlier: &Histogram) -> Histogram {
        let at = |le: &str| earlier.0.iter().find(|(l, _)| l == le).map_or(0, |(_, n)| *n);
        Histogram(self.0.iter().map(|(le, n)| (le.clone(), n - at(le))).collect())
    }

    /// The bucket bound at or below which quantile `q` lies (`≤ 100µs`).
    fn quantile(&self, q: f64) -> String {
        let wanted = (q * self.total() as f64).ceil() as u64;
        let bound = self.0.iter().find(|(_, n)| *n >= wanted).map_or("?", |(le, _)| le);
        match bound.parse::<f64>() {
            Ok(seconds) if seconds.is_finite() => format!("≤ {:?}", Duration::from_secs_f64(seconds)),
            _ => "above the last bucket".to_string(),
        }
    }
}

async fn server_histogram(client: &reqwest::Client, http: &str) -> Histogram {
    let metrics = client.get(format!("{http}/metrics")).send().await.unwrap().text().await.unwrap();
    let prefix = "nearline_billboard_decision_seconds_bucket{endpoint=\"billboard\",le=\"";
    Histogram(
        metrics
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|rest| {
                let (le, count) = rest.split_once("\"} ")?;
                Some((le.to_string(), count.trim().parse().ok()?))
            })
            .collect(),
    )
}

/// Decisions per second with `in_flight` requests always outstanding, shared round
/// robin over `channels`, for one phase.
async fn closed_loop(channels: &[BillboardServiceClient<tonic::transport::Channel>], in_flight: u64) -> f64 {
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..in_flight {
        let (mut grpc_client, done) = (channels[t as usize % channels.len()].clone(), done.clone());
        tasks.spawn(async move {
            let mut i = t;
            while start.elapsed() < PHASE {
                let request = pb::ChooseBillboardRequest {
                    member_id: format!("m{i}"),
                    context: Some(context(i)),
                    candidates: Vec::new(),
                };
                grpc_client.choose_billboard(request).await.expect("decision");
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                i += in_flight;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    done.load(std::sync::atomic::Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
