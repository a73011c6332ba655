//! The durable log's metrics, all prefixed `nearline_eventlog_`, labelled by topic and
//! partition (small fixed sets), never by ids.

use std::sync::Once;
use std::time::Duration;

use metrics::Unit;

use crate::TopicPartition;

/// Time of one group commit: writing and syncing every touched partition.
const COMMIT_SECONDS: &str = "nearline_eventlog_commit_duration_seconds";
/// Records made durable by one group commit.
const COMMIT_RECORDS: &str = "nearline_eventlog_commit_records";
/// Bytes of segment files a partition retains.
const RETAINED_BYTES: &str = "nearline_eventlog_retained_bytes";
/// Log start offset of a partition.
const START_OFFSET: &str = "nearline_eventlog_start_offset";
/// Segments deleted by retention.
const SEGMENTS_DELETED: &str = "nearline_eventlog_segments_deleted_total";

/// Registers descriptions and units; idempotent.
pub(super) fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        metrics::describe_histogram!(
            COMMIT_SECONDS,
            Unit::Seconds,
            "Time of one group commit of the embedded log: write and fdatasync of every touched partition."
        );
        metrics::describe_histogram!(
            COMMIT_RECORDS,
            Unit::Count,
            "Records made durable by one group commit."
        );
        metrics::describe_gauge!(
            RETAINED_BYTES,
            Unit::Bytes,
            "Bytes of segment files a partition retains, by topic and partition."
        );
        metrics::describe_gauge!(
            START_OFFSET,
            Unit::Count,
            "Log start offset (low watermark), by topic and partition."
        );
        metrics::describe_counter!(SEGMENTS_DELETED, Unit::Count, "Segments deleted by retention, by topic.");
    });
}

/// One group commit of `records` records took `elapsed`.
pub(super) fn committed(elapsed: Duration, records: usize) {
    metrics::histogram!(COMMIT_SECONDS).record(elapsed.as_secs_f64());
    metrics::histogram!(COMMIT_RECORDS).record(records as f64);
}

/// What a partition retains after a retention pass.
pub(super) fn retained(tp: &TopicPartition, bytes: u64, start: i64, deleted: usize) {
    let partition = tp.partition.to_string();
    metrics::gauge!(RETAINED_BYTES, "topic" => tp.topic.clone(), "partition" => partition.clone())
        .set(bytes as f64);
    metrics::gauge!(START_OFFSET, "topic" => tp.topic.clone(), "partition" => partition).set(start as f64);
    if deleted > 0 {
        metrics::counter!(SEGMENTS_DELETED, "topic" => tp.topic.clone()).increment(deleted as u64);
    }
}
