//! Every validation rule, at and just past its bounds.

use std::time::Duration;

use nearline_proto::events::v1::{
    CandidateArtworks, Event, Explore, ExploreContext, Impression, Play, event,
};

use super::*;

const NOW: i64 = 1_795_340_000_000;

fn bounds() -> TimeBounds {
    TimeBounds::around(NOW, Duration::from_secs(7 * 24 * 3600), Duration::from_secs(300))
}

fn impression() -> Impression {
    Impression {
        event_id: "e1".into(),
        request_id: "r1".into(),
        member_id: "m1".into(),
        video_id: 80_100_172,
        artwork_id: "a3".into(),
        canvas: "row".into(),
        country: "US".into(),
        device: "tv".into(),
        region: "us-east".into(),
        event_time_ms: NOW,
        explore: Some(Explore {
            policy: "billboard-ts".into(),
            model_version: "7".into(),
            propensity: 0.25,
            explored: true,
            candidates: vec![80_100_172, 80_057_281],
            candidate_artworks: vec![
                CandidateArtworks { video_id: 80_100_172, artwork_ids: vec!["a3".into(), "a4".into()] },
                CandidateArtworks { video_id: 80_057_281, artwork_ids: vec!["crown-1".into()] },
            ],
            context: Some(ExploreContext { country: "US".into(), device: "tv".into(), hour_of_day: 20 }),
        }),
    }
}

fn play() -> Play {
    Play {
        event_id: "e2".into(),
        request_id: "r1".into(),
        member_id: "m1".into(),
        video_id: 80_100_172,
        country: "US".into(),
        device: "tv".into(),
        region: "us-east".into(),
        event_time_ms: NOW,
        watch_seconds: 120,
    }
}

fn imp(change: impl FnOnce(&mut Impression)) -> Vec<Violation> {
    let mut i = impression();
    change(&mut i);
    check_batch(&[Event { kind: Some(event::Kind::Impression(i)) }], &bounds())
}

fn ply(change: impl FnOnce(&mut Play)) -> Vec<Violation> {
    let mut p = play();
    change(&mut p);
    check_batch(&[Event { kind: Some(event::Kind::Play(p)) }], &bounds())
}

/// The fields in violation.
fn fields(violations: &[Violation]) -> Vec<&str> {
    violations.iter().map(|v| v.field.as_str()).collect()
}

#[test]
fn valid_events_pass() {
    assert_eq!(imp(|_| {}), vec![]);
    assert_eq!(ply(|_| {}), vec![]);
    assert_eq!(imp(|i| i.explore = None), vec![]);
    assert_eq!(imp(|i| i.artwork_id.clear()), vec![], "artwork_id is optional");
}

#[test]
fn ids_are_1_to_128_characters() {
    for field in ["event_id", "request_id", "member_id"] {
        let set = |i: &mut Impression, value: String| match field {
            "event_id" => i.event_id = value,
            "request_id" => i.request_id = value,
            _ => i.member_id = value,
        };
        assert_eq!(fields(&imp(|i| set(i, String::new()))), [field]);
        assert_eq!(fields(&imp(|i| set(i, "x".repeat(129)))), [field]);
        assert_eq!(imp(|i| set(i, "x".repeat(128))), vec![]);
        // Characters, not bytes.
        assert_eq!(imp(|i| set(i, "é".repeat(128))), vec![]);
    }
    assert_eq!(fields(&imp(|i| i.artwork_id = "a".repeat(129))), ["artwork_id"]);
    assert_eq!(fields(&ply(|p| p.event_id.clear())), ["event_id"]);
}

#[test]
fn country_is_an_assigned_upper_case_alpha_2_code() {
    for good in ["US", "GB", "BR", "AD", "ZW"] {
        assert_eq!(imp(|i| i.country = good.into()), vec![], "{good}");
    }
    for bad in ["us", "USA", "U", "", "XX", "UK", "1A"] {
        assert_eq!(fields(&imp(|i| i.country = bad.into())), ["country"], "{bad:?}");
        assert_eq!(fields(&ply(|p| p.country = bad.into())), ["country"], "{bad:?}");
    }
}

