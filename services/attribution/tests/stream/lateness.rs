//! Late data: a play hours after its impression, events beyond the allowed lateness
//! (on the late topic with their reason, counted by backfill), and backfill correcting
//! what the stream had to call unattributed.

use nearline_attribution::join::LateReason;
use nearline_attribution::wire;
use nearline_eventlog::partition_for_key;
use nearline_proto::events::v1 as pb;
use prost::Message as _;

use bytes::Bytes;
use nearline_eventlog::OutgoingRecord;

use crate::harness::{Backend, Harness, on_both_backends, read_topic, settle};
use crate::workload::{
    Ev, HOUR, IMPRESSION_REGION, MINUTE, PARTITIONS, PLAY_REGION, T0, request_on, sentinels, workload,
};

on_both_backends!(
    a_play_four_hours_late_counts_in_its_impressions_epoch,
    too_late_events_go_to_the_late_topic_and_backfill_counts_them,
    backfill_attributing_a_play_the_stream_expired_takes_it_out_of_unattributed,
    poison_records_go_to_the_late_topic_and_counting_goes_on,
);

async fn a_play_four_hours_late_counts_in_its_impressions_epoch(backend: Backend) {
    let mut harness = Harness::on(backend).await;
    let request = "late-play".to_string();
    let p = partition_for_key(request.as_bytes(), PARTITIONS);
    // Traffic on the same partition moves the watermark 4 h past the impression.
    let filler = request_on("filler", p);
    let impression_time = T0 + 10 * MINUTE;
    let impressions = vec![
        Ev::Impression {
            request: request.clone(),
            video: 7,
            t: impression_time,
            country: "US",
            device: "tv",
            canvas: "row",
        },
        Ev::Impression {
            request: filler,
            video: 8,
            t: impression_time + 4 * HOUR,
            country: "US",
            device: "tv",
            canvas: "row",
        },
    ];
    let play = Ev::Play {
        request: request.clone(),
        video: 7,
        t: impression_time + 30 * MINUTE,
        country: "US",
        device: "tv",
    };
    harness.publish(&impressions).await;
    let (worker, stop) = harness.spawn_worker();
    // The play arrives only once the watermark stands 4 h past the impression.
    harness.wait_drained().await;
    harness.publish(std::slice::from_ref(&play)).await;
    harness.wait_drained().await;
    let events: Vec<Ev> = impressions.into_iter().chain([play]).collect();
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");
    let counts = harness.counts().await;
    let cell = (7, T0, "US".to_string(), "tv".to_string(), "row".to_string(), IMPRESSION_REGION.to_string());
    assert_eq!(
        counts.cells.get(&cell),
        Some(&(1, 1)),
        "the play counts in the impression's epoch: {counts:?}"
    );
    harness.assert_counts(&events).await;
}

async fn too_late_events_go_to_the_late_topic_and_backfill_counts_them(backend: Backend) {
    let mut harness = Harness::on(backend).await;
    let request = "too-late".to_string();
    let p = partition_for_key(request.as_bytes(), PARTITIONS);
    let filler = request_on("filler", p);
    // Each topic of the partition moves 8 h ahead (an impression and its play).
    let (t, country, device) = (T0 + 8 * HOUR, "US", "tv");
    let advance = vec![
        Ev::Impression { request: filler.clone(), video: 8, t, country, device, canvas: "row" },
        Ev::Play { request: filler, video: 8, t, country, device },
    ];
    // Both more than the allowed 6 h behind their own topic's watermark when they arrive.
    let late = vec![
        Ev::Impression {
            request: request.clone(),
            video: 7,
            t: T0 + 10 * MINUTE,
            country: "CA",
            device: "tv",
            canvas: "row",
        },
        Ev::Play { request: request.clone(), video: 7, t: T0 + 20 * MINUTE, country: "CA", device: "tv" },
    ];
    harness.publish(&advance).await;
    let (worker, stop) = harness.spawn_worker();
    harness.wait_drained().await;
    harness.publish(&late).await;
    harness.wait_drained().await;

    assert_eq!(harness.late_records().await, 2, "both too-late events are on the late topic");
    // Each carries its reason and the watermark of its own topic; backfill reads them back.
    let mut late: Vec<(String, pb::LateEvent)> = read_topic(harness.log.as_ref(), &harness.topics.late)
        .await
        .iter()
        .map(|record| {
            let input = wire::late_input(record).expect("a late record decodes back into its input");
            let kind = format!("{:?}", input.event.source());
            assert_eq!(record.key.as_ref(), request.as_bytes(), "keyed by request id");
            (kind, pb::LateEvent::decode(record.payload.as_ref()).expect("a LateEvent"))
        })
        .collect();
    late.sort_by(|a, b| a.0.cmp(&b.0));
    let summary: Vec<_> =
        late.iter().map(|(kind, l)| (kind.as_str(), l.reason.as_str(), l.watermark_ms)).collect();
    let reason = LateReason::BeyondAllowedLateness.as_str();
    assert_eq!(summary, vec![("Impressions", reason, T0 + 8 * HOUR), ("Plays", reason, T0 + 8 * HOUR)]);
    let cell = (7, T0, "CA".to_string(), "tv".to_string(), "row".to_string(), IMPRESSION_REGION.to_string());
    assert_eq!(harness.counts().await.cells.get(&cell), None, "the stream did not count them");
    assert_eq!(harness.reconcile(T0, T0 + HOUR).await.len(), 1, "reconcile reports the one missing cell");

    let facts = harness.recount(T0, T0 + HOUR).await;
    harness.store.write(facts.as_facts(), &[]).await.expect("backfill written");
    assert_eq!(harness.counts().await.cells.get(&cell), Some(&(1, 1)), "backfill counted them");
    // A second backfill changes nothing.
    harness.store.write(facts.as_facts(), &[]).await.expect("backfill written again");
    assert_eq!(harness.counts().await.cells.get(&cell), Some(&(1, 1)));
    assert_eq!(
        harness.reconcile(T0, T0 + 9 * HOUR).await,
        vec![],
        "reconcile finds no difference after backfill"
    );
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");
}

