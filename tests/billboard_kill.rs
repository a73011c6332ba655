//! Billboard learns exactly once across a crash: `nearline serve billboard` against the
//! test broker and Postgres, killed with SIGKILL while outcomes stream in, restarted and
//! drained, holds exactly the statistics of a run that was never killed.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nearline_billboard::policy::{Discount, Learner};
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::{EventLog, OutgoingRecord, TopicPartition, TopicSpec};
use nearline_proto::events::v1 as events;
use nearline_storage::Database;
use nearline_testkit::{TestDatabase, kafka_bootstrap, unique_name, wait_for};

use prost::Message as _;

const PARTITIONS: i32 = 4;
const OUTCOMES: usize = 4_000;
const BATCH: usize = 100;

struct Billboard {
    child: Child,
}

impl Drop for Billboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Billboard {
    fn start(database_url: &str, topic: &str, group: &str) -> Billboard {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nearline"))
            .args(["serve", "billboard"])
            .env("NEARLINE__DATABASE__URL", database_url)
            .env("NEARLINE__KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap())
            .env("NEARLINE__BILLBOARD__HTTP_PORT", "0")
            .env("NEARLINE__BILLBOARD__GRPC_PORT", "0")
            .env("NEARLINE__BILLBOARD__OUTCOMES_TOPIC", topic)
            .env("NEARLINE__BILLBOARD__CONSUMER_GROUP", group)
            .env("NEARLINE__BILLBOARD__FLUSH_INTERVAL", "200ms")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nearline starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("address line");
        assert!(line.starts_with("billboard"), "{line:?}");
        Billboard { child }
    }

    fn kill_9(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-KILL", &pid]).status().expect("kill runs");
        assert!(status.success());
        let _ = self.child.wait();
    }
}

/// The outcomes of the stream: some keys twice with the reward flipped, spread over
/// titles, artworks, countries, devices and hours.
fn stream() -> Vec<events::Outcome> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    let t0 = now.as_millis() as i64 - 24 * 3_600_000;
    let mut outcomes = Vec::with_capacity(OUTCOMES);
    let mut i = 0u64;
    while outcomes.len() < OUTCOMES {
        let hour = (i % 24) as u32;
        let request_id = nearline_billboard::request_id::mint(u128::from(i) * 0x9e37_79b9_7f4a_7c15);
        let country = ["US", "BR", "FR"][(i % 3) as usize];
        let device = ["tv", "mobile"][(i / 3 % 2) as usize];
        let video_id = 1 + (i % 7) as i64;
        let o = events::Outcome {
            request_id,
            video_id,
            member_id: format!("m{}", i % 97),
            canvas: "billboard".into(),
            country: country.into(),
            device: device.into(),
            artwork_id: format!("art-{}", i % 3),
            explore: Some(events::Explore {
                policy: "linucb".into(),
                model_version: "1".into(),
                propensity: 0.1,
                explored: false,
                candidates: vec![video_id],
                candidate_artworks: vec![events::CandidateArtworks {
                    video_id,
                    artwork_ids: (0..3).map(|a| format!("art-{a}")).collect(),
                }],
                context: Some(events::ExploreContext {
                    country: country.into(),
                    device: device.into(),
                    hour_of_day: hour,
                }),
            }),
            played: (i * 7 + 3) % 10 < (video_id as u64 % 4) + 1,
            impression_time_ms: t0 + (i as i64) * 7_919,
            play_time_ms: None,
            title: None,
        };
        if i % 5 == 4 {
            let previous: &events::Outcome = &outcomes[outcomes.len() - 3];
            outcomes.push(events::Outcome { played: !previous.played, ..previous.clone() });
        }
        outcomes.push(o);
        i += 1;
    }
    outcomes.truncate(OUTCOMES);
    outcomes
}

fn records(topic: &str, outcomes: &[events::Outcome]) -> Vec<OutgoingRecord> {
    outcomes
        .iter()
        .map(|o| OutgoingRecord {
            topic: topic.to_string(),
            key: Bytes::from(o.request_id.clone().into_bytes()),
            payload: o.encode_to_vec().into(),
            timestamp_ms: Some(o.impression_time_ms),
        })
        .collect()
}

type Row = (i64, String, String, String, String, f64, f64, i64, i64, i64);

async fn stats(pool: &sqlx::PgPool) -> Vec<Row> {
    sqlx::query_as(
        "SELECT video_id, artwork_id, country, device, daypart, weight, reward, at_ms, impressions, plays \
         FROM billboard_arm_stats ORDER BY video_id, artwork_id, country, device, daypart",
    )
    .fetch_all(pool)
    .await
    .expect("read statistics")
}

async fn applied(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(SUM(impressions), 0)::bigint FROM billboard_arm_stats")
        .fetch_one(pool)
        .await
        .expect("sum impressions")
}

