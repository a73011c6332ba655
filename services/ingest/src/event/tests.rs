//! JSON, NDJSON and protobuf decoding: the contract's shapes, both event-time forms,
//! the region default, and a precise violation for every kind of field mistake.

use nearline_proto::events::v1::event::Kind;
use nearline_proto::ingest::v1::PublishRequest;
use prost::Message as _;
use serde_json::json;

use super::*;

const IMPRESSION: &str = r#"{"type":"impression","event_id":"e1","request_id":"r1","member_id":"m1","video_id":80100172,"artwork_id":"a3","canvas":"row","country":"US","device":"tv","region":"us-east","event_time":"2026-11-22T10:00:00Z","explore":{"policy":"billboard-ts","model_version":"7","propensity":0.25,"explored":true,"candidates":[80100172,80057281],"candidate_artworks":[{"video_id":80100172,"artwork_ids":["a3","a4"]},{"video_id":80057281,"artwork_ids":["crown-1"]}],"context":{"country":"US","device":"tv","hour_of_day":20}}}"#;
const PLAY: &str = r#"{"type":"play","event_id":"e2","request_id":"r1","member_id":"m1","video_id":80100172,"country":"US","device":"tv","region":"us-east","event_time":1795340000000,"watch_seconds":120}"#;

fn json_batch(events: &[serde_json::Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "events": events })).unwrap()
}

fn one(event: serde_json::Value) -> Decoded {
    decode_json(&json_batch(&[event]), "local", 100).unwrap()
}

fn base(kind: &str) -> serde_json::Value {
    serde_json::from_str(if kind == "play" { PLAY } else { IMPRESSION }).unwrap()
}

