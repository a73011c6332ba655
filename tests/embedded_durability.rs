//! The embedded deployment keeps what it acknowledged: real `nearline serve all
//! --embedded` processes killed with SIGKILL (right after acknowledged batches, and
//! while batches are being written) or stopped with SIGTERM under load, then started
//! again on the same directory, count every acknowledged event exactly once, and a
//! play posted after a restart joins its impression from before it. A second process
//! on the same directory, or on the same SQLite file, is refused and the first keeps
//! working.
//!
//! When the log cannot write (here its partition directory vanishes, as a full disk
//! would fail the write), ingest answers 503 and the process stops with an error, so a
//! supervisor restarts it and recovery runs.
//!
//! A batch whose answer was lost (the connection died with the process) is in doubt:
//! it may or may not have been written. Like any client, the tests post it again after
//! the restart; counts are sets of request ids, so the expected totals are exact.

#[path = "embedded/node.rs"]
mod node;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use serde_json::Value;

use node::{DEADLINE, Node, impressions, now_ms, plays, start, start_ingest, test_dir};

/// Events per batch in the concurrent phases.
const BATCH: usize = 200;
/// Most batches one poster sends, so every phase is bounded.
const MAX_BATCHES: usize = 300;

/// What concurrent posters saw: events acknowledged, and batches in doubt.
#[derive(Default)]
struct Posted {
    acknowledged: usize,
    in_doubt: Vec<Value>,
}

