//! Query latency at a fixed request rate over HTTP, on counts generated for ~10 M events.
//!
//! Not a timed test: it reports p50 / p99 of the performance query (7 days, 1 title,
//! grouped by 2 dimensions) and of top titles, driven open-loop at a fixed rate (latency
//! is measured from each request's scheduled time, so a slow server cannot hide behind
//! a slowed-down client).
//!
//!     DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!         cargo bench -p nearline-insights --bench queries
//!
//! Environment: BENCH_QPS (200), BENCH_SECONDS per scenario (15), BENCH_RELOAD=1 to
//! regenerate the data (kept in the `nearline_bench_insights` database between runs),
//! BENCH_CELLS_ONLY=1 to answer from the cells alone (the baseline of the roll-ups),
//! BENCH_ONLY=<text> to run only the scenarios whose name contains it, BENCH_PASSES (1)
//! times over all scenarios.
//!
//! Run it with `MIMALLOC_ALLOW_THP=0` (as `bench/insights_duckdb.sh` does): with
//! transparent huge pages on `madvise` (the default here), mimalloc's huge pages are
//! split and zeroed again and again under half-megabyte responses, which tripled the
//! process's CPU time per busy-title request.
//!
//! Data: 2000 titles over 90 days of 30-minute epochs. In the last 7 days the 100 head
//! titles have every cell of 6 countries x 3 devices x 3 canvases in every epoch, the
//! 1900 others two cells per epoch (~3.1 M cells); in the 83 days before, every title
//! has one cell every 3 hours (~1.3 M cells): ~4.4 M cell rows whose counts add up to
//! ~14 M impressions and plays. Generated inside Postgres with `generate_series`, no
//! round trips.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nearline_runtime::Config;
use nearline_runtime::server::Listeners;
use nearline_storage::Database;
use sqlx::{Connection as _, Executor as _, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// The allocator of the `nearline` binary, so the numbers are the ones it gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DATABASE: &str = "nearline_bench_insights";
/// 2026-11-22T00:00:00Z: the end of the generated week.
const END_MS: i64 = 1_795_305_600_000;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const TITLES: i64 = 2000;
const HEAD: i64 = 100;

const GENERATE: &str = r#"
TRUNCATE videos, cell_counts, unattributed_counts, partition_progress;
INSERT INTO videos (video_id, title, kind, genres, launch_at_ms)
SELECT v, 'Title ' || v, CASE WHEN v % 3 = 0 THEN 'series' ELSE 'movie' END,
       '["g' || (v % 7) || '","g' || (v % 5) || '"]', 1795305600000 - (v::BIGINT * 3600000)
FROM generate_series(1, 2000) AS v;

-- Head titles: every cell of every epoch.
INSERT INTO cell_counts (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
SELECT v, 1795305600000 - 604800000 + e * 1800000, c, d, k,
       1 + (v * 7919 + e * 104729 + length(c || d || k) * 31) % 5,
       ((v * 7919 + e * 104729 + length(c || d || k) * 31) % 5) / 2
FROM generate_series(0, 335) AS e,
     generate_series(1, 100) AS v,
     unnest(ARRAY['US','CA','GB','BR','IN','DE']) AS c,
     unnest(ARRAY['tv','mobile','web']) AS d,
     unnest(ARRAY['row','billboard','search']) AS k
ORDER BY 2, 1;

-- The long tail: two cells per epoch.
INSERT INTO cell_counts (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
SELECT v, 1795305600000 - 604800000 + e * 1800000,
       (ARRAY['US','CA','GB','BR','IN','DE'])[1 + (v + e + s) % 6],
       (ARRAY['tv','mobile','web'])[1 + (v * 3 + e) % 3],
       (ARRAY['row','billboard','search'])[1 + s],
       1 + (v + e) % 3, ((v + e) % 4) / 3
FROM generate_series(0, 335) AS e, generate_series(101, 2000) AS v, generate_series(0, 1) AS s
ORDER BY 2, 1;

-- The 83 days before: every title, one cell every 3 hours, its dimensions by title and day.
INSERT INTO cell_counts (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
SELECT v, 1795305600000 - 7776000000 + h::BIGINT * 10800000,
       (ARRAY['US','CA','GB','BR','IN','DE'])[1 + (v + h / 8) % 6],
       (ARRAY['tv','mobile','web'])[1 + (v * 3 + h / 8) % 3],
       (ARRAY['row','billboard','search'])[1 + v % 3],
       1 + (v + h) % 5, ((v + h) % 5) / 2
FROM generate_series(0, 663) AS h, generate_series(1, 2000) AS v
ORDER BY 2, 1;

INSERT INTO unattributed_counts (video_id, epoch_start_ms, country, device, plays)
SELECT v, 1795305600000 - 604800000 + e * 1800000, 'US', 'tv', 1 + (v + e) % 2
FROM generate_series(0, 335) AS e, generate_series(1, 100) AS v;

INSERT INTO partition_progress (consumer_group, topic, partition, committed_offset, oldest_needed_offset, watermark_ms)
SELECT 'nearline-attribution', 'nearline.impressions.v1', p, 1000, 900, 1795305600000 - p * 1000
FROM generate_series(0, 7) AS p;
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server_url = std::env::var("DATABASE_URL").context("set DATABASE_URL to a Postgres server")?;
    let qps: u64 = env_or("BENCH_QPS", 200);
    let seconds: u64 = env_or("BENCH_SECONDS", 15);
    let pool = prepare(&server_url).await?;

    let mut config = Config::default();
    config.insights.http_port = 0;
    config.insights.grpc_port = 0;
    config.database.max_connections = 16;
    // BENCH_CELLS_ONLY=1: answer from the cells alone, the baseline for the roll-ups.
    config.insights.read_rollups = std::env::var("BENCH_CELLS_ONLY").map_or(true, |v| v != "1");
    let listeners = Listeners::bind(&config.insights.server()).await?;
    let base = format!("http://{}", listeners.http_addr());
    let shutdown = CancellationToken::new();
    let log = Arc::new(nearline_eventlog::memory::MemoryLog::new());
    let server = tokio::spawn(nearline_insights::run(
        Arc::new(config),
        Database::Postgres(pool),
        log,
        listeners,
        shutdown.clone(),
    ));
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    nearline_testkit::wait_for("insights to be ready", Duration::from_secs(10), || async {
        client.get(format!("{base}/readyz")).send().await.ok().filter(|r| r.status().is_success())
    })
    .await;

    let since = |days: i64| format!("from={}&to={}", iso(END_MS - days * DAY_MS), iso(END_MS));
    println!("{qps} queries/s for {seconds} s per scenario; latency from the scheduled send time");
    println!(
        "{:<58} {:>7} {:>8} {:>8} {:>8} {:>6}",
        "scenario", "count", "p50 ms", "p99 ms", "max ms", "errors"
    );
    let performance = |days: i64, granularity: &'static str, titles: fn(u64) -> i64| -> PathFor {
        let range = since(days);
        Box::new(move |i| {
            format!(
                "/v1/titles/{}/performance?{range}&group_by=country,device&granularity={granularity}",
                titles(i)
            )
        })
    };
    // What a dashboard's "last 7 days" asks: edges inside a day, read from the hourly
    // roll-ups at once beside the whole days.
    let unaligned = |titles: fn(u64) -> i64| -> PathFor {
        let range =
            format!("from={}&to={}", iso(END_MS - 7 * DAY_MS + 5 * HOUR_MS), iso(END_MS - 3 * HOUR_MS));
        Box::new(move |i| {
            format!("/v1/titles/{}/performance?{range}&group_by=country,device&granularity=hour", titles(i))
        })
    };
    let top = |days: i64, metric: &'static str| -> PathFor {
        let range = since(days);
        let min = if metric == "take_rate" { "&min_impressions=100" } else { "" };
        Box::new(move |_| format!("/v1/titles/top?{range}&metric={metric}{min}&limit=10"))
    };
    let any: fn(u64) -> i64 = |i| pick(i, TITLES);
    let tail: fn(u64) -> i64 = |i| HEAD + pick(i, TITLES - HEAD);
    let head: fn(u64) -> i64 = |i| pick(i, HEAD);
    let scenarios: Vec<(&str, PathFor)> = vec![
        ("performance 7d, any title, group_by=country,device, hour", performance(7, "hour", any)),
        ("performance 7d, long-tail title (2 cells/epoch), same", performance(7, "hour", tail)),
        ("performance 7d unaligned, any title, country+device, hour", unaligned(any)),
        ("performance 7d, head title (54 cells/epoch), same", performance(7, "hour", head)),
        ("performance 7d, head title, group_by=country,device, day", performance(7, "day", head)),
        ("performance 30d, any title, group_by=country,device, day", performance(30, "day", any)),
        ("performance 90d, any title, group_by=country,device, day", performance(90, "day", any)),
        ("top titles, last 24 h, by plays", top(1, "plays")),
        ("top titles, last 7 d, by take rate", top(7, "take_rate")),
        ("top titles, last 30 d, by take rate", top(30, "take_rate")),
        ("top titles, last 90 d, by take rate", top(90, "take_rate")),
    ];
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let scenarios: Vec<_> = scenarios.into_iter().filter(|(name, _)| name.contains(only.as_str())).collect();
    // The first pass finds every cache cold (each title's days read from the roll-ups
    // once); later ones show the steady state of a dashboard fleet asking again.
    for pass in 1..=env_or("BENCH_PASSES", 1) {
        println!("pass {pass}");
        for (name, path) in &scenarios {
            let report = drive(&client, &base, qps, Duration::from_secs(seconds), path.as_ref()).await;
            println!(
                "{name:<58} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>6}",
                report.count, report.p50, report.p99, report.max, report.errors
            );
        }
    }
    shutdown.cancel();
    server.await??;
    Ok(())
}

/// The request path of the i-th request of a scenario.
type PathFor = Box<dyn Fn(u64) -> String>;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn iso(ms: i64) -> String {
    nearline_insights::query::format_time(ms)
}

/// A well-spread pseudo-random title in `1..=n` for request `i`.
fn pick(i: u64, n: i64) -> i64 {
    let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    1 + (mixed % n.unsigned_abs()) as i64
}

/// Creates (once) and fills (when empty or asked) the bench database.
async fn prepare(server_url: &str) -> anyhow::Result<PgPool> {
    let mut admin = PgConnection::connect(server_url).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(DATABASE)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DATABASE}"))).await?;
    }
    let url = match server_url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{DATABASE}"),
        None => anyhow::bail!("DATABASE_URL has no database path"),
    };
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(16).connect(&url).await?;
    Database::Postgres(pool.clone()).migrate().await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM cell_counts").fetch_one(&pool).await?;
    if rows == 0 || std::env::var("BENCH_RELOAD").is_ok_and(|v| v == "1") {
        let start = Instant::now();
        eprintln!("generating counts (a minute or two)...");
        sqlx::raw_sql(GENERATE).execute(&pool).await?;
        // Generated straight into the cells: roll them up as attribution would have.
        nearline_storage::rollups::rebuild(&Database::Postgres(pool.clone())).await?;
        // One statement each: several in one string run as one implicit transaction,
        // which VACUUM refuses. The visibility map it builds is what lets the covering
        // index answer without visiting the heap.
        let rollups = nearline_storage::rollups::Rollup::ALL.map(|r| r.table());
        for table in ["cell_counts", "unattributed_counts", "videos"].into_iter().chain(rollups) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}"))).execute(&pool).await?;
        }
        eprintln!("generated in {:.1} s", start.elapsed().as_secs_f64());
    }
    let (rows, events): (i64, i64) =
        sqlx::query_as("SELECT count(*), (SUM(impressions) + SUM(plays))::BIGINT FROM cell_counts")
            .fetch_one(&pool)
            .await?;
    println!("cell_counts: {rows} rows holding {events} impressions + plays");
    Ok(pool)
}