fn with(kind: &str, change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Decoded {
    let mut value = base(kind);
    change(value.as_object_mut().unwrap());
    one(value)
}

fn fields(decoded: &Decoded) -> Vec<(usize, &str)> {
    decoded.violations.iter().map(|v| (v.index, v.field.as_str())).collect()
}

#[test]
fn issue_examples_decode_with_every_field() {
    let body = format!(r#"{{"events":[{IMPRESSION},{PLAY}]}}"#);
    let decoded = decode_json(body.as_bytes(), "local", 100).unwrap();
    assert_eq!(decoded.violations, vec![]);
    let Some(Kind::Impression(i)) = &decoded.events[0].kind else { panic!("first is an impression") };
    assert_eq!((i.event_id.as_str(), i.request_id.as_str(), i.member_id.as_str()), ("e1", "r1", "m1"));
    assert_eq!((i.video_id, i.artwork_id.as_str(), i.canvas.as_str()), (80_100_172, "a3", "row"));
    assert_eq!((i.country.as_str(), i.device.as_str(), i.region.as_str()), ("US", "tv", "us-east"));
    assert_eq!(i.event_time_ms, 1_795_341_600_000, "2026-11-22T10:00:00Z");
    let explore = i.explore.as_ref().unwrap();
    assert_eq!((explore.policy.as_str(), explore.model_version.as_str()), ("billboard-ts", "7"));
    assert_eq!((explore.propensity, explore.explored), (0.25, true));
    assert_eq!(explore.candidates, vec![80_100_172, 80_057_281]);
    assert_eq!(explore.candidate_artworks.len(), 2);
    assert_eq!(
        (explore.candidate_artworks[0].video_id, &explore.candidate_artworks[0].artwork_ids[..]),
        (80_100_172, &["a3".to_string(), "a4".to_string()][..])
    );
    let context = explore.context.as_ref().unwrap();
    assert_eq!((context.country.as_str(), context.device.as_str(), context.hour_of_day), ("US", "tv", 20));
    let Some(Kind::Play(p)) = &decoded.events[1].kind else { panic!("second is a play") };
    assert_eq!((p.event_time_ms, p.watch_seconds, p.region.as_str()), (1_795_340_000_000, 120, "us-east"));
}

#[test]
fn event_time_takes_rfc3339_with_offsets_and_integer_ms() {
    let time = |value: serde_json::Value| {
        let decoded = with("play", |m| drop(m.insert("event_time".into(), value)));
        assert_eq!(decoded.violations, vec![]);
        let Some(Kind::Play(p)) = &decoded.events[0].kind else { unreachable!() };
        p.event_time_ms
    };
    assert_eq!(time(json!("2026-11-22T10:00:00.250Z")), 1_795_341_600_250);
    assert_eq!(time(json!("2026-11-22T11:00:00+01:00")), 1_795_341_600_000);
    assert_eq!(time(json!(1_795_341_600_250_i64)), 1_795_341_600_250);
    for bad in [json!("yesterday"), json!("2026-11-22"), json!(1.5), json!(true), json!([1])] {
        assert_eq!(
            fields(&with("play", |m| drop(m.insert("event_time".into(), bad.clone())))),
            [(0, "event_time")],
            "{bad}"
        );
    }
}

#[test]
fn region_defaults_from_configuration() {
    let decoded = with("impression", |m| drop(m.remove("region")));
    let Some(Kind::Impression(i)) = &decoded.events[0].kind else { unreachable!() };
    assert_eq!(i.region, "local");
    let decoded = with("play", |m| drop(m.insert("region".into(), json!(null))));
    let Some(Kind::Play(p)) = &decoded.events[0].kind else { unreachable!() };
    assert_eq!(p.region, "local");
}

#[test]
fn optional_fields_may_be_absent() {
    let decoded = with("impression", |m| {
        m.remove("artwork_id");
        m.remove("explore");
    });
    assert_eq!(decoded.violations, vec![]);
    let Some(Kind::Impression(i)) = &decoded.events[0].kind else { unreachable!() };
    assert!(i.artwork_id.is_empty() && i.explore.is_none());
}

#[test]
fn every_required_field_is_reported_missing() {
    let impression = with("impression", |m| m.retain(|k, _| k == "type"));
    let missing: Vec<&str> = impression.violations.iter().map(|v| v.field.as_str()).collect();
    let expected =
        ["event_id", "request_id", "member_id", "video_id", "country", "device", "event_time", "canvas"];
    assert_eq!(missing, expected);
    assert!(impression.violations.iter().all(|v| v.reason == "is required"));
    let play = with("play", |m| m.retain(|k, _| k == "type"));
    assert!(play.violations.iter().any(|v| v.field == "watch_seconds"));
}

#[test]
fn wrong_types_are_reported_per_field() {
    let decoded = with("play", |m| {
        m.insert("event_id".into(), json!(7));
        m.insert("video_id".into(), json!("80100172"));
        m.insert("watch_seconds".into(), json!(-1));
        m.insert("country".into(), json!(["US"]));
    });
    assert_eq!(fields(&decoded), [(0, "event_id"), (0, "video_id"), (0, "country"), (0, "watch_seconds")]);
    assert_eq!(fields(&with("play", |m| drop(m.insert("video_id".into(), json!(1.5))))), [(0, "video_id")]);
    assert_eq!(
        fields(&with("play", |m| drop(m.insert("watch_seconds".into(), json!(4_294_967_296_u64))))),
        [(0, "watch_seconds")]
    );
}

#[test]
fn type_must_be_impression_or_play() {
    assert_eq!(fields(&with("play", |m| drop(m.insert("type".into(), json!("click"))))), [(0, "type")]);
    assert_eq!(fields(&with("play", |m| drop(m.remove("type")))), [(0, "type")]);
    assert_eq!(fields(&one(json!([1, 2]))), [(0, "event")]);
    assert_eq!(fields(&one(json!("play"))), [(0, "event")]);
}

#[test]
fn unknown_fields_and_fields_of_the_other_type_are_reported() {
    assert_eq!(fields(&with("play", |m| drop(m.insert("evnt_time".into(), json!(1))))), [(0, "evnt_time")]);
    assert_eq!(fields(&with("play", |m| drop(m.insert("canvas".into(), json!("row"))))), [(0, "canvas")]);
    assert_eq!(
        fields(&with("impression", |m| drop(m.insert("watch_seconds".into(), json!(3))))),
        [(0, "watch_seconds")]
    );
}

#[test]
fn explore_problems_name_the_nested_field() {
    let decoded = with("impression", |m| {
        m.insert(
            "explore".into(),
            json!({"policy": 3, "propensity": "high", "explored": "yes", "candidates": [1, "2"], "extra": 1}),
        );
    });
    let got: Vec<&str> = decoded.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        got,
        [
            "explore.policy",
            "explore.model_version",
            "explore.propensity",
            "explore.explored",
            "explore.candidates[1]",
            "explore.extra"
        ]
    );
    assert_eq!(fields(&with("impression", |m| drop(m.insert("explore".into(), json!(1))))), [(0, "explore")]);
}

#[test]
fn explore_context_and_candidate_artworks_problems_name_the_nested_field() {
    let decoded = with("impression", |m| {
        m.insert(
            "explore".into(),
            json!({
                "policy": "linucb", "model_version": "1", "propensity": 0.5, "explored": false,
                "candidate_artworks": [
                    {"video_id": "1", "artwork_ids": ["a", 2]},
                    {"artwork_ids": "a", "extra": 1},
                    3
                ],
                "context": {"country": 1, "hour_of_day": -1, "daypart": "x"}
            }),
        );
    });
    let got: Vec<&str> = decoded.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        got,
        [
            "explore.candidate_artworks[0].video_id",
            "explore.candidate_artworks[0].artwork_ids[1]",
            "explore.candidate_artworks[1].video_id",
            "explore.candidate_artworks[1].artwork_ids",
            "explore.candidate_artworks[1].extra",
            "explore.candidate_artworks[2]",
            "explore.context.country",
            "explore.context.device",
            "explore.context.hour_of_day",
            "explore.context.daypart",
        ]
    );
    let with_context = |c: serde_json::Value| {
        with("impression", move |m| {
            m["explore"]["context"] = c;
        })
    };
    assert_eq!(fields(&with_context(json!("US"))), [(0, "explore.context")]);
    assert_eq!(fields(&with_context(json!({"country": "US", "device": "tv", "hour_of_day": 20}))), []);
}

