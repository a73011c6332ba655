//! The backlog stream of the stream tests (three days, hours of disorder within each
//! topic), as files, for `bench/spark_join.py` to run Spark Structured Streaming and
//! nearline over the same input side by side.
//!
//! - `backlog_files write DIR [REQUESTS]` writes `DIR/impressions/NNN.ndjson` and
//!   `DIR/plays/NNN.ndjson` (the ingest JSON shape, each topic in its arrival order, cut
//!   into 20 files so a streaming reader takes them as micro-batches) and the reference
//!   counts, computed from the DESIGN §3 definitions, in `DIR/reference.json`.
//! - `backlog_files run DIR` reads those files back and runs nearline over them: the join
//!   core in process (file k of each topic per step, as Spark reads them), then the
//!   embedded pipeline (in-process log -> streaming worker -> SQLite counts). It prints
//!   one JSON line with events/s and how many cells match the reference.
//!
//! `cargo run --release -p nearline-attribution --example backlog_files -- write /tmp/b`

#[path = "../tests/stream/workload.rs"]
#[allow(dead_code, unreachable_pub)]
mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nearline_attribution::batch::BatchFacts;
use nearline_attribution::catalog::CatalogCache;
use nearline_attribution::join::{Input, JoinConfig, JoinState, Outputs};
use nearline_attribution::status::StatusBoard;
use nearline_attribution::store::Counts;
use nearline_attribution::topics::Topics;
use nearline_attribution::worker::{self, WorkerConfig};
use nearline_attribution::{service, wire};
use nearline_eventlog::memory::MemoryLog;
use nearline_eventlog::{EventLog, OutgoingRecord, TopicSpec};
use nearline_runtime::config::AttributionConfig;
use nearline_storage::Database;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use workload::{Ev, IMPRESSION_REGION, PARTITIONS, PLAY_REGION, disorderly_backlog, reference};

const FILES: usize = 20;

fn config() -> JoinConfig {
    service::join_config(&AttributionConfig::default())
}

fn json_line(i: usize, ev: &Ev) -> String {
    match ev {
        Ev::Impression { request, video, t, country, device, canvas } => json!({
            "type": "impression", "event_id": format!("i{i}"), "request_id": request, "member_id": "m",
            "video_id": video, "canvas": canvas, "country": country, "device": device, "event_time": t,
            "region": IMPRESSION_REGION,
        }),
        Ev::Play { request, video, t, country, device } => json!({
            "type": "play", "event_id": format!("p{i}"), "request_id": request, "member_id": "m",
            "video_id": video, "country": country, "device": device, "event_time": t, "watch_seconds": 60,
            "region": PLAY_REGION,
        }),
    }
    .to_string()
}

fn write(dir: &Path, requests: usize) -> std::io::Result<()> {
    let events = disorderly_backlog(11, requests);
    let (impressions, plays): (Vec<&Ev>, Vec<&Ev>) =
        events.iter().partition(|ev| matches!(ev, Ev::Impression { .. }));
    for (name, topic) in [("impressions", impressions), ("plays", plays)] {
        let topic_dir = dir.join(name);
        std::fs::create_dir_all(&topic_dir)?;
        for (n, chunk) in topic.chunks(topic.len().div_ceil(FILES)).enumerate() {
            let lines: Vec<String> =
                chunk.iter().enumerate().map(|(i, ev)| json_line(n * 100_000 + i, ev)).collect();
            std::fs::write(topic_dir.join(format!("{n:03}.ndjson")), lines.join("\n") + "\n")?;
        }
    }
    // Every impression is logged in one region and every play in another, so the cells
    // of reference.json leave the region out (Spark's side knows none).
    let expected = reference(&events, &config());
    let cells: Vec<_> =
        expected.cells.iter().map(|(k, (i, p))| json!([k.0, k.1, k.2, k.3, k.4, i, p])).collect();
    let unattributed: Vec<_> =
        expected.unattributed.iter().map(|(k, p)| json!([k.0, k.1, k.2, k.3, p])).collect();
    let reference = json!({"events": events.len(), "cells": cells, "unattributed": unattributed});
    std::fs::write(dir.join("reference.json"), reference.to_string())?;
    println!("wrote {} events in {FILES} files per topic to {}", events.len(), dir.display());
    Ok(())
}

/// The inputs of every file of one topic, file by file, decoded as ingest would.
fn read_topic(dir: &Path) -> Vec<Vec<Input>> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("topic dir").map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let body = std::fs::read(file).expect("readable file");
            let decoded = nearline_ingest::event::decode_ndjson(&body, "local", usize::MAX).expect("NDJSON");
            assert!(decoded.violations.is_empty(), "{}: {:?}", file.display(), decoded.violations);
            decoded.events.into_iter().filter_map(|event| wire::from_event(event, 0)).collect()
        })
        .collect()
}

fn counts_of(out: Outputs, config: &JoinConfig) -> Counts {
    BatchFacts { impressions: out.impressions, plays: out.plays, unattributed: out.unattributed }
        .counts(config)
}

/// Unattributed slices of `reference.json` that `counts` has exactly.
fn matching_unattributed(reference: &serde_json::Value, counts: &Counts) -> usize {
    let slices = reference["unattributed"].as_array().expect("unattributed");
    slices
        .iter()
        .filter(|u| {
            let key = (
                u[0].as_i64().unwrap(),
                u[1].as_i64().unwrap(),
                u[2].as_str().unwrap().to_owned(),
                u[3].as_str().unwrap().to_owned(),
                PLAY_REGION.to_owned(),
            );
            counts.unattributed.get(&key) == u[4].as_i64().as_ref()
        })
        .count()
}

