//! A spent in-flight budget answers 429 / RESOURCE_EXHAUSTED with Retry-After at once,
//! and the budget comes back when the log answers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nearline_eventlog::memory::MemoryLog;
use nearline_eventlog::{
    Consumer, Delivery, EventLog, OutgoingRecord, Reader, Result, TopicPartition, TopicSpec,
};
use nearline_proto::ingest::v1::PublishRequest;
use tokio::sync::Semaphore;

use crate::harness::{self, Service, play};
use crate::publish::proto_play;

/// An in-process log whose publishes wait until the test lets them through.
#[derive(Debug)]
struct GatedLog {
    inner: MemoryLog,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl EventLog for GatedLog {
    async fn create_topics(&self, topics: &[TopicSpec]) -> Result<()> {
        self.inner.create_topics(topics).await
    }
    async fn partition_count(&self, topic: &str) -> Result<i32> {
        self.inner.partition_count(topic).await
    }
    async fn publish(&self, records: Vec<OutgoingRecord>) -> Result<Vec<Delivery>> {
        let _pass = self.gate.acquire().await.expect("the gate stays open");
        self.inner.publish(records).await
    }
    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Consumer>> {
        self.inner.subscribe(group, topics).await
    }
    async fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64)> {
        self.inner.watermarks(tp).await
    }
    async fn offset_for_time(&self, tp: &TopicPartition, timestamp_ms: i64) -> Result<Option<i64>> {
        self.inner.offset_for_time(tp, timestamp_ms).await
    }
    async fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Result<Option<i64>> {
        self.inner.committed_offset(group, tp).await
    }
    async fn reader(&self) -> Result<Box<dyn Reader>> {
        self.inner.reader().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_budget_is_429_and_resource_exhausted_with_retry_after() {
    let gate = Arc::new(Semaphore::new(0));
    let log: Arc<dyn EventLog> = Arc::new(GatedLog { inner: MemoryLog::new(), gate: gate.clone() });
    let topics = harness::topics(&log, 2, 2).await;
    let mut config = harness::config();
    config.ingest.max_in_flight_events = 3;
    let service = Arc::new(Service::start(config, harness::sqlite().await, log, topics).await);

    // Three events fill the budget while the log holds them.
    let holder = {
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            service.post_json(&[play("a", "r"), play("b", "r"), play("c", "r")]).await.status()
        })
    };
    // (nextest runs each test in its own process, so the gauge is this test's own.)
    nearline_testkit::wait_for("the budget to be spent", Duration::from_secs(10), || {
        let service = Arc::clone(&service);
        async move {
            let metrics = service.client.get(format!("{}/metrics", service.http)).send().await.ok()?;
            metrics
                .text()
                .await
                .ok()?
                .lines()
                .any(|l| l == "nearline_ingest_in_flight_events 3")
                .then_some(())
        }
    })
    .await;
    let response = service.post_json(&[play("d", "r")]).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["connection"], "close", "the unread body ends the connection; say so");
    assert_eq!(harness::body(response).await["error"], "overloaded");

    let status =
        service.grpc_client().await.publish(PublishRequest { events: vec![proto_play("g", "r")] }).await;
    let status = status.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(status.metadata().get("retry-after").unwrap(), "1");

    // Once the log answers, the budget is back.
    gate.add_permits(1000);
    assert_eq!(holder.await.unwrap(), 200);
    assert_eq!(service.post_json(&[play("e", "r")]).await.status(), 200);
    let metrics =
        service.client.get(format!("{}/metrics", service.http)).send().await.unwrap().text().await.unwrap();
    for name in [
        "nearline_ingest_events_accepted_total",
        "nearline_ingest_events_rejected_total",
        "nearline_ingest_publish_duration_seconds",
        "nearline_ingest_in_flight_events",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    assert!(metrics.contains("reason=\"overloaded\""), "overload is counted");
}