async fn saved_offsets(pool: &sqlx::PgPool, group: &str, topic: &str) -> Vec<(i32, i64)> {
    sqlx::query_as(
        "SELECT partition, committed_offset FROM partition_progress \
         WHERE consumer_group = $1 AND topic = $2 ORDER BY partition",
    )
    .bind(group)
    .bind(topic)
    .fetch_all(pool)
    .await
    .expect("read offsets")
}

async fn migrated() -> (String, sqlx::PgPool) {
    let test = TestDatabase::create().await;
    let pool = sqlx::PgPool::connect(&test.url).await.expect("connect");
    Database::Postgres(pool.clone()).migrate().await.expect("migrate");
    (test.url, pool)
}

/// Waits until every partition's saved offset is its high watermark.
async fn drained(log: &KafkaLog, pool: &sqlx::PgPool, group: &str, topic: &str) {
    let mut high = Vec::new();
    for p in 0..PARTITIONS {
        let (_, h) = log.watermarks(&TopicPartition::new(topic, p)).await.expect("watermarks");
        if h > 0 {
            high.push((p, h));
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let saved = saved_offsets(pool, group, topic).await;
        if saved == high {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{group} did not drain: saved {saved:?}, high {high:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_same(what: &str, a: &[Row], b: &[Row]) {
    assert_eq!(a.len(), b.len(), "{what}: number of counters");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            (&x.0, &x.1, &x.2, &x.3, &x.4, x.7, x.8, x.9),
            (&y.0, &y.1, &y.2, &y.3, &y.4, y.7, y.8, y.9),
            "{what}"
        );
        // Discounted sums: the same outcomes, possibly interleaved differently across
        // partitions, so equal up to floating-point rounding.
        for (u, v) in [(x.5, y.5), (x.6, y.6)] {
            assert!((u - v).abs() <= 1e-9 * u.abs().max(1.0), "{what}: {x:?} vs {y:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_gives_the_statistics_of_an_uninterrupted_run() {
    let log =
        Arc::new(KafkaLog::connect(KafkaConfig::new(kafka_bootstrap())).expect("connect to the test broker"));
    let topic = unique_name("billboard_outcomes");
    log.create_topics(&[TopicSpec { name: topic.clone(), partitions: PARTITIONS, replication: 1 }])
        .await
        .expect("create topic");
    let outcomes = stream();
    let (killed_url, killed_db) = migrated().await;
    let (steady_url, steady_db) = migrated().await;
    let killed_group = unique_name("billboard_killed");
    let steady_group = unique_name("billboard_steady");

    // The first fifth before anyone starts; the rest streams in while the learners run.
    log.publish(records(&topic, &outcomes[..OUTCOMES / 5])).await.expect("publish");
    let steady = Billboard::start(&steady_url, &topic, &steady_group);
    let first = Billboard::start(&killed_url, &topic, &killed_group);
    let producer = {
        let (log, topic, rest) = (log.clone(), topic.clone(), outcomes[OUTCOMES / 5..].to_vec());
        tokio::spawn(async move {
            for chunk in rest.chunks(BATCH) {
                log.publish(records(&topic, chunk)).await.expect("publish");
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    // Kill once it has learned something, with most of the stream still to come.
    wait_for("the first run to learn", Duration::from_secs(60), || async {
        (applied(&killed_db).await > 0).then_some(())
    })
    .await;
    let before_kill = applied(&killed_db).await;
    first.kill_9();
    producer.await.expect("producer");
    let restarted = Billboard::start(&killed_url, &topic, &killed_group);
    drained(&log, &killed_db, &killed_group, &topic).await;
    drained(&log, &steady_db, &steady_group, &topic).await;
    drop(restarted);
    drop(steady);

    // The reference: the pure learner over the stream, first outcome per key winning.
    let mut reference = Learner::default();
    let discount = Discount::new(7 * 24 * 3_600_000);
    for o in &outcomes {
        let observation = nearline_billboard::learn::observation(&o.encode_to_vec()).expect("an outcome");
        reference.apply(&observation, discount);
    }
    let expected: Vec<Row> = reference
        .stats
        .sorted()
        .into_iter()
        .map(|(arm, cell, c)| {
            (
                arm.video_id,
                arm.artwork_id.to_string(),
                cell.country.to_string(),
                cell.device.to_string(),
                cell.daypart.as_str().to_string(),
                c.weight,
                c.reward,
                c.at_ms,
                c.impressions as i64,
                c.plays as i64,
            )
        })
        .collect();
    let mut expected = expected;
    expected.sort_by(|a, b| (a.0, &a.1, &a.2, &a.3, &a.4).cmp(&(b.0, &b.1, &b.2, &b.3, &b.4)));
    let killed = stats(&killed_db).await;
    let steady = stats(&steady_db).await;
    eprintln!(
        "killed after {before_kill} of {} distinct outcomes; {} counters",
        reference.stats.impressions(),
        killed.len()
    );
    assert!((before_kill as u64) < reference.stats.impressions(), "the kill came mid-stream");
    assert_same("killed run vs uninterrupted run", &killed, &steady);
    assert_same("killed run vs reference", &killed, &expected);
}