/// Runs `posters` concurrent clients posting impression batches under `prefix` until
/// each gets its first non-200 answer (or `MAX_BATCHES`); calls `interrupt` once
/// `after` batches in total were acknowledged, while the posters are still posting.
async fn post_and_interrupt(
    node: Node,
    prefix: &str,
    time_ms: i64,
    posters: usize,
    after: usize,
    interrupt: impl FnOnce(Node) + Send + 'static,
) -> Posted {
    let client = reqwest::Client::new();
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for poster in 0..posters {
        let (client, ingest, acknowledged) = (client.clone(), node.ingest.clone(), Arc::clone(&acknowledged));
        let prefix = format!("{prefix}-{poster}");
        tasks.spawn(async move {
            let mut posted = Posted::default();
            for i in 0..MAX_BATCHES {
                let batch = impressions(&prefix, i * BATCH..(i + 1) * BATCH, time_ms);
                match node::post(&client, &ingest, &batch).await {
                    Ok(StatusCode::OK) => {
                        posted.acknowledged += BATCH;
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                    // Refused, cut off or never sent: the client does not know.
                    Ok(_) | Err(_) => {
                        posted.in_doubt.push(batch);
                        break;
                    }
                }
            }
            posted
        });
    }
    nearline_testkit::wait_for("enough acknowledged batches", DEADLINE, || {
        let acknowledged = Arc::clone(&acknowledged);
        async move { (acknowledged.load(Ordering::SeqCst) >= after).then_some(()) }
    })
    .await;
    tokio::task::spawn_blocking(move || interrupt(node)).await.expect("interrupt");
    let mut all = Posted::default();
    while let Some(posted) = tasks.join_next().await {
        let posted = posted.expect("poster");
        all.acknowledged += posted.acknowledged;
        all.in_doubt.extend(posted.in_doubt);
    }
    eprintln!("{prefix}: {} events acknowledged, {} batches in doubt", all.acknowledged, all.in_doubt.len());
    all
}

/// Posts `batches` again (a client retrying what it does not know was taken).
async fn repost(node: &Node, client: &reqwest::Client, batches: &[Value]) -> usize {
    let mut events = 0;
    for batch in batches {
        assert_eq!(node.post(client, batch).await.expect("repost"), StatusCode::OK, "reposting a batch");
        events += batch["events"].as_array().expect("events").len();
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_event_and_counts_each_once() {
    let dir = test_dir("nearline_sigkill");
    let client = reqwest::Client::new();
    let time_ms = now_ms();
    let mut expected = 0;

    // Killed right after one acknowledged batch, then right after five.
    for (round, batches) in [(0, 1), (1, 5)] {
        let node = start(&dir, &[]);
        node.ready(&client).await;
        for b in 0..batches {
            let batch = impressions(&format!("seq{round}"), b * 500..(b + 1) * 500, time_ms);
            assert_eq!(node.post(&client, &batch).await.expect("post"), StatusCode::OK);
            expected += 500;
        }
        node.kill();
    }

    // Killed while four clients are posting, so batches are being written at the kill.
    let node = start(&dir, &[]);
    node.ready(&client).await;
    let posted = post_and_interrupt(node, "conc", time_ms, 4, 20, Node::kill).await;
    assert!(posted.acknowledged >= 20 * BATCH, "{} acknowledged", posted.acknowledged);
    expected += posted.acknowledged;

    let node = start(&dir, &[]);
    node.ready(&client).await;
    expected += repost(&node, &client, &posted.in_doubt).await;
    let expected = i64::try_from(expected).expect("fits");
    node.wait_totals(&client, time_ms, (expected, 0)).await;

    // And once more after a crash with nothing in flight: still exactly the same.
    node.kill();
    let node = start(&dir, &[]);
    node.ready(&client).await;
    node.wait_totals(&client, time_ms, (expected, 0)).await;
    drop(node);
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_keeps_every_acknowledged_event() {
    let dir = test_dir("nearline_sigterm");
    let client = reqwest::Client::new();
    let time_ms = now_ms();
    let node = start(&dir, &[]);
    node.ready(&client).await;
    let posted = post_and_interrupt(node, "load", time_ms, 6, 30, |node| {
        let status = node.terminate();
        assert!(status.success(), "clean exit after SIGTERM, got {status}");
    })
    .await;

    let node = start(&dir, &[]);
    node.ready(&client).await;
    let expected = posted.acknowledged + repost(&node, &client, &posted.in_doubt).await;
    node.wait_totals(&client, time_ms, (i64::try_from(expected).expect("fits"), 0)).await;
    drop(node);
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_after_a_restart_joins_its_impression_from_before_it() {
    let dir = test_dir("nearline_rejoin");
    let client = reqwest::Client::new();
    let time_ms = now_ms();

    let node = start(&dir, &[]);
    node.ready(&client).await;
    assert_eq!(node.post(&client, &impressions("r", 0..100, time_ms)).await.expect("post"), StatusCode::OK);
    node.wait_totals(&client, time_ms, (100, 0)).await;
    let status = node.terminate();
    assert!(status.success(), "clean exit after SIGTERM, got {status}");

    // After a clean restart: the join state is rebuilt by replaying the log.
    let node = start(&dir, &[]);
    node.ready(&client).await;
    assert_eq!(node.post(&client, &plays("r", 0..50, time_ms)).await.expect("post"), StatusCode::OK);
    node.wait_totals(&client, time_ms, (100, 50)).await;
    node.kill();

    // After a crash: the same.
    let node = start(&dir, &[]);
    node.ready(&client).await;
    assert_eq!(node.post(&client, &plays("r", 50..100, time_ms)).await.expect("post"), StatusCode::OK);
    node.wait_totals(&client, time_ms, (100, 100)).await;
    drop(node);
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_the_same_directory_is_refused_and_the_first_keeps_working() {
    let dir = test_dir("nearline_second");
    let client = reqwest::Client::new();
    let time_ms = now_ms();
    let first = start(&dir, &[]);
    first.ready(&client).await;
    assert_eq!(first.post(&client, &impressions("a", 0..10, time_ms)).await.expect("post"), StatusCode::OK);
    first.wait_totals(&client, time_ms, (10, 0)).await;

    let log_dir = node::log_dir(&dir);
    let listing = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("log dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let (files_before, lock_before) =
        (listing(&log_dir), std::fs::read_to_string(log_dir.join("LOCK")).expect("LOCK"));

    let output = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            node::command(&dir, &[])
                .stderr(std::process::Stdio::piped())
                .output()
                .expect("second nearline runs")
        }
    })
    .await
    .expect("second instance");
    assert!(!output.status.success(), "the second instance must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let pid = first.child.id();
    assert!(
        stderr.contains(&log_dir.display().to_string()) && stderr.contains(&format!("process {pid}")),
        "the refusal names the directory and the holder (pid {pid}): {stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "the second instance bound nothing: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(listing(&log_dir), files_before, "the second instance changed the log directory");
    assert_eq!(std::fs::read_to_string(log_dir.join("LOCK")).expect("LOCK"), lock_before);

    // Nor may one on the same SQLite file with a log directory of its own.
    let output = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            let other_log = dir.join("other-log");
            let settings = [("NEARLINE__EMBEDDED__DATA_DIR", other_log.to_str().expect("utf-8 path"))];
            node::command(&dir, &settings)
                .stderr(std::process::Stdio::piped())
                .output()
                .expect("third nearline runs")
        }
    })
    .await
    .expect("third instance");
    assert!(!output.status.success(), "an instance on the same SQLite file must not start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let sqlite = dir.join("nearline.db");
    assert!(
        stderr.contains(&sqlite.display().to_string()) && stderr.contains(&format!("process {pid}")),
        "the refusal names the SQLite file and the holder (pid {pid}): {stderr}"
    );

    // Nor may `migrate --embedded` change the schema under it.
    let output = tokio::task::spawn_blocking({
        let sqlite = sqlite.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_nearline"))
                .args(["migrate", "--embedded"])
                .env("NEARLINE__EMBEDDED__SQLITE_PATH", &sqlite)
                .output()
                .expect("nearline migrate runs")
        }
    })
    .await
    .expect("migrate");
    assert!(!output.status.success(), "migrate must refuse a SQLite file in use");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&sqlite.display().to_string()) && stderr.contains(&format!("process {pid}")),
        "the refusal names the SQLite file and the holder (pid {pid}): {stderr}"
    );

    // The first goes on as if nothing happened, and its progress survived.
    assert_eq!(first.post(&client, &impressions("a", 10..20, time_ms)).await.expect("post"), StatusCode::OK);
    first.wait_totals(&client, time_ms, (20, 0)).await;
    let status = first.terminate();
    assert!(status.success(), "clean exit after SIGTERM, got {status}");
    let again = start(&dir, &[]);
    again.ready(&client).await;
    assert_eq!(again.post(&client, &plays("a", 0..20, time_ms)).await.expect("post"), StatusCode::OK);
    again.wait_totals(&client, time_ms, (20, 20)).await;
    drop(again);
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_log_write_answers_503_and_stops_the_process_with_an_error() {
    let dir = test_dir("nearline_failed_write");
    let client = reqwest::Client::new();
    let time_ms = now_ms();
    // Tiny segments: every batch starts a new segment file in the partition directory.
    let mut node = start_ingest(&dir, &[("NEARLINE__EMBEDDED__SEGMENT_BYTES", "1024")]);
    nearline_testkit::wait_for("ingest to be ready", DEADLINE, || async {
        let ready = client.get(format!("{}/readyz", node.ingest)).send().await.ok()?;
        ready.status().is_success().then_some(())
    })
    .await;
    assert_eq!(node.post(&client, &impressions("f", 0..50, time_ms)).await.expect("post"), StatusCode::OK);

    let topic = node::log_dir(&dir).join("topics").join(nearline_eventlog::topics::IMPRESSIONS);
    std::fs::remove_dir_all(&topic).expect("remove the impressions partitions");
    let answer = node.post(&client, &impressions("f", 50..100, time_ms)).await;
    assert!(
        matches!(answer, Ok(StatusCode::SERVICE_UNAVAILABLE) | Err(_)),
        "a batch the log could not write is not acknowledged: {answer:?}"
    );

    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = node.child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(start.elapsed() < DEADLINE, "still running {DEADLINE:?} after the log failed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "the process stops with an error, got {status}");
    let log = std::fs::read_to_string(dir.join("nearline.log")).expect("nearline.log");
    assert!(log.contains("the embedded event log failed"), "the reason is logged:\n{log}");
    drop(node);
    std::fs::remove_dir_all(dir).expect("cleanup");
}
