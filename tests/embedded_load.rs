//! Sustained load on the embedded ingest stays bounded: with a small in-flight budget
//! the durable log's group commit falls behind and ingest answers 429 with
//! `Retry-After`; with small segments and a small size retention, old segments are
//! deleted in the background, the log start offset moves forward, and the process's
//! memory stays flat while far more data than that passes through.
//!
//! Bounded in batches, not in time; nothing asserts on how long anything takes. Only
//! ingest runs, so memory is the log's and ingest's alone (attribution's join state
//! grows with the events in its window, by design).

#[path = "embedded/node.rs"]
mod node;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;

use node::{DEADLINE, impressions, now_ms, start_ingest, test_dir};

const POSTERS: usize = 16;
const BATCHES_PER_POSTER: usize = 40;
const BATCH: usize = 1000;
const SEGMENT_BYTES: u64 = 256 * 1024;
const RETENTION_BYTES: u64 = 1024 * 1024;

/// The segment files of every impressions partition, by partition directory.
fn impression_segments(log_dir: &Path) -> Vec<(PathBuf, Vec<(i64, u64)>)> {
    let topic = log_dir.join("topics").join(nearline_eventlog::topics::IMPRESSIONS);
    let mut partitions = Vec::new();
    for entry in std::fs::read_dir(&topic).expect("impressions topic directory") {
        let dir = entry.expect("entry").path();
        let mut segments: Vec<(i64, u64)> = std::fs::read_dir(&dir)
            .expect("partition directory")
            .filter_map(|e| {
                let e = e.ok()?;
                let base = e.file_name().to_string_lossy().strip_suffix(".seg")?.parse().ok()?;
                Some((base, e.metadata().ok()?.len()))
            })
            .collect();
        segments.sort();
        partitions.push((dir, segments));
    }
    partitions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_load_stays_bounded_with_retention_and_answers_429_with_retry_after() {
    let dir = test_dir("nearline_load");
    let (segment, retention) = (SEGMENT_BYTES.to_string(), RETENTION_BYTES.to_string());
    let node = start_ingest(
        &dir,
        &[
            ("NEARLINE__INGEST__MAX_IN_FLIGHT_EVENTS", "3000"),
            ("NEARLINE__EMBEDDED__SEGMENT_BYTES", &segment),
            ("NEARLINE__EMBEDDED__RETENTION_BYTES", &retention),
            ("NEARLINE__EMBEDDED__CACHE_BYTES", "262144"),
        ],
    );
    let client = reqwest::Client::new();
    nearline_testkit::wait_for("ingest to be ready", DEADLINE, || async {
        let ready = client.get(format!("{}/readyz", node.ingest)).send().await.ok()?;
        ready.status().is_success().then_some(())
    })
    .await;
    let time_ms = now_ms();

    // A quarter of the load warms up buffers and pools; memory is measured from there.
    let accepted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let total = POSTERS * BATCHES_PER_POSTER;
    let mut tasks = tokio::task::JoinSet::new();
    for poster in 0..POSTERS {
        let (client, ingest) = (client.clone(), node.ingest.clone());
        let (accepted, refused) = (Arc::clone(&accepted), Arc::clone(&refused));
        tasks.spawn(async move {
            let mut i = 0;
            while i < BATCHES_PER_POSTER {
                let batch = impressions(&format!("load-{poster}"), i * BATCH..(i + 1) * BATCH, time_ms);
                let response = client
                    .post(format!("{ingest}/v1/events"))
                    .json(&batch)
                    .send()
                    .await
                    .expect("ingest answers");
                match response.status() {
                    StatusCode::OK => {
                        accepted.fetch_add(1, Ordering::SeqCst);
                        i += 1;
                    }
                    StatusCode::TOO_MANY_REQUESTS => {
                        let retry_after = response
                            .headers()
                            .get("retry-after")
                            .map(|v| v.to_str().unwrap_or("").to_owned());
                        let seconds: u64 =
                            retry_after.as_deref().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                                panic!("429 without a Retry-After in seconds: {retry_after:?}")
                            });
                        assert!(seconds >= 1, "Retry-After {seconds}");
                        refused.fetch_add(1, Ordering::SeqCst);
                        // Back off briefly rather than the second asked for, to keep the load on.
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                    other => panic!("unexpected {other}: {}", response.text().await.unwrap_or_default()),
                }
            }
        });
    }
    nearline_testkit::wait_for("a quarter of the load", DEADLINE * 4, || {
        let accepted = Arc::clone(&accepted);
        async move { (accepted.load(Ordering::SeqCst) >= total / 4).then_some(()) }
    })
    .await;
    let warm = node.rss_kib();
    let mut peak = warm;
    while !tasks.is_empty() {
        tokio::select! {
            joined = tasks.join_next() => joined.expect("a poster").expect("poster"),
            () = tokio::time::sleep(std::time::Duration::from_millis(100)) => peak = peak.max(node.rss_kib()),
        }
    }
    peak = peak.max(node.rss_kib());
    let (accepted, refused) = (accepted.load(Ordering::SeqCst), refused.load(Ordering::SeqCst));
    eprintln!(
        "{accepted} batches accepted, {refused} refused with 429; RSS {warm} KiB warm, {peak} KiB peak"
    );
    assert_eq!(accepted, total);
    assert!(refused > 0, "no 429 with {POSTERS} clients of {BATCH} events against a budget of 3000");

    // Retention catches up in the background: every partition within its bound, its
    // oldest segments gone and its start offset past 0.
    let log_dir = node::log_dir(&dir);
    wait_for_retention(&log_dir).await;

    // Three quarters of the load are 480 000 events, tens of MB of JSON and of log
    // records (the in-memory log grew by about 230 bytes per event); memory held on
    // to them would show here.
    let grown_mib = peak.saturating_sub(warm) / 1024;
    assert!(grown_mib < 40, "RSS grew by {grown_mib} MiB under sustained load ({warm} -> {peak} KiB)");
    drop(node);
    std::fs::remove_dir_all(dir).expect("cleanup");
}

async fn wait_for_retention(log_dir: &Path) {
    let start = std::time::Instant::now();
    loop {
        let partitions = impression_segments(log_dir);
        let within = partitions.iter().all(|(_, segments)| {
            let bytes: u64 = segments.iter().map(|(_, len)| len).sum();
            bytes <= RETENTION_BYTES + SEGMENT_BYTES && segments.first().is_some_and(|(base, _)| *base > 0)
        });
        if within {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "retention did not bound the partitions: {partitions:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
