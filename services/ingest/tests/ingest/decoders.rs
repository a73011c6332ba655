//! Arbitrary bytes, and arbitrary mutations of valid bodies, never make the decoders
//! panic or answer 5xx: the answer is always a 4xx, or 200 when the input happens to be
//! valid. Runs on the in-process log, through the service's router.

use axum::body::Body;
use http::Request;
use nearline_ingest::{Ingest, Topics};
use nearline_proto::ingest::v1::PublishRequest;
use proptest::prelude::*;
use prost::Message as _;
use tower::ServiceExt as _;

use crate::harness::{self, impression, play};
use crate::publish::proto_play;

const TYPES: [&str; 3] = ["application/json", "application/x-ndjson", "application/x-protobuf"];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    ingest: Ingest,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let ingest = runtime.block_on(async {
        let log = harness::memory();
        let topics: Topics = harness::topics(&log, 2, 2).await;
        let mut config = harness::config();
        config.ingest.max_batch_events = 50;
        Ingest::new(&config, harness::sqlite().await, log, topics)
    });
    Fixture { runtime, ingest }
}

impl Fixture {
    fn status(&self, content_type: &str, gzip: bool, body: Vec<u8>) -> u16 {
        let mut request = Request::post("/v1/events").header("content-type", content_type);
        if gzip {
            request = request.header("content-encoding", "gzip");
        }
        let request = request.body(Body::from(body)).unwrap();
        let response = self.runtime.block_on(self.ingest.router().oneshot(request)).unwrap();
        response.status().as_u16()
    }
}

/// Valid bodies of each format.
fn valid_bodies() -> [Vec<u8>; 3] {
    let events = [impression("i", "r"), play("p", "r")];
    let json = serde_json::to_vec(&serde_json::json!({ "events": events })).unwrap();
    let ndjson = format!("{}\n{}\n", events[0], events[1]).into_bytes();
    let protobuf =
        PublishRequest { events: vec![proto_play("p", "r"), proto_play("q", "s")] }.encode_to_vec();
    [json, ndjson, protobuf]
}

fn acceptable(status: u16) -> bool {
    status == 200 || (400..500).contains(&status)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_with_a_4xx(body in proptest::collection::vec(any::<u8>(), 0..1024), format in 0..3usize, gzip in any::<bool>()) {
        let fixture = fixture();
        let status = fixture.status(TYPES[format], gzip, body);
        prop_assert!(acceptable(status), "status {}", status);
    }

    #[test]
    fn mutated_valid_bodies_are_refused_with_a_4xx_or_accepted(
        format in 0..3usize,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let fixture = fixture();
        let mut body = valid_bodies()[format].clone();
        for (at, byte, op) in edits {
            let i = at.index(body.len().max(1)).min(body.len());
            match op {
                0 if i < body.len() => body[i] = byte,
                1 => body.insert(i, byte),
                _ if i < body.len() => drop(body.remove(i)),
                _ => body.push(byte),
            }
        }
        if let Some(cut) = cut {
            let at = cut.index(body.len() + 1);
            body.truncate(at);
        }
        let status = fixture.status(TYPES[format], false, body);
        prop_assert!(acceptable(status), "status {}", status);
    }
}

#[test]
fn valid_bodies_are_accepted_through_the_router() {
    let fixture = fixture();
    for (format, body) in valid_bodies().into_iter().enumerate() {
        assert_eq!(fixture.status(TYPES[format], false, body), 200, "{}", TYPES[format]);
    }
}
