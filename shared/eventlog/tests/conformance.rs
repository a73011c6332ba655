//! One conformance suite for every event log.
//!
//! Every scenario in `conformance/scenarios.rs` (consumer groups, topics, offsets) and
//! `conformance/reader.rs` (group-less readers) is written once against
//! `Arc<dyn EventLog>` and run three times: on the in-process [`MemoryLog`], on the
//! durable embedded [`DurableLog`] (in a fresh data directory) and on [`KafkaLog`]
//! against the test broker at `NEARLINE_TEST_KAFKA`. Each run uses its own topics and
//! groups, so tests are independent and may run in parallel.
//!
//! `conformance/durable.rs` adds what only a log on local files has to show: reopening
//! after a clean close and after a crash, and retention.

// Scenarios live in their own files; `tests/` roots resolve modules beside themselves.
#[path = "conformance/durable.rs"]
mod durable;
#[path = "conformance/reader.rs"]
mod reader;
#[path = "conformance/scenarios.rs"]
mod scenarios;

use std::sync::Arc;
use std::time::Duration;

use nearline_eventlog::EventLog;
use nearline_eventlog::durable::{DurableLog, DurableOptions};
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::memory::MemoryLog;

fn memory_log() -> Arc<dyn EventLog> {
    Arc::new(MemoryLog::new())
}

/// A fresh data directory under Cargo's `target/tmp` (the shared scenarios cannot
/// remove theirs, since the log outlives them; `cargo clean` does).
pub(crate) fn data_dir() -> std::path::PathBuf {
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(nearline_testkit::unique_name("durable_log"));
    std::fs::create_dir_all(&dir).expect("creating a data directory");
    dir
}

fn durable_log() -> Arc<dyn EventLog> {
    // Small segments and a small memory tail, so the scenarios also cross segment
    // boundaries and read records back from the files.
    let options = DurableOptions { segment_bytes: 4096, cache_bytes: 512, ..DurableOptions::new(data_dir()) };
    Arc::new(DurableLog::open(options).expect("opening a durable log"))
}

fn kafka_log() -> Arc<dyn EventLog> {
    let mut config = KafkaConfig::new(nearline_testkit::kafka_bootstrap());
    config.client_id = "nearline-eventlog-conformance".to_owned();
    config.timeout = Duration::from_secs(30);
    Arc::new(KafkaLog::connect(config).expect("Kafka clients are created without contacting the broker"))
}

/// Generates, for each `module::scenario`, one test per backend: `memory::scenario`,
/// `durable::scenario` and `kafka::scenario`.
macro_rules! conformance {
    ($($module:ident::$scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$module::$scenario(super::memory_log()).await;
                }
            )*
        }

        mod on_disk {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$module::$scenario(super::durable_log()).await;
                }
            )*
        }

        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$module::$scenario(super::kafka_log()).await;
                }
            )*
        }
    };
}

conformance!(
    scenarios::consumed_records_are_intact_and_committed_ones_are_not_redelivered,
    scenarios::equal_keys_are_co_partitioned_across_topics,
    scenarios::two_members_split_partitions_and_consume_each_record_once,
    scenarios::seek_right_after_assignment_replays,
    scenarios::seek_mid_stream_rewinds,
    scenarios::topic_administration,
    scenarios::watermarks_and_offsets_for_times,
    scenarios::committed_offsets_are_per_group,
    scenarios::commit_of_unassigned_partition_is_a_group_error,
    scenarios::pause_holds_back_a_partition_until_resume,
    reader::reader_from_a_middle_offset_reads_the_rest_in_order,
    reader::reader_reads_every_record_of_two_partitions,
    reader::reader_unassign_stops_one_partition_and_the_other_goes_on,
    reader::reader_reassign_at_an_earlier_offset_replays,
    reader::reader_offsets_are_clamped_to_the_retained_range,
);