struct Report {
    count: usize,
    errors: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

/// Sends `path(i)` at `qps` for `duration` without waiting for answers.
async fn drive(
    client: &reqwest::Client,
    base: &str,
    qps: u64,
    duration: Duration,
    path: &dyn Fn(u64) -> String,
) -> Report {
    let interval = Duration::from_nanos(1_000_000_000 / qps.max(1));
    let start = tokio::time::Instant::now();
    let total = duration.as_nanos() / interval.as_nanos();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total as u64 {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let request = client.get(format!("{base}{}", path(i)));
        tasks.spawn(async move {
            // The body is read to its end but not kept: a busy title's is half a
            // megabyte, and collecting it would cost the shared cores, not the server.
            let ok = match request.send().await {
                Ok(mut response) => {
                    let status = response.status().is_success();
                    loop {
                        match response.chunk().await {
                            Ok(Some(_)) => {}
                            Ok(None) => break status,
                            Err(_) => break false,
                        }
                    }
                }
                Err(_) => false,
            };
            (scheduled.elapsed(), ok)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        let (latency, ok) = joined.expect("request task");
        if !ok {
            errors += 1;
        }
        latencies.push(latency.as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Report { count: latencies.len(), errors, p50: at(0.5), p99: at(0.99), max: at(1.0) }
}
