//! With the broker stopped, requests get 503 / UNAVAILABLE; every batch accepted before
//! the stop is still on the topic once the broker is back.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nearline_proto::events::v1::Play;
use nearline_proto::ingest::v1::PublishRequest;
use nearline_testkit::wait_for;
use prost::Message as _;
use serde_json::Value;

use crate::harness::{self, Service, play};
use crate::publish::proto_play;

/// A tansu broker of this test's own, on a fixed port and directory across restarts.
pub(crate) struct Broker {
    child: Option<Child>,
    dir: PathBuf,
    pub(crate) port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `tansu` binary: on PATH, or where `cargo install` puts it.
fn tansu() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"))
        .find(|candidate| candidate.is_file());
    on_path
        .unwrap_or_else(|| Path::new(&std::env::var("HOME").expect("HOME is set")).join(".cargo/bin/tansu"))
}

impl Broker {
    /// Starts a broker on a free port with storage in a new directory.
    pub(crate) async fn start() -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(nearline_testkit::unique_name("ingest_broker"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut broker = Broker { child: None, dir, port };
        broker.resume().await;
        broker
    }

    /// The bootstrap address.
    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// (Re)starts the broker process on the same port and storage and waits until it listens.
    pub(crate) async fn resume(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        // tansu resolves a sqlite:// path against its working directory.
        let child = Command::new(tansu())
            .current_dir(&self.dir)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://broker.db"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts (install it with scripts/test.sh)");
        self.child = Some(child);
        let address = self.address();
        wait_for("tansu to listen", Duration::from_secs(30), || {
            let address = address.clone();
            async move { tokio::net::TcpStream::connect(address).await.ok().map(drop) }
        })
        .await;
    }

    /// Kills the broker process.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn batch(name: &str) -> Vec<Value> {
    (0..10).map(|i| play(&format!("{name}-{i}"), &format!("req-{i}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_is_503_and_accepted_batches_survive_it() {
    let mut broker = Broker::start().await;
    let log = harness::kafka(&broker.address(), Duration::from_secs(3));
    let topics = harness::topics(&log, 2, 2).await;
    let mut config = harness::config();
    config.kafka.timeout = Duration::from_secs(3);
    config.ingest.request_timeout = Duration::from_secs(30);
    let service = Service::start(config, harness::sqlite().await, log.clone(), topics.clone()).await;

    let mut accepted = HashSet::new();
    for name in ["before-1", "before-2", "before-3"] {
        let response = service.post_json(&batch(name)).await;
        assert_eq!(response.status(), 200, "{name}");
        accepted.extend(batch(name).iter().map(|e| e["event_id"].as_str().unwrap().to_owned()));
    }

    broker.stop();
    let response = service.post_json(&batch("during")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let status = service
        .grpc_client()
        .await
        .publish(PublishRequest { events: vec![proto_play("during-grpc", "r")] })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    broker.resume().await;
    // The same service recovers on its own once the broker is back: a client retrying
    // on 503 gets through within a few delivery timeouts, without any restart.
    let mut attempts = 0;
    let recovered =
        wait_for("ingest to accept again after the broker returned", Duration::from_secs(60), || {
            attempts += 1;
            let name = format!("after-{attempts}");
            let service = &service;
            async move { (service.post_json(&batch(&name)).await.status() == 200).then_some(name) }
        })
        .await;
    accepted.extend(batch(&recovered).iter().map(|e| e["event_id"].as_str().unwrap().to_owned()));
    let grpc = service
        .grpc_client()
        .await
        .publish(PublishRequest { events: vec![proto_play("after-grpc", "r")] })
        .await
        .expect("gRPC accepted after recovery");
    assert_eq!(grpc.into_inner().accepted, 1);
    accepted.insert("after-grpc".to_owned());

    // Everything acknowledged is there (a batch refused with 503 may be there too).
    let (_, high_0) =
        log.watermarks(&nearline_eventlog::TopicPartition::new(topics.plays.clone(), 0)).await.unwrap();
    let (_, high_1) =
        log.watermarks(&nearline_eventlog::TopicPartition::new(topics.plays.clone(), 1)).await.unwrap();
    let total = usize::try_from(high_0 + high_1).unwrap();
    let records = harness::consume(&log, &topics.plays, total).await;
    let on_topic: HashSet<String> =
        records.iter().map(|r| Play::decode(&r.payload[..]).unwrap().event_id).collect();
    let lost: Vec<&String> = accepted.iter().filter(|id| !on_topic.contains(*id)).collect();
    assert!(lost.is_empty(), "accepted events missing from the topic after the restart: {lost:?}");
    drop(service);
}
