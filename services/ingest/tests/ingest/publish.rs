//! Valid batches over every API land on the right topics and partitions, intact.

use std::io::Write as _;

use nearline_eventlog::partition_for_key;
use nearline_proto::events::v1::{Event, Impression, Play, event};
use nearline_proto::ingest::v1::PublishRequest;
use prost::Message as _;
use serde_json::json;

use crate::harness::{self, Service, body, consume, impression, play};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_batch_lands_on_the_right_topics_and_partitions_with_every_field_intact() {
    let log = harness::test_kafka();
    let topics = harness::topics(&log, 4, 4).await;
    let service =
        Service::start(harness::config(), harness::sqlite().await, log.clone(), topics.clone()).await;

    let mut without_region = play("p3", "req-c");
    without_region.as_object_mut().unwrap().remove("region");
    let mut minimal = impression("i3", "req-c");
    let minimal_map = minimal.as_object_mut().unwrap();
    minimal_map.remove("explore");
    minimal_map.remove("artwork_id");
    let events = vec![
        impression("i1", "req-a"),
        impression("i2", "req-b"),
        minimal,
        play("p1", "req-a"),
        play("p2", "req-b"),
        without_region,
    ];
    let response = service.post_json(&events).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await, json!({"accepted": 6}));

    let impressions = consume(&log, &topics.impressions, 3).await;
    let plays = consume(&log, &topics.plays, 3).await;
    for record in impressions.iter().chain(&plays) {
        assert_eq!(record.partition, partition_for_key(&record.key, 4), "partitioned by request id");
    }
    // The same request id is on the same partition number of both topics.
    for request in ["req-a", "req-b", "req-c"] {
        let on = |records: &[nearline_eventlog::Record]| {
            records.iter().find(|r| r.key == request.as_bytes()).map(|r| r.partition).unwrap()
        };
        assert_eq!(on(&impressions), on(&plays), "{request} is co-partitioned");
    }

    let decoded: Vec<Impression> =
        impressions.iter().map(|r| Impression::decode(&r.payload[..]).unwrap()).collect();
    let i1 = decoded.iter().find(|i| i.event_id == "i1").unwrap();
    let expected_time = chrono::DateTime::parse_from_rfc3339(events[0]["event_time"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert_eq!(i1.request_id, "req-a");
    assert_eq!((i1.member_id.as_str(), i1.video_id, i1.artwork_id.as_str()), ("m1", 80_100_172, "a3"));
    assert_eq!((i1.canvas.as_str(), i1.country.as_str(), i1.device.as_str()), ("row", "US", "tv"));
    assert_eq!((i1.region.as_str(), i1.event_time_ms), ("us-east", expected_time));
    let explore = i1.explore.as_ref().unwrap();
    assert_eq!((explore.policy.as_str(), explore.model_version.as_str()), ("billboard-ts", "7"));
    assert_eq!(
        (explore.propensity, explore.explored, explore.candidates.clone()),
        (0.25, true, vec![80_100_172, 80_057_281])
    );
    let record = impressions.iter().find(|r| r.key == "req-a".as_bytes()).unwrap();
    assert_eq!(record.timestamp_ms, expected_time, "record timestamp is the event time");
    let i3 = decoded.iter().find(|i| i.event_id == "i3").unwrap();
    assert!(i3.explore.is_none() && i3.artwork_id.is_empty());

    let decoded: Vec<Play> = plays.iter().map(|r| Play::decode(&r.payload[..]).unwrap()).collect();
    let p1 = decoded.iter().find(|p| p.event_id == "p1").unwrap();
    assert_eq!((p1.request_id.as_str(), p1.member_id.as_str(), p1.video_id), ("req-a", "m1", 80_100_172));
    assert_eq!((p1.country.as_str(), p1.device.as_str(), p1.region.as_str()), ("US", "tv", "us-east"));
    assert_eq!((p1.event_time_ms, p1.watch_seconds), (events[3]["event_time"].as_i64().unwrap(), 120));
    let p3 = decoded.iter().find(|p| p.event_id == "p3").unwrap();
    assert_eq!(p3.region, "test-region", "region defaults from configuration");
    service.stop().await.expect("the service stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_gzip_and_protobuf_bodies_are_accepted() {
    let log = harness::test_kafka();
    let topics = harness::topics(&log, 2, 2).await;
    let service = Service::start(harness::config(), harness::sqlite().await, log.clone(), topics).await;

    let ndjson = format!("{}\n{}\n\n", impression("n1", "r-n"), play("n2", "r-n"));
    let response = service.post("application/x-ndjson", ndjson.clone()).await;
    assert_eq!(body(response).await, json!({"accepted": 2}));

    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(ndjson.as_bytes()).unwrap();
    let response = service
        .client
        .post(format!("{}/v1/events", service.http))
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gzip.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(body(response).await, json!({"accepted": 2}));

    let request = PublishRequest { events: vec![proto_play("pb1", "r-pb")] };
    let response = service.post("application/x-protobuf", request.encode_to_vec()).await;
    assert_eq!(body(response).await, json!({"accepted": 1}));

    assert_eq!(service.high_watermarks().await.iter().sum::<i64>(), 5);
}

/// A valid protobuf play.
pub(crate) fn proto_play(event_id: &str, request_id: &str) -> Event {
    Event {
        kind: Some(event::Kind::Play(Play {
            event_id: event_id.into(),
            request_id: request_id.into(),
            member_id: "m1".into(),
            video_id: 7,
            country: "GB".into(),
            device: "phone".into(),
            region: String::new(),
            event_time_ms: harness::now_ms(),
            watch_seconds: 30,
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_publish_and_publish_stream_are_acknowledged() {
    let log = harness::test_kafka();
    let topics = harness::topics(&log, 3, 3).await;
    let service =
        Service::start(harness::config(), harness::sqlite().await, log.clone(), topics.clone()).await;
    let mut client = service.grpc_client().await;

    let response = client
        .publish(PublishRequest { events: vec![proto_play("g1", "r-g"), proto_play("g2", "r-h")] })
        .await
        .unwrap();
    assert_eq!(response.into_inner().accepted, 2);

    let batches: Vec<PublishRequest> = (0..5)
        .map(|b| PublishRequest {
            events: (0..4).map(|i| proto_play(&format!("s{b}-{i}"), &format!("r{i}"))).collect(),
        })
        .collect();
    let response = client.publish_stream(tokio_stream::iter(batches)).await.unwrap();
    assert_eq!(response.into_inner().accepted, 20);

    let plays = consume(&log, &topics.plays, 22).await;
    let g1 = plays.iter().find(|r| r.key == "r-g".as_bytes()).unwrap();
    let decoded = Play::decode(&g1.payload[..]).unwrap();
    assert_eq!((decoded.event_id.as_str(), decoded.region.as_str()), ("g1", "test-region"));
    assert_eq!(g1.partition, nearline_eventlog::partition_for_key(b"r-g", 3));
}
