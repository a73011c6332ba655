//! One conformance suite for both event logs.
//!
//! Every scenario in `conformance/scenarios.rs` is written once against
//! `Arc<dyn EventLog>` and run twice: on the in-process [`MemoryLog`] and on
//! [`KafkaLog`] against the test broker at `NEARLINE_TEST_KAFKA`. Each run uses its own
//! topics and groups, so tests are independent and may run in parallel.

// Scenarios live in their own file; `tests/` roots resolve modules beside themselves.
#[path = "conformance/scenarios.rs"]
mod scenarios;

use std::sync::Arc;
use std::time::Duration;

use nearline_eventlog::EventLog;
use nearline_eventlog::kafka::{KafkaConfig, KafkaLog};
use nearline_eventlog::memory::MemoryLog;

fn memory_log() -> Arc<dyn EventLog> {
    Arc::new(MemoryLog::new())
}

fn kafka_log() -> Arc<dyn EventLog> {
    let mut config = KafkaConfig::new(nearline_testkit::kafka_bootstrap());
    config.client_id = "nearline-eventlog-conformance".to_owned();
    config.timeout = Duration::from_secs(30);
    Arc::new(KafkaLog::connect(config).expect("Kafka clients are created without contacting the broker"))
}

/// Generates, for each scenario, one test per backend: `memory::NAME` and `kafka::NAME`.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::scenarios::$scenario(super::memory_log()).await;
                }
            )*
        }

        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::scenarios::$scenario(super::kafka_log()).await;
                }
            )*
        }
    };
}

conformance!(
    consumed_records_are_intact_and_committed_ones_are_not_redelivered,
    equal_keys_are_co_partitioned_across_topics,
    two_members_split_partitions_and_consume_each_record_once,
    seek_right_after_assignment_replays,
    seek_mid_stream_rewinds,
    topic_administration,
    watermarks_and_offsets_for_times,
    committed_offsets_are_per_group,
    commit_of_unassigned_partition_is_a_group_error,
);