#[test]
fn canvas_and_device_are_tokens() {
    for good in ["row", "billboard", "search_2", "tv-4k", &"a".repeat(32)] {
        assert_eq!(imp(|i| i.canvas = good.into()), vec![], "{good}");
        assert_eq!(ply(|p| p.device = good.into()), vec![], "{good}");
    }
    for bad in ["", "Row", "tv 4k", "tv.4k", &"a".repeat(33), "télé"] {
        assert_eq!(fields(&imp(|i| i.canvas = bad.into())), ["canvas"], "{bad:?}");
        assert_eq!(fields(&imp(|i| i.device = bad.into())), ["device"], "{bad:?}");
        assert_eq!(fields(&ply(|p| p.device = bad.into())), ["device"], "{bad:?}");
    }
}

#[test]
fn video_ids_are_positive() {
    assert_eq!(fields(&imp(|i| i.video_id = 0)), ["video_id"]);
    assert_eq!(fields(&ply(|p| p.video_id = -5)), ["video_id"]);
    assert_eq!(imp(|i| i.video_id = 1), vec![]);
    assert_eq!(
        fields(&imp(|i| i.explore.as_mut().unwrap().candidates = vec![1, 0, 3, -1])),
        ["explore.candidates[1]", "explore.candidates[3]"]
    );
}

#[test]
fn propensity_is_in_0_exclusive_to_1_inclusive() {
    let with = |p: f64| imp(|i| i.explore.as_mut().unwrap().propensity = p);
    assert_eq!(with(1.0), vec![]);
    assert_eq!(with(f64::MIN_POSITIVE), vec![]);
    for bad in [0.0, -0.1, 1.000_001, f64::NAN, f64::INFINITY] {
        assert_eq!(fields(&with(bad)), ["explore.propensity"], "{bad}");
    }
}

#[test]
fn explore_needs_policy_and_model_version() {
    let violations = imp(|i| {
        let explore = i.explore.as_mut().unwrap();
        explore.policy.clear();
        explore.model_version.clear();
    });
    assert_eq!(fields(&violations), ["explore.policy", "explore.model_version"]);
}

#[test]
fn event_time_within_age_and_skew() {
    let bounds = bounds();
    assert_eq!(imp(|i| i.event_time_ms = bounds.earliest_ms), vec![]);
    assert_eq!(imp(|i| i.event_time_ms = bounds.latest_ms), vec![]);
    let old = imp(|i| i.event_time_ms = bounds.earliest_ms - 1);
    assert_eq!(fields(&old), ["event_time"]);
    assert!(old[0].reason.contains("older"), "{}", old[0].reason);
    let future = ply(|p| p.event_time_ms = bounds.latest_ms + 1);
    assert_eq!(fields(&future), ["event_time"]);
    assert!(future[0].reason.contains("ahead"), "{}", future[0].reason);
    assert_eq!(fields(&ply(|p| p.event_time_ms = i64::MIN)), ["event_time"]);
}

#[test]
fn every_violation_of_every_event_is_reported_with_its_index() {
    let mut bad_impression = impression();
    bad_impression.country = "us".into();
    bad_impression.video_id = 0;
    let mut bad_play = play();
    bad_play.device = "TV".into();
    let events = [
        Event { kind: Some(event::Kind::Play(play())) },
        Event { kind: Some(event::Kind::Impression(bad_impression)) },
        Event { kind: None },
        Event { kind: Some(event::Kind::Play(bad_play)) },
    ];
    let violations = check_batch(&events, &bounds());
    let got: Vec<(usize, &str)> = violations.iter().map(|v| (v.index, v.field.as_str())).collect();
    assert_eq!(got, [(1, "video_id"), (1, "country"), (2, "type"), (3, "device")]);
}

