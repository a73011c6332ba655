//! `GET /v1/billboard/history` against a real database of either backend and the
//! in-process log: per policy and epoch, exactly the outcomes the learner applied (the
//! first per request and title, whatever is re-emitted), and the learning lag in event
//! time against attribution's watermarks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nearline_eventlog::memory::MemoryLog;
use nearline_eventlog::{EventLog, OutgoingRecord, TopicSpec};
use nearline_proto::events::v1 as events;
use nearline_runtime::Config;
use nearline_runtime::server::Listeners;
use nearline_storage::Database;
use nearline_testkit::{TestDatabase, wait_for};
use prost::Message as _;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const EPOCH: i64 = 30 * 60_000;

fn outcome(i: i64, policy: &str, explored: bool, played: bool, time_ms: i64) -> events::Outcome {
    events::Outcome {
        request_id: nearline_billboard::request_id::mint(i as u128 * 104_729),
        video_id: 1 + i % 2,
        member_id: format!("m{i}"),
        canvas: "billboard".into(),
        country: "US".into(),
        device: "tv".into(),
        artwork_id: "a".into(),
        explore: Some(events::Explore {
            policy: policy.into(),
            model_version: "0".into(),
            propensity: 0.5,
            explored,
            candidates: vec![1, 2],
            ..events::Explore::default()
        }),
        played,
        impression_time_ms: time_ms,
        play_time_ms: played.then_some(time_ms + 1000),
        title: None,
    }
}

async fn history_counts_each_applied_outcome_once(database: Database) {
    // Attribution has read up to `clock` (its watermark, as it stores it).
    let t0 = (chrono::Utc::now().timestamp_millis() - 6 * 3_600_000).div_euclid(EPOCH) * EPOCH;
    let clock = t0 + 2 * EPOCH + 17 * 60_000;
    let sql = "INSERT INTO partition_progress \
               (consumer_group, topic, partition, committed_offset, oldest_needed_offset, watermark_ms) \
               VALUES ('nearline-attribution', 'nearline.impressions.v1', 0, 0, 0, $1)";
    match &database {
        Database::Postgres(p) => sqlx::query(sql).bind(clock).execute(p).await.map(drop),
        Database::Sqlite(p) => sqlx::query(sql).bind(clock).execute(p).await.map(drop),
    }
    .unwrap();

    let mut config = Config::default();
    config.billboard.http_port = 0;
    config.billboard.grpc_port = 0;
    config.billboard.flush_interval = Duration::from_millis(100);
    let topic = config.billboard.outcomes_topic.clone();
    let log = Arc::new(MemoryLog::new());
    log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 2, replication: 1 }]).await.unwrap();
    let listeners = Listeners::bind(&config.billboard.server()).await.unwrap();
    let http = format!("http://{}", listeners.http_addr());
    let shutdown = CancellationToken::new();
    let dyn_log: Arc<dyn EventLog> = log.clone();
    tokio::spawn(nearline_billboard::run(Arc::new(config), database, dyn_log, listeners, shutdown.clone()));

    // Two epochs; thompson plays every third, uniform every fifth; thompson's odd
    // outcomes were explored picks. The last one is the newest event learned from.
    let mut outcomes = Vec::new();
    for i in 0..200i64 {
        let (policy, played) = if i % 2 == 0 { ("thompson", i % 3 == 0) } else { ("uniform", i % 5 == 0) };
        let explored = policy == "uniform" || i % 4 == 2;
        outcomes.push(outcome(i, policy, explored, played, t0 + i * 17_000));
    }
    let last = t0 + 199 * 17_000;
    // Every outcome again with the reward flipped: the first wins, in the history too.
    let flipped: Vec<events::Outcome> =
        outcomes.iter().map(|o| events::Outcome { played: !o.played, ..o.clone() }).collect();
    let records = |os: &[events::Outcome]| -> Vec<OutgoingRecord> {
        os.iter()
            .map(|o| OutgoingRecord {
                topic: topic.clone(),
                key: Bytes::from(o.request_id.clone().into_bytes()),
                payload: o.encode_to_vec().into(),
                timestamp_ms: Some(o.impression_time_ms),
            })
            .collect()
    };
    log.publish(records(&outcomes)).await.unwrap();
    log.publish(records(&flipped)).await.unwrap();

    let client = reqwest::Client::new();
    let url = format!("{http}/v1/billboard/history?canvas=billboard");
    let history: Value = wait_for("every outcome learned", Duration::from_secs(30), || async {
        let body: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
        let total: i64 = body["totals"].as_array()?.iter().map(|t| t["outcomes"].as_i64().unwrap_or(0)).sum();
        (total == 200).then_some(body)
    })
    .await;

    for policy in ["thompson", "uniform"] {
        let ours: Vec<&events::Outcome> =
            outcomes.iter().filter(|o| o.explore.as_ref().unwrap().policy == policy).collect();
        let total = history["totals"].as_array().unwrap().iter().find(|t| t["policy"] == policy).unwrap();
        let plays = ours.iter().filter(|o| o.played).count() as i64;
        let explored = ours.iter().filter(|o| o.explore.as_ref().unwrap().explored).count() as i64;
        assert_eq!(total["outcomes"], ours.len() as i64, "{policy}: {total}");
        assert_eq!(total["plays"], plays, "{policy}: {total}");
        assert_eq!(total["explored"], explored, "{policy}: {total}");
        assert_eq!(total["take_rate"].as_f64().unwrap(), plays as f64 / ours.len() as f64);
        // Per epoch of impression time, the series adds up to the same.
        for epoch in [t0, t0 + EPOCH] {
            let in_epoch =
                ours.iter().filter(|o| o.impression_time_ms.div_euclid(EPOCH) * EPOCH == epoch).count();
            let start = chrono::DateTime::from_timestamp_millis(epoch)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let point = history["series"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["policy"] == policy && p["epoch_start"] == start.as_str())
                .unwrap_or_else(|| panic!("no {policy} point at {start}: {history}"));
            assert_eq!(point["outcomes"], in_epoch as i64);
        }
    }
    assert_eq!(history["learning_lag_seconds"].as_f64().unwrap(), (clock - last) as f64 / 1000.0);
    assert_ne!(history["model_version"], "0");
    // Another canvas has nothing; an unknown parameter is named.
    let rows: Value = client
        .get(format!("{http}/v1/billboard/history?canvas=row"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows["totals"], serde_json::json!([]));
    let bad = client.get(format!("{http}/v1/billboard/history?since=1")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    shutdown.cancel();
}

#[tokio::test]
async fn history_counts_each_applied_outcome_once_sqlite() {
    let database = Database::Sqlite(nearline_storage::connect_sqlite(":memory:").await.unwrap());
    database.migrate().await.unwrap();
    history_counts_each_applied_outcome_once(database).await;
}

#[tokio::test]
async fn history_counts_each_applied_outcome_once_postgres() {
    let test = TestDatabase::create().await;
    let database = Database::Postgres(sqlx::PgPool::connect(&test.url).await.unwrap());
    database.migrate().await.unwrap();
    history_counts_each_applied_outcome_once(database).await;
}
