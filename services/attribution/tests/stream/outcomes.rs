//! Outcomes (bandit rewards): one per explored impression, with the reward and the
//! catalog's facts about the title.

use std::collections::HashMap;

use bytes::Bytes;
use nearline_attribution::topics::Topics;
use nearline_eventlog::OutgoingRecord;
use nearline_proto::events::v1 as pb;
use prost::Message as _;

use crate::harness::{Backend, Harness, on_both_backends, read_topic};
use crate::workload::{HOUR, MINUTE, T0, sentinels};

on_both_backends!(outcomes_carry_the_reward_and_the_catalogs_facts_about_the_title);

/// An explored impression of `video` at `t`, as a bandit's pick would be logged.
fn explored_impression(topics: &Topics, request: &str, video: i64, t: i64) -> OutgoingRecord {
    let impression = pb::Impression {
        event_id: format!("{request}-impression"),
        request_id: request.into(),
        member_id: "m1".into(),
        video_id: video,
        artwork_id: "a3".into(),
        canvas: "billboard".into(),
        country: "US".into(),
        device: "tv".into(),
        region: "us-east".into(),
        event_time_ms: t,
        explore: Some(pb::Explore {
            policy: "billboard-ts".into(),
            model_version: "7".into(),
            propensity: 0.25,
            explored: true,
            candidates: vec![video, 5],
            candidate_artworks: vec![
                pb::CandidateArtworks { video_id: video, artwork_ids: vec!["a3".into(), "a4".into()] },
                pb::CandidateArtworks { video_id: 5, artwork_ids: vec!["a5".into()] },
            ],
            context: Some(pb::ExploreContext { country: "US".into(), device: "tv".into(), hour_of_day: 21 }),
        }),
    };
    OutgoingRecord {
        topic: topics.impressions.clone(),
        key: Bytes::copy_from_slice(request.as_bytes()),
        payload: impression.encode_to_vec().into(),
        timestamp_ms: Some(t),
    }
}

/// Every record on `topic`, read from the start of each partition.
async fn outcomes_carry_the_reward_and_the_catalogs_facts_about_the_title(backend: Backend) {
    let mut harness = Harness::on(backend).await;
    harness
        .execute(&format!(
            "INSERT INTO videos (video_id, title, kind, genres, launch_at_ms) \
             VALUES (42, 'Known', 'series', '[\"drama\",\"crime\"]', {})",
            T0 - HOUR
        ))
        .await;
    assert_eq!(harness.catalog.refresh(&harness.database).await.expect("catalog loaded"), 1);

    // A known title played 5 minutes after its impression (a reward); a title the
    // catalog does not know, never played (no reward once the watermark passes).
    let mut records = vec![
        explored_impression(&harness.topics, "rewarded", 42, T0),
        explored_impression(&harness.topics, "unrewarded", 43, T0),
    ];
    records.push(OutgoingRecord {
        topic: harness.topics.plays.clone(),
        key: Bytes::from_static(b"rewarded"),
        payload: pb::Play {
            event_id: "rewarded-play".into(),
            request_id: "rewarded".into(),
            member_id: "m1".into(),
            video_id: 42,
            country: "US".into(),
            device: "tv".into(),
            region: "eu-west".into(),
            event_time_ms: T0 + 5 * MINUTE,
            watch_seconds: 60,
        }
        .encode_to_vec()
        .into(),
        timestamp_ms: Some(T0 + 5 * MINUTE),
    });
    harness.publish_records(records).await;
    harness.publish(&sentinels(T0)).await;
    let (worker, stop) = harness.spawn_worker();
    harness.wait_drained().await;
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");

    let outcomes: HashMap<String, pb::Outcome> = read_topic(harness.log.as_ref(), &harness.topics.outcomes)
        .await
        .iter()
        .map(|r| {
            let outcome = pb::Outcome::decode(r.payload.as_ref()).expect("an outcome");
            assert_eq!(r.key.as_ref(), outcome.request_id.as_bytes(), "keyed by request id");
            (outcome.request_id.clone(), outcome)
        })
        .collect();
    assert_eq!(outcomes.len(), 2, "one outcome per explored impression: {outcomes:?}");

    let rewarded = &outcomes["rewarded"];
    assert!(rewarded.played);
    assert_eq!(rewarded.play_time_ms, Some(T0 + 5 * MINUTE));
    assert_eq!(
        (rewarded.video_id, rewarded.artwork_id.as_str(), rewarded.canvas.as_str()),
        (42, "a3", "billboard")
    );
    let explore = rewarded.explore.as_ref().expect("explore kept");
    assert_eq!((explore.policy.as_str(), explore.propensity), ("billboard-ts", 0.25));
    // What offline evaluation needs travels through the join unchanged.
    assert_eq!(explore.candidate_artworks.len(), 2);
    assert_eq!(explore.candidate_artworks[0].artwork_ids, ["a3", "a4"]);
    assert_eq!(explore.context.as_ref().map(|c| (c.country.as_str(), c.hour_of_day)), Some(("US", 21)));
    assert_eq!(
        rewarded.title,
        Some(pb::TitleInfo {
            kind: "series".into(),
            genres: vec!["drama".into(), "crime".into()],
            launch_at_ms: Some(T0 - HOUR)
        }),
        "enriched from the catalog"
    );

    let unrewarded = &outcomes["unrewarded"];
    assert!(!unrewarded.played);
    assert_eq!(unrewarded.play_time_ms, None);
    assert_eq!(unrewarded.title, None, "a title the catalog does not know is sent without facts");
}