async fn backfill_attributing_a_play_the_stream_expired_takes_it_out_of_unattributed(backend: Backend) {
    let mut harness = Harness::on(backend).await;
    let request = "orphan".to_string();
    let p = partition_for_key(request.as_bytes(), PARTITIONS);
    let filler = request_on("filler", p);
    // The play, then (once it is read) an impression 8 h later on its partition: the
    // stream expires the play as unattributed.
    let play =
        Ev::Play { request: request.clone(), video: 9, t: T0 + 30 * MINUTE, country: "US", device: "tv" };
    let advance = Ev::Impression {
        request: filler,
        video: 8,
        t: T0 + 8 * HOUR,
        country: "US",
        device: "tv",
        canvas: "row",
    };
    harness.publish(&[play]).await;
    let (worker, stop) = harness.spawn_worker();
    harness.wait_drained().await;
    harness.publish(&[advance]).await;
    harness.wait_drained().await;
    let slice = (9, T0 + 30 * MINUTE, "US".to_string(), "tv".to_string(), PLAY_REGION.to_string());
    let counts = harness.counts().await;
    assert_eq!(counts.unattributed.get(&slice), Some(&1), "the stream expired the play: {counts:?}");

    // Its impression arrives too late for the stream; backfill attributes the play.
    let impression =
        Ev::Impression { request, video: 9, t: T0 + 20 * MINUTE, country: "US", device: "tv", canvas: "row" };
    harness.publish(&[impression]).await;
    harness.wait_drained().await;
    let facts = harness.recount(T0, T0 + 9 * HOUR).await;
    harness.store.write(facts.as_facts(), &[]).await.expect("backfill written");

    let counts = harness.counts().await;
    let cell = (9, T0, "US".to_string(), "tv".to_string(), "row".to_string(), IMPRESSION_REGION.to_string());
    assert_eq!(counts.cells.get(&cell), Some(&(1, 1)), "backfill counted the impression and its play");
    assert_eq!(counts.unattributed.get(&slice), Some(&0), "and the play is no longer unattributed");
    let members =
        harness.scalar("SELECT count(*) FROM unattributed_members WHERE request_id = 'orphan'").await;
    assert_eq!(members, 0);
    // Idempotent: a second backfill subtracts nothing more.
    harness.store.write(facts.as_facts(), &[]).await.expect("backfill written again");
    assert_eq!(harness.counts().await.unattributed.get(&slice), Some(&0));
    assert_eq!(harness.reconcile(T0, T0 + 9 * HOUR).await, vec![], "reconcile agrees");
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");
}

/// Two records no database could take (bytes that are no event, an impression with a
/// NUL in its country) among good events: both land on the late topic with their reason,
/// origin and bytes, and every good event is counted.
async fn poison_records_go_to_the_late_topic_and_counting_goes_on(backend: Backend) {
    let mut harness = Harness::on(backend).await;
    let mut events = workload(3, 200);
    let (first, second) = events.split_at(events.len() / 2);
    harness.publish(first).await;
    let garbage = OutgoingRecord {
        topic: harness.topics.impressions.clone(),
        key: Bytes::from_static(b"garbage"),
        payload: Bytes::from_static(b"\xff\xffnot a protobuf impression"),
        timestamp_ms: Some(T0),
    };
    let nul = pb::Impression {
        request_id: "nul".into(),
        video_id: 7,
        country: "U\0S".into(),
        device: "tv".into(),
        canvas: "row".into(),
        event_time_ms: T0,
        ..Default::default()
    };
    let nul = OutgoingRecord {
        topic: harness.topics.impressions.clone(),
        key: Bytes::from_static(b"nul"),
        payload: nul.encode_to_vec().into(),
        timestamp_ms: Some(T0),
    };
    harness.publish_records(vec![garbage, nul]).await;
    harness.publish(second).await;
    let (worker, stop) = harness.spawn_worker();
    harness.wait_drained().await;
    settle(&mut harness, sentinels(T0 + 5 * HOUR), &mut events).await;
    stop.cancel();
    worker.await.expect("joined").expect("the worker kept going");

    harness.assert_counts(&events).await;
    let mut dead: Vec<(String, String)> = read_topic(harness.log.as_ref(), &harness.topics.late)
        .await
        .iter()
        .map(|record| {
            let late = pb::LateEvent::decode(record.payload.as_ref()).expect("a LateEvent");
            assert!(late.event.is_none(), "no event could be made of it");
            assert_eq!(late.source_topic, harness.topics.impressions);
            assert!(!late.payload.is_empty(), "its bytes are kept");
            (String::from_utf8_lossy(&record.key).into_owned(), late.reason)
        })
        .collect();
    dead.sort();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0].0, "garbage");
    assert!(dead[0].1.starts_with("undecodable: "), "{dead:?}");
    assert_eq!(dead[1], ("nul".into(), "undecodable: country contains a NUL character".into()));
}
