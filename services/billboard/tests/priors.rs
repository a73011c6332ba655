//! Cold-start priors from a real insights service over gRPC: a new title's prior is its
//! launch early read; while insights does not answer, decisions go on with the genre's
//! prior and the read is fetched once insights is there.

use std::sync::Arc;
use std::time::Duration;

use nearline_eventlog::memory::MemoryLog;
use nearline_eventlog::{EventLog, TopicSpec};
use nearline_ingest::catalog::{Catalog, Kind, Video};
use nearline_runtime::Config;
use nearline_runtime::server::Listeners;
use nearline_storage::Database;
use nearline_testkit::wait_for;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const HOUR_MS: i64 = 3_600_000;

fn title(view: &Value, video_id: i64) -> Value {
    view["titles"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["video_id"] == video_id).cloned())
        .unwrap_or_else(|| panic!("title {video_id} in {view}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_titles_prior_is_its_early_read_once_insights_answers() {
    let database = Database::Sqlite(nearline_storage::connect_sqlite(":memory:").await.expect("open SQLite"));
    database.migrate().await.expect("migrate");
    let now = chrono::Utc::now().timestamp_millis();
    let catalog = Catalog::new(database.clone());
    for (id, launch) in [(1, None), (2, None), (3, Some(now - 2 * HOUR_MS))] {
        let video = Video {
            video_id: id,
            title: format!("t{id}"),
            kind: Kind::Movie,
            genres: vec!["drama".into()],
            launch_at_ms: launch,
            artworks: vec![format!("art-{id}")],
        };
        catalog.upsert(&video).await.expect("upsert");
    }
    // Title 3's first hours on every canvas: 400 impressions, 120 plays (30 %).
    let Database::Sqlite(pool) = &database else { unreachable!() };
    let epoch = (now - 2 * HOUR_MS).div_euclid(1_800_000) * 1_800_000;
    sqlx::query(
        "INSERT INTO cell_counts (video_id, epoch_start_ms, country, device, canvas, impressions, plays) \
         VALUES (3, $1, 'US', 'tv', 'row', 300, 90), (3, $2, 'US', 'mobile', 'row', 100, 30)",
    )
    .bind(epoch)
    .bind(epoch + 1_800_000)
    .execute(pool)
    .await
    .expect("counts");

    let mut config = Config::default();
    for server in [&mut config.billboard.http_port, &mut config.billboard.grpc_port] {
        *server = 0;
    }
    config.insights.http_port = 0;
    config.insights.grpc_port = 0;
    config.insights.read_rollups = false;
    config.billboard.catalog_refresh = Duration::from_millis(200);
    // Insights' address is known, but nothing answers there yet: calls time out.
    let insights_listeners = Listeners::bind(&config.insights.server()).await.expect("bind insights");
    config.billboard.insights_url = format!("http://{}", insights_listeners.grpc_addr());
    let config = Arc::new(config);

    let log = Arc::new(MemoryLog::new());
    let topic = config.billboard.outcomes_topic.clone();
    log.create_topics(&[TopicSpec { name: topic, partitions: 1, replication: 1 }]).await.unwrap();
    let billboard_listeners = Listeners::bind(&config.billboard.server()).await.expect("bind billboard");
    let http = format!("http://{}", billboard_listeners.http_addr());
    let shutdown = CancellationToken::new();
    let dyn_log: Arc<dyn EventLog> = log.clone();
    tokio::spawn(nearline_billboard::run(
        config.clone(),
        database.clone(),
        dyn_log.clone(),
        billboard_listeners,
        shutdown.clone(),
    ));
    let client = reqwest::Client::new();
    let get_model = || async {
        let r = client.get(format!("{http}/v1/billboard/model")).send().await.ok()?;
        (r.status() == 200).then_some(())?;
        r.json::<Value>().await.ok()
    };
    let view = wait_for("billboard ready", Duration::from_secs(20), get_model).await;
    let before = title(&view, 3);
    assert_eq!(before["early_read"], Value::Null, "{before}");
    let genre_prior = before["prior_mean"].as_f64().unwrap();
    assert!(genre_prior < 0.1, "the weak global/genre prior: {before}");

    // Decisions do not wait for insights.
    let started = std::time::Instant::now();
    let decision = client
        .post(format!("{http}/v1/billboard"))
        .json(&json!({"member_id": "m1", "context": {"country": "US", "device": "tv", "hour_of_day": 20},
                      "candidates": [1, 2, 3]}))
        .send()
        .await
        .unwrap();
    assert_eq!(decision.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());

    // Insights comes up; the read arrives on a retry.
    tokio::spawn(nearline_insights::run(
        config.clone(),
        database,
        dyn_log,
        insights_listeners,
        shutdown.clone(),
    ));
    let after = wait_for("the early read", Duration::from_secs(60), || async {
        let t = title(&get_model().await?, 3);
        (t["early_read"] != Value::Null).then_some(t)
    })
    .await;
    assert_eq!(after["early_read"], json!({"impressions": 400, "plays": 120}), "{after}");
    // 400 impressions count as 200 (the bound), shrunk to the genre with 20 more.
    let prior = after["prior_mean"].as_f64().unwrap();
    let expected = (60.0 + 20.0 * genre_prior) / 220.0;
    assert!((prior - expected).abs() < 1e-9, "prior {prior}, expected {expected}: {after}");
    // Titles without a launch have no read and keep the genre's prior.
    assert_eq!(title(&get_model().await.unwrap(), 1)["early_read"], Value::Null);
    shutdown.cancel();
}