/// Cells of `reference.json` that `counts` has exactly, and how many there are.
fn matching(reference: &serde_json::Value, counts: &Counts) -> (usize, usize) {
    let cells = reference["cells"].as_array().expect("cells");
    let exact = cells
        .iter()
        .filter(|c| {
            let key = (
                c[0].as_i64().unwrap(),
                c[1].as_i64().unwrap(),
                c[2].as_str().unwrap().to_owned(),
                c[3].as_str().unwrap().to_owned(),
                c[4].as_str().unwrap().to_owned(),
                IMPRESSION_REGION.to_owned(),
            );
            counts.cells.get(&key) == Some(&(c[5].as_i64().unwrap(), c[6].as_i64().unwrap()))
        })
        .count();
    (exact, cells.len())
}

async fn run(dir: &Path) {
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).expect("reference.json")).unwrap();
    let parse = Instant::now();
    let impressions = read_topic(&dir.join("impressions"));
    let plays = read_topic(&dir.join("plays"));
    let parse_s = parse.elapsed().as_secs_f64();
    // Offsets per source, in each topic's order.
    let tag = |files: &[Vec<Input>]| -> Vec<Vec<Input>> {
        let mut next = 0;
        files
            .iter()
            .map(|f| {
                f.iter()
                    .map(|i| {
                        next += 1;
                        Input::local(next - 1, i.event.clone())
                    })
                    .collect()
            })
            .collect()
    };
    let (impressions, plays) = (tag(&impressions), tag(&plays));
    let events: usize = impressions.iter().chain(&plays).map(Vec::len).sum();

    // The join core, one partition's state per partition, file k of each topic per step.
    let config = config();
    let mut states: Vec<JoinState> = (0..PARTITIONS).map(|_| JoinState::new(config).unwrap()).collect();
    let mut out = Outputs::default();
    let start = Instant::now();
    for (imps, plays) in impressions.iter().zip(&plays) {
        for input in imps.iter().chain(plays) {
            let (request, _) = input.event.join_key();
            let p = nearline_eventlog::partition_for_key(request.as_bytes(), PARTITIONS) as usize;
            states[p].apply_into(std::slice::from_ref(input), &mut out);
        }
    }
    for state in &mut states {
        state.finish_into(&mut out);
    }
    let core_s = start.elapsed().as_secs_f64();
    let late = out.late.len();
    let core_counts = counts_of(out, &config);
    let (core_exact, cells) = matching(&reference, &core_counts);
    let core_unattributed = matching_unattributed(&reference, &core_counts);

    // The embedded pipeline: in-process log -> worker -> SQLite.
    let (pipeline_s, pipeline_exact) = pipeline(&impressions, &plays, &reference).await;
    println!(
        "{}",
        json!({
            "events": events, "cells": cells, "parse_seconds": parse_s,
            "unattributed_slices": reference["unattributed"].as_array().map_or(0, Vec::len),
            "core": {
                "events_per_s": events as f64 / core_s, "late": late, "exact_cells": core_exact,
                "exact_unattributed": core_unattributed,
            },
            "pipeline": {"events_per_s": events as f64 / pipeline_s, "exact_cells": pipeline_exact},
        })
    );
}

async fn pipeline(
    impressions: &[Vec<Input>],
    plays: &[Vec<Input>],
    reference: &serde_json::Value,
) -> (f64, usize) {
    let log = Arc::new(MemoryLog::new());
    let topics = Topics::default();
    let specs: Vec<_> = [&topics.impressions, &topics.plays, &topics.outcomes, &topics.late]
        .into_iter()
        .map(|t| TopicSpec { name: t.clone(), partitions: PARTITIONS, replication: 1 })
        .collect();
    log.create_topics(&specs).await.unwrap();
    let path = std::env::temp_dir().join(format!("backlog_{}.sqlite", std::process::id()));
    let database = Database::Sqlite(nearline_storage::connect_sqlite(path.to_str().unwrap()).await.unwrap());
    database.migrate().await.unwrap();
    let attribution = AttributionConfig::default();
    let store = service::store(&attribution, database.clone(), &topics);
    let records = |files: &[Vec<Input>], topic: &str| -> Vec<OutgoingRecord> {
        files.iter().flatten().map(|input| wire::input_record(topic, input)).collect()
    };
    let start = Instant::now();
    let mut all = records(impressions, &topics.impressions);
    all.extend(records(plays, &topics.plays));
    let total = all.len() as i64;
    for chunk in all.chunks(5_000) {
        log.publish(chunk.to_vec()).await.unwrap();
    }
    let config = WorkerConfig {
        join: service::join_config(&attribution),
        group: "backlog".into(),
        topics: topics.clone(),
        batch_interval: Duration::from_millis(200),
        max_batch_inputs: 200_000,
    };
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
    loop {
        let stored: i64 = store.load_all().await.unwrap().iter().map(|p| p.committed_total()).sum();
        if stored >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed().as_secs_f64();
    stop.cancel();
    running.await.unwrap().unwrap();
    // The stream settles unattributed plays only as watermarks pass; compare the cells.
    let stored = store.load_counts(i64::MIN, i64::MAX).await.unwrap();
    let counts =
        Counts { cells: stored.cells.into_iter().collect::<BTreeMap<_, _>>(), unattributed: BTreeMap::new() };
    std::fs::remove_file(&path).ok();
    (took, matching(reference, &counts).0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["write", dir] => write(Path::new(dir), 8_000).expect("files written"),
        ["write", dir, requests] => {
            write(Path::new(dir), requests.parse().expect("REQUESTS is a number")).expect("files written")
        }
        ["run", dir] => run(Path::new(dir)).await,
        _ => {
            eprintln!("usage: backlog_files write DIR [REQUESTS] | backlog_files run DIR");
            std::process::exit(64);
        }
    }
}
