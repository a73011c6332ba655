//! Every kind of bad input gets its precise error, and nothing of a rejected request
//! reaches the log.

use std::io::Write as _;

use nearline_proto::ingest::v1::PublishRequest;
use serde_json::{Value, json};
use tonic_types::StatusExt as _;

use crate::harness::{self, Service, body, impression, now_ms, play};
use crate::publish::proto_play;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Sets `field` of `event` (`None` removes it).
fn set(mut event: Value, field: &str, value: Option<Value>) -> Value {
    let map = event.as_object_mut().unwrap();
    match value {
        Some(value) => drop(map.insert(field.into(), value)),
        None => drop(map.remove(field)),
    }
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invalid_event_is_named_with_its_field_and_nothing_is_published() {
    let log = harness::test_kafka();
    let topics = harness::topics(&log, 2, 2).await;
    let service = Service::start(harness::config(), harness::sqlite().await, log, topics).await;
    let i = || impression("e", "r");
    let p = || play("e", "r");
    let mut explore_zero = i();
    explore_zero["explore"]["propensity"] = json!(0.0);
    let mut explore_big = i();
    explore_big["explore"]["propensity"] = json!(1.5);
    // (bad event, field, a word its reason must contain)
    let cases: Vec<(Value, &str, &str)> = vec![
        (set(p(), "member_id", None), "member_id", "required"),
        (set(p(), "event_id", Some(json!("x".repeat(129)))), "event_id", "128"),
        (set(i(), "request_id", Some(json!(""))), "request_id", "empty"),
        (set(i(), "artwork_id", Some(json!("a".repeat(200)))), "artwork_id", "128"),
        (set(p(), "country", Some(json!("us"))), "country", "ISO 3166"),
        (set(p(), "country", Some(json!("XX"))), "country", "ISO 3166"),
        (set(i(), "canvas", Some(json!("Row"))), "canvas", "[a-z0-9_-]"),
        (set(i(), "device", Some(json!("d".repeat(33)))), "device", "[a-z0-9_-]"),
        (set(p(), "video_id", Some(json!(0))), "video_id", "positive"),
        (set(p(), "video_id", Some(json!(-3))), "video_id", "positive"),
        (set(p(), "video_id", Some(json!("80100172"))), "video_id", "positive integer"),
        (explore_zero, "explore.propensity", "(0, 1]"),
        (explore_big, "explore.propensity", "(0, 1]"),
        (set(p(), "event_time", Some(json!(now_ms() - 8 * DAY_MS))), "event_time", "older"),
        (set(i(), "event_time", Some(json!(now_ms() + 10 * 60 * 1000))), "event_time", "ahead"),
        (set(p(), "event_time", Some(json!("tomorrow"))), "event_time", "RFC 3339"),
        (set(p(), "type", Some(json!("click"))), "type", "impression"),
        (set(p(), "watch_seconds", Some(json!(-1))), "watch_seconds", "integer"),
        (set(p(), "colour", Some(json!("red"))), "colour", "not a field"),
    ];
    for (bad, field, word) in cases {
        let response = service.post_json(&[play("ok-0", "r0"), bad.clone(), impression("ok-2", "r2")]).await;
        assert_eq!(response.status(), 400, "{field}: {bad}");
        let answer = body(response).await;
        assert_eq!(answer["error"], "invalid_events", "{answer}");
        let invalid = answer["invalid"].as_array().unwrap();
        assert_eq!(invalid.len(), 1, "exactly one violation for {field}: {answer}");
        assert_eq!(
            (invalid[0]["index"].as_u64(), invalid[0]["field"].as_str()),
            (Some(1), Some(field)),
            "{answer}"
        );
        let reason = invalid[0]["reason"].as_str().unwrap();
        assert!(reason.contains(word), "reason for {field} should mention {word:?}: {reason}");
    }

    // Every invalid event of a batch is listed, not just the first.
    let batch = [
        set(p(), "country", Some(json!("usa"))),
        play("ok", "r"),
        set(set(i(), "video_id", Some(json!(0))), "device", None),
    ];
    let answer = body(service.post_json(&batch).await).await;
    let listed: Vec<(u64, &str)> = answer["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["index"].as_u64().unwrap(), v["field"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [(0, "country"), (2, "device"), (2, "video_id")]);

    // gRPC: INVALID_ARGUMENT with one field violation per problem.
    let mut bad = proto_play("g", "r");
    if let Some(nearline_proto::events::v1::event::Kind::Play(p)) = &mut bad.kind {
        p.country = "gb".into();
        p.event_time_ms = 0;
    }
    let status = service
        .grpc_client()
        .await
        .publish(PublishRequest { events: vec![proto_play("g0", "r"), bad] })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let violations = status.get_details_bad_request().expect("BadRequest details").field_violations;
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["events[1].country", "events[1].event_time"]);

    assert_eq!(service.high_watermarks().await, vec![0; 4], "nothing of a rejected batch is published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_unsupported_bodies_are_refused_precisely() {
    let log = harness::test_kafka();
    let topics = harness::topics(&log, 1, 1).await;
    let mut config = harness::config();
    config.ingest.max_batch_events = 5;
    config.ingest.body_limit_bytes = 64 * 1024;
    let service = Service::start(config, harness::sqlite().await, log, topics).await;

    let answer = body(service.post("application/json", "{\"events\": [\n{\"type\": }]}").await).await;
    assert_eq!(
        (answer["error"].as_str(), answer["position"].as_str()),
        (Some("malformed_body"), Some("line 2 column 10"))
    );

    let ndjson = format!("{}\n{{not json}}\n", play("a", "r"));
    let response = service.post("application/x-ndjson", ndjson).await;
    assert_eq!(response.status(), 400);
    let answer = body(response).await;
    assert!(answer["position"].as_str().unwrap().starts_with("line 2 "), "{answer}");

    let response = service.post("application/x-protobuf", vec![0x0a, 0x05, 0x01]).await;
    assert_eq!(response.status(), 400);
    assert_eq!(body(response).await["error"], "malformed_body");

    let six: Vec<Value> = (0..6).map(|i| play(&format!("p{i}"), "r")).collect();
    let response = service.post_json(&six).await;
    assert_eq!(response.status(), 413);
    assert_eq!(body(response).await["error"], "too_many_events");
    let status = service
        .grpc_client()
        .await
        .publish(PublishRequest { events: (0..6).map(|i| proto_play(&format!("g{i}"), "r")).collect() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    let response = service.post("application/json", vec![b' '; 100 * 1024]).await;
    assert_eq!(response.status(), 413);

    // A small gzip body that inflates past the limit is cut off, not inflated in full.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(&vec![b' '; 10 * 1024 * 1024]).unwrap();
    let response = service
        .client
        .post(format!("{}/v1/events", service.http))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(body(response).await["error"], "body_too_large");

    let response = service
        .client
        .post(format!("{}/v1/events", service.http))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body("not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    assert_eq!(service.post("text/plain", "hello").await.status(), 415);
    let response = service
        .client
        .post(format!("{}/v1/events", service.http))
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    assert_eq!(service.high_watermarks().await, vec![0; 2]);
}