#[test]
fn indices_count_events_in_body_order() {
    let mut bad = base("play");
    bad.as_object_mut().unwrap().remove("member_id");
    let decoded = decode_json(&json_batch(&[base("play"), base("impression"), bad]), "local", 100).unwrap();
    assert_eq!(fields(&decoded), [(2, "member_id")]);
    assert_eq!(decoded.events.len(), 3);
}

#[test]
fn malformed_json_names_line_and_column() {
    let body = b"{\"events\": [\n  {\"type\": \"play\",}\n]}";
    let Err(DecodeError::Malformed { position, reason }) = decode_json(body, "local", 100) else {
        panic!("a trailing comma is malformed")
    };
    assert_eq!(position, "line 2 column 19");
    assert!(!reason.contains(" at line "), "{reason}");
    assert!(matches!(decode_json(b"[]", "local", 100), Err(DecodeError::Malformed { .. })));
    assert!(matches!(decode_json(b"{\"evens\":[]}", "local", 100), Err(DecodeError::Malformed { .. })));
    assert!(matches!(decode_json(b"", "local", 100), Err(DecodeError::Malformed { .. })));
}

#[test]
fn ndjson_reads_one_event_per_line_and_names_the_bad_line() {
    let body = format!("{PLAY}\n\n{IMPRESSION}\r\n");
    let decoded = decode_ndjson(body.as_bytes(), "local", 100).unwrap();
    assert_eq!((decoded.events.len(), decoded.violations.len()), (2, 0));

    let body = format!("{PLAY}\n{PLAY}\n{{\"type\":\n");
    let Err(DecodeError::Malformed { position, .. }) = decode_ndjson(body.as_bytes(), "local", 100) else {
        panic!("line 3 is cut short")
    };
    assert!(position.starts_with("line 3 "), "{position}");
}

#[test]
fn too_many_events_is_its_own_error() {
    let body = json_batch(&[base("play"), base("play"), base("play")]);
    assert_eq!(decode_json(&body, "local", 2), Err(DecodeError::TooManyEvents { count: 3, max: 2 }));
    let body = format!("{PLAY}\n{PLAY}\n{PLAY}\n");
    assert!(matches!(
        decode_ndjson(body.as_bytes(), "local", 2),
        Err(DecodeError::TooManyEvents { max: 2, .. })
    ));
}

#[test]
fn protobuf_round_trips_and_fills_the_region() {
    let json = format!(r#"{{"events":[{IMPRESSION},{PLAY}]}}"#);
    let mut events = decode_json(json.as_bytes(), "local", 100).unwrap().events;
    if let Some(Kind::Play(p)) = &mut events[1].kind {
        p.region.clear();
    }
    let body = PublishRequest { events: events.clone() }.encode_to_vec();
    let decoded = decode_protobuf(&body, "eu-west", 100).unwrap();
    let Some(Kind::Play(p)) = &decoded.events[1].kind else { unreachable!() };
    assert_eq!(p.region, "eu-west");
    assert_eq!(decoded.events[0], events[0]);
    assert!(matches!(decode_protobuf(&[0x0a, 0xff], "local", 100), Err(DecodeError::Malformed { .. })));
    assert_eq!(decode_protobuf(&body, "local", 1), Err(DecodeError::TooManyEvents { count: 2, max: 1 }));
}
