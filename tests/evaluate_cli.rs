//! `nearline evaluate` as an operator runs it: over a directory of NDJSON outcomes (plain
//! and gzipped) and over the outcomes topic of the real test broker, the same simulated
//! logs give the same numbers; and the data that cannot support an estimate exits
//! non-zero saying why.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};

use bytes::Bytes;
use nearline_billboard::policy::{Params, PolicyKind, Split};
use nearline_billboard::sim::{RunConfig, World, WorldConfig};
use nearline_evaluate::input::OutcomeJson;
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::{EventLog, OutgoingRecord, TopicSpec};
use prost::Message as _;

fn nearline(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nearline"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("nearline runs")
}

/// The same document, numbers equal to 1e-9 relative: billboard's model sums its
/// statistics in hash-map order, which differs between processes, so the last bits of a
/// float can differ between any two runs, whatever the input.
fn assert_same(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-12), "{at}: {x} != {y}");
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}: keys differ");
            for (k, v) in x {
                assert_same(v, &y[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: lengths differ");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                assert_same(v, w, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// 2 000 decisions of a small world, 80 % Thompson and 20 % uniform.
fn outcomes() -> Vec<OutcomeJson> {
    let world = World::new(WorldConfig {
        countries: 2,
        devices: 2,
        titles: 5,
        artworks: vec![2, 1],
        launch_at_ms: None,
        drift_at_ms: None,
        ..WorldConfig::default()
    });
    let split = Split::new(&[(PolicyKind::Thompson, 0.8), (PolicyKind::Uniform, 0.2)]);
    let mut config =
        RunConfig::new(split, Params { thompson_draws: 50, min_propensity: 0.01, ..Params::default() });
    config.decisions = 2_000;
    config.gap_ms = 10_000;
    config.flush_ms = 10 * 60_000;
    nearline_evaluate::sim::simulate(&world, &config)
}

fn write_dir(dir: &Path, outcomes: &[OutcomeJson]) {
    std::fs::create_dir_all(dir).unwrap();
    let line = |o: &OutcomeJson| serde_json::to_string(o).unwrap();
    let (a, b) = outcomes.split_at(outcomes.len() / 2);
    let plain: Vec<String> = a.iter().map(line).collect();
    std::fs::write(dir.join("a.ndjson"), plain.join("\n") + "\n").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for o in b {
        writeln!(gz, "{}", line(o)).unwrap();
    }
    std::fs::write(dir.join("b.ndjson.gz"), gz.finish().unwrap()).unwrap();
}

const ARGS: [&str; 12] = [
    "evaluate",
    "--policy",
    "linucb(alpha=0.3)",
    "--from",
    "3600000",
    "--to",
    "20000000",
    "--bootstrap",
    "200",
    "--format",
    "json",
    "--by=country,device",
];

#[tokio::test]
async fn ndjson_files_and_the_topic_give_the_same_numbers() {
    let outcomes = outcomes();
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name("nearline_evaluate_cli"));
    write_dir(&dir, &outcomes);

    let bootstrap = nearline_testkit::kafka_bootstrap();
    let topic = nearline_testkit::unique_name("outcomes");
    let log = KafkaLog::connect(KafkaConfig::new(bootstrap.clone())).expect("broker");
    log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 3, replication: 1 }]).await.unwrap();
    // Published in a scrambled order across partitions, as attribution's workers would.
    let mut records: Vec<OutgoingRecord> = outcomes
        .iter()
        .map(|o| OutgoingRecord {
            topic: topic.clone(),
            key: Bytes::from(o.request_id.clone()),
            payload: Bytes::from(o.to_proto().encode_to_vec()),
            timestamp_ms: None,
        })
        .collect();
    records.reverse();
    for chunk in records.chunks(500) {
        log.publish(chunk.to_vec()).await.unwrap();
    }

    let from_files = nearline(&[&ARGS[..], &["--input", dir.to_str().unwrap()]].concat(), &[]);
    assert!(from_files.status.success(), "{}", text(&from_files));
    let from_topic = nearline(
        &[&ARGS[..], &["--input", "kafka"]].concat(),
        &[
            ("NEARLINE__KAFKA__BOOTSTRAP_SERVERS", &bootstrap),
            ("NEARLINE__BILLBOARD__OUTCOMES_TOPIC", &topic),
        ],
    );
    assert!(from_topic.status.success(), "{}", text(&from_topic));
    let files: serde_json::Value = serde_json::from_slice(&from_files.stdout).unwrap();
    let topic_report: serde_json::Value = serde_json::from_slice(&from_topic.stdout).unwrap();
    assert_same(&files, &topic_report, "$");
    assert_eq!(files["outcomes_read"], 2_000);
    assert_eq!(files["slices"].as_array().unwrap().len(), 4, "{files}");
    for e in files["overall"]["estimates"].as_array().unwrap() {
        let (v, lo, hi) =
            (e["value"].as_f64().unwrap(), e["low"].as_f64().unwrap(), e["high"].as_f64().unwrap());
        assert!(lo <= v && v <= hi, "{e}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unsupported_data_exits_non_zero_saying_why() {
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name("nearline_evaluate_bad"));
    let mut outcomes = outcomes();
    write_dir(&dir.join("good"), &outcomes);
    let input = dir.join("good");
    let input = input.to_str().unwrap();
    let run = |policy: &str, extra: &[&str]| {
        nearline(
            &[
                &[
                    "evaluate",
                    "--policy",
                    policy,
                    "--from",
                    "0",
                    "--to",
                    "99999999999",
                    "--input",
                    input,
                    "--bootstrap",
                    "0",
                ],
                extra,
            ]
            .concat(),
            &[],
        )
    };

    let snapshot = run("snapshot(version=123456)", &[]);
    assert!(!snapshot.status.success());
    assert!(
        text(&snapshot).contains("no logged decision has model_version \"123456\""),
        "{}",
        text(&snapshot)
    );

    let spec = run("linucb(epsilon=1)", &[]);
    assert!(!spec.status.success());
    assert!(text(&spec).contains("linucb has no parameter `epsilon`"), "{}", text(&spec));

    // Without a uniform slice, replay of a stochastic target has nothing to accept.
    let no_uniform: Vec<OutcomeJson> =
        outcomes.iter().filter(|o| o.explore.as_ref().unwrap().policy != "uniform").cloned().collect();
    write_dir(&dir.join("thompson-only"), &no_uniform);
    let replay = nearline(
        &[
            "evaluate",
            "--policy",
            "thompson",
            "--from",
            "0",
            "--to",
            "99999999999",
            "--bootstrap",
            "0",
            "--input",
            dir.join("thompson-only").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!replay.status.success());
    assert!(
        text(&replay).contains("replay: no decision was logged by the uniform policy"),
        "{}",
        text(&replay)
    );
    // The estimates that are supported are still printed.
    assert!(text(&replay).contains("snips"), "{}", text(&replay));

    // Logged decisions without propensities cannot be evaluated.
    for o in outcomes.iter_mut().take(10) {
        o.explore.as_mut().unwrap().propensity = None;
    }
    write_dir(&dir.join("no-propensity"), &outcomes);
    let missing = nearline(
        &[
            "evaluate",
            "--policy",
            "uniform",
            "--from",
            "0",
            "--to",
            "99999999999",
            "--input",
            dir.join("no-propensity").to_str().unwrap(),
        ],
        &[],
    );
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("10 of 2000 logged decisions in the range cannot be evaluated: 10 where explore.propensity is missing"),
        "{}",
        text(&missing)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_embedded_log_gives_the_same_numbers_and_a_locked_one_is_refused() {
    use nearline_eventlog::durable::{DurableLog, DurableOptions};
    let outcomes = outcomes();
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name("nearline_evaluate_embedded"));
    write_dir(&dir.join("files"), &outcomes);
    let data = dir.join("data");
    let log = DurableLog::open(DurableOptions::new(data.clone())).unwrap();
    let topic = nearline_eventlog::topics::OUTCOMES;
    log.create_topics(&[TopicSpec { name: topic.into(), partitions: 2, replication: 1 }]).await.unwrap();
    let records: Vec<OutgoingRecord> = outcomes
        .iter()
        .map(|o| OutgoingRecord {
            topic: topic.into(),
            key: Bytes::from(o.request_id.clone()),
            payload: Bytes::from(o.to_proto().encode_to_vec()),
            timestamp_ms: None,
        })
        .collect();
    log.publish(records).await.unwrap();
    let data_env = data.to_str().unwrap().to_string();
    let env = [("NEARLINE__EMBEDDED__DATA_DIR", data_env.as_str())];

    let locked = nearline(&[&ARGS[..], &["--input", "kafka", "--embedded"]].concat(), &env);
    assert!(!locked.status.success());
    assert!(text(&locked).contains("is `nearline serve --embedded` running?"), "{}", text(&locked));
    assert!(text(&locked).contains("in use by process"), "{}", text(&locked));

    log.close().await.unwrap();
    drop(log);
    let embedded = nearline(&[&ARGS[..], &["--input", "kafka", "--embedded"]].concat(), &env);
    assert!(embedded.status.success(), "{}", text(&embedded));
    let files = nearline(&[&ARGS[..], &["--input", dir.join("files").to_str().unwrap()]].concat(), &[]);
    assert!(files.status.success(), "{}", text(&files));
    let a: serde_json::Value = serde_json::from_slice(&embedded.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&files.stdout).unwrap();
    assert_same(&a, &b, "$");
    std::fs::remove_dir_all(&dir).ok();
}
