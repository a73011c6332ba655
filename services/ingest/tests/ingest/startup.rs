//! Start-up refuses topics that are not co-partitioned, or missing, with a message that
//! names what is wrong.

use std::sync::Arc;

use nearline_ingest::Topics;
use nearline_runtime::server::Listeners;
use tokio_util::sync::CancellationToken;

use crate::harness;

async fn start(topics: Topics, log: Arc<dyn nearline_eventlog::EventLog>) -> nearline_ingest::Error {
    let config = harness::config();
    let listeners = Listeners::bind(&config.ingest.server()).await.unwrap();
    let run = nearline_ingest::run_with_topics(
        Arc::new(config),
        harness::sqlite().await,
        log,
        topics,
        listeners,
        CancellationToken::new(),
    );
    tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("start-up gives up rather than serving")
        .expect_err("start-up refuses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_partition_counts_refuse_to_start_naming_both() {
    let log = harness::test_kafka();
    let topics = harness::topics(&log, 2, 3).await;
    let error = start(topics.clone(), log).await;
    let message = error.to_string();
    assert!(matches!(error, nearline_ingest::Error::NotCoPartitioned { .. }), "{message}");
    assert!(message.contains(&format!("{} (2 partitions)", topics.impressions)), "{message}");
    assert!(message.contains(&format!("{} (3 partitions)", topics.plays)), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_refuses_to_start() {
    let log = harness::memory();
    let topics = Topics { impressions: "nowhere.impressions".into(), plays: "nowhere.plays".into() };
    let error = start(topics, log).await;
    assert!(error.to_string().contains("nowhere.impressions"), "{error}");
}