#[test]
fn time_bounds_saturate() {
    let b = TimeBounds::around(0, Duration::MAX, Duration::MAX);
    assert_eq!(b.earliest_ms, -i64::MAX);
    assert_eq!(b.latest_ms, i64::MAX);
}

#[test]
fn country_list_is_sorted_and_complete() {
    assert!(COUNTRIES.windows(2).all(|w| w[0] < w[1]), "COUNTRIES must be sorted and unique");
    assert!(COUNTRIES.iter().all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())));
}

#[test]
fn control_characters_in_ids_are_rejected_by_name() {
    let mut bad = impression();
    bad.event_id = "a\u{0}b".into();
    bad.request_id = "r\u{1b}[31m".into();
    let violations = check_batch(&[Event { kind: Some(event::Kind::Impression(bad)) }], &bounds());
    let got: Vec<(&str, &str)> = violations.iter().map(|v| (v.field.as_str(), v.reason.as_str())).collect();
    assert_eq!(
        got,
        [
            ("event_id", "must not contain control characters, found U+0000 at character 1"),
            ("request_id", "must not contain control characters, found U+001B at character 1"),
        ]
    );
    assert_eq!(printable("ünïcødé ok"), Ok(()));
}

#[test]
fn the_error_counts_events_and_problems_apart() {
    let mut bad = impression();
    bad.country = "us".into();
    bad.video_id = 0;
    let violations = check_batch(&[Event { kind: Some(event::Kind::Impression(bad)) }], &bounds());
    let message = crate::error::ApiError::InvalidEvents(violations).to_string();
    assert_eq!(message, "1 invalid event(s) in the batch, 2 problem(s) in all");
}

#[test]
fn explore_context_fields_are_checked() {
    let with = |change: fn(&mut ExploreContext)| {
        imp(|i| change(i.explore.as_mut().unwrap().context.as_mut().unwrap()))
    };
    assert_eq!(with(|c| c.hour_of_day = 23), vec![]);
    assert_eq!(imp(|i| i.explore.as_mut().unwrap().context = None), vec![]);
    assert_eq!(fields(&with(|c| c.hour_of_day = 24)), ["explore.context.hour_of_day"]);
    assert_eq!(fields(&with(|c| c.country = "usa".into())), ["explore.context.country"]);
    assert_eq!(fields(&with(|c| c.device = "TV".into())), ["explore.context.device"]);
    assert_eq!(
        fields(&with(|c| *c = ExploreContext::default())),
        ["explore.context.country", "explore.context.device"]
    );
}

#[test]
fn candidate_artworks_are_bounded_and_well_formed() {
    let with = |change: &dyn Fn(&mut Vec<CandidateArtworks>)| {
        imp(|i| change(&mut i.explore.as_mut().unwrap().candidate_artworks))
    };
    assert_eq!(with(&|c| c.clear()), vec![]);
    let ok =
        |n: usize| CandidateArtworks { video_id: 1, artwork_ids: (0..n).map(|a| format!("a{a}")).collect() };
    assert_eq!(with(&|c| *c = vec![ok(64); 256]), vec![]);
    assert_eq!(fields(&with(&|c| *c = vec![ok(1); 257])), ["explore.candidate_artworks"]);
    assert_eq!(fields(&with(&|c| *c = vec![ok(65)])), ["explore.candidate_artworks[0].artwork_ids"]);
    let bad = |c: &mut Vec<CandidateArtworks>| {
        c[0].video_id = 0;
        c[1].artwork_ids = vec!["ok".into(), "no spaces".into(), String::new(), "x".repeat(65)];
    };
    assert_eq!(
        fields(&with(&bad)),
        [
            "explore.candidate_artworks[0].video_id",
            "explore.candidate_artworks[1].artwork_ids[1]",
            "explore.candidate_artworks[1].artwork_ids[2]",
            "explore.candidate_artworks[1].artwork_ids[3]",
        ]
    );
    let many = vec![1; 257];
    assert_eq!(
        fields(&imp(|i| i.explore.as_mut().unwrap().candidates = many.clone())),
        ["explore.candidates"]
    );
}
