//! One test per rule and boundary of DESIGN §3, with the default configuration.

use super::super::{
    Event, Impression, Input, JoinConfig, JoinState, LateReason, Origin, RequestId, Source, SourceOffsets,
    Watermarks,
};
use super::{MIN, Run, config, explored_imp, imp, impression, play, play_event};

const H: i64 = 60 * MIN;
const T0: i64 = 1_000 * H; // an epoch boundary: 30 min divides it
const RID: &str = "0f8e2a4c-1b3d-4e5f-8a9b-0c1d2e3f4a5b";

fn run() -> Run {
    Run::new(config())
}

/// Counts of (impressions, attributed plays, unattributed plays) facts so far.
fn counts(r: &Run) -> (usize, usize, usize) {
    (r.facts.impressions.len(), r.facts.plays.len(), r.facts.unattributed.len())
}

#[test]
fn impression_then_play_is_attributed() {
    let mut r = run();
    let out = r.feed([imp(RID, 7, T0)]);
    assert_eq!(out.impressions.len(), 1);
    assert_eq!(out.impressions[0].request_id.to_string(), RID);
    assert_eq!(out.impressions[0].cell.epoch, T0 / (30 * MIN));
    let out = r.feed([play(RID, 7, T0 + 3 * MIN)]);
    assert_eq!(out.plays.len(), 1, "play joins at once");
    assert_eq!(out.plays[0].cell, r.all.impressions[0].cell);
    r.finish();
    assert_eq!(counts(&r), (1, 1, 0));
}

#[test]
fn play_then_impression_is_attributed() {
    let mut r = run();
    let out = r.feed([play(RID, 7, T0)]);
    assert!(out.is_empty(), "a lone play waits: {out:?}");
    let out = r.feed([imp(RID, 7, T0 - 2 * MIN)]);
    assert_eq!((out.impressions.len(), out.plays.len()), (1, 1));
    r.finish();
    assert_eq!(counts(&r), (1, 1, 0));
}

#[test]
fn join_key_includes_video() {
    let mut r = run();
    r.feed([imp(RID, 7, T0), play(RID, 8, T0 + MIN)]);
    r.finish();
    assert_eq!(counts(&r), (1, 0, 1));
}

#[test]
fn skew_edge_is_inclusive() {
    let c = config();
    let mut r = run();
    r.feed([imp(RID, 1, T0), play(RID, 1, T0 - c.skew_ms)]);
    r.feed([imp(RID, 2, T0), play(RID, 2, T0 - c.skew_ms - 1)]);
    r.finish();
    assert_eq!(r.facts.plays.len(), 1);
    assert_eq!(r.facts.plays.first().map(|f| f.0.0), Some(1));
    assert_eq!(r.facts.unattributed.first().map(|f| f.0.0), Some(2));
}

#[test]
fn window_edge_is_inclusive() {
    let c = config();
    let mut r = run();
    r.feed([imp(RID, 1, T0), play(RID, 1, T0 + c.attribution_window_ms)]);
    r.feed([imp(RID, 2, T0), play(RID, 2, T0 + c.attribution_window_ms + 1)]);
    r.finish();
    assert_eq!(r.facts.plays.len(), 1);
    assert_eq!(r.facts.plays.first().map(|f| f.0.0), Some(1));
    assert_eq!(r.facts.unattributed.first().map(|f| f.0.0), Some(2));
}

#[test]
fn too_late_is_strict_and_not_counted() {
    let c = config();
    let mut r = run();
    // Each topic is judged against its own watermark.
    r.feed([imp("other", 1, T0), play("other", 1, T0)]);
    let edge = T0 - c.allowed_lateness_ms;
    let out = r.feed([imp(RID, 2, edge)]);
    assert_eq!(out.impressions.len(), 1, "t == watermark - lateness is counted");
    let out = r.feed([imp(RID, 3, edge - 1), play(RID, 2, edge - 1)]);
    assert!(out.impressions.is_empty() && out.plays.is_empty());
    assert_eq!(out.late.len(), 2);
    assert_eq!(out.late[0].reason, LateReason::BeyondAllowedLateness);
    assert_eq!(out.late[0].watermark_ms, T0);
    assert_eq!(out.late[0].input.event, imp(RID, 3, edge - 1));
    r.finish();
    assert_eq!(counts(&r), (2, 1, 0), "late play neither attributed nor unattributed");
    assert_eq!(r.state.stats().late, 2);
}

#[test]
fn lateness_is_judged_per_topic() {
    let c = config();
    let mut r = run();
    // The impressions topic is read far ahead of the plays topic (a backlog): a play
    // hours behind the impressions is still on time against the plays it follows.
    r.feed([imp(RID, 7, T0 + 3 * c.allowed_lateness_ms), play("other", 1, T0)]);
    let out = r.feed([play(RID, 7, T0 + MIN)]);
    assert!(out.late.is_empty(), "on time within its own topic: {:?}", out.late);
    // ...and, being past every impression that could still claim it, it is settled
    // unattributed at once rather than retained.
    assert_eq!(out.unattributed.len(), 1);
    // Likewise an impression far behind the plays is on time against the impressions.
    let mut r = run();
    r.feed([play(RID, 7, T0 + 3 * c.allowed_lateness_ms), imp("other", 1, T0)]);
    let out = r.feed([imp(RID, 8, T0 + MIN)]);
    assert!(out.late.is_empty() && out.impressions.len() == 1, "{out:?}");
}

#[test]
fn impressions_wait_for_both_watermarks() {
    let c = config();
    let mut r = run();
    r.feed([imp(RID, 7, T0)]);
    let past = T0 + c.attribution_window_ms + c.skew_ms + c.allowed_lateness_ms + c.expiry_granularity_ms + 1;
    r.feed([imp("other", 1, past)]);
    assert_eq!(r.state.state_entries(), 2, "no play seen yet: a play could still claim it");
    r.feed([play("other", 2, past)]);
    assert_eq!(r.state.state_entries(), 2, "the impression and the lone play are retained");
    r.feed([imp("other", 3, past + c.skew_ms + c.allowed_lateness_ms + c.expiry_granularity_ms + 1)]);
    assert_eq!(r.state.state_entries(), 2, "the first impression expired once both passed");
}

#[test]
fn lone_play_expires_unattributed_after_its_deadline() {
    let c = config();
    let mut r = run();
    let p = T0 + 10 * MIN;
    r.feed([play(RID, 7, p)]);
    let deadline = p + c.skew_ms + c.allowed_lateness_ms;
    let out = r.feed([imp("other", 1, deadline)]);
    assert!(out.unattributed.is_empty(), "not at wm == deadline");
    let out = r.feed([imp("other", 1, deadline + c.expiry_granularity_ms + 1)]);
    assert_eq!(out.unattributed.len(), 1);
    let u = &out.unattributed[0];
    assert_eq!((u.key.video_id, u.key.epoch), (7, p / (30 * MIN)));
    let dims = u.key.dims;
    assert_eq!((&*dims.country, &*dims.device), ("US", "tv"));
    assert_eq!(r.state.state_entries(), 2, "only the two impressions are left");
}

#[test]
fn play_waits_for_an_impression_arriving_at_the_lateness_edge() {
    // The play's deadline and the impression's lateness bound meet exactly here.
    let c = config();
    let mut r = run();
    let p = T0;
    r.feed([play(RID, 7, p)]);
    let wm = p + c.skew_ms + c.allowed_lateness_ms;
    r.feed([imp("other", 1, wm)]);
    let out = r.feed([imp(RID, 7, p + c.skew_ms)]);
    assert_eq!((out.impressions.len(), out.plays.len(), out.late.len()), (1, 1, 0));
    r.finish();
    assert_eq!(counts(&r), (2, 1, 0), "not also unattributed");
}

#[test]
fn impression_waits_for_a_play_arriving_at_the_lateness_edge() {
    let c = config();
    let mut r = run();
    r.feed([imp(RID, 7, T0)]);
    let wm = T0 + c.attribution_window_ms + c.allowed_lateness_ms;
    r.feed([imp("other", 1, wm)]);
    let out = r.feed([play(RID, 7, T0 + c.attribution_window_ms)]);
    assert_eq!((out.plays.len(), out.late.len()), (1, 0));
}

#[test]
fn attributed_play_counts_in_the_impression_epoch() {
    let mut r = run();
    let i = T0 + 29 * MIN; // last minute of an epoch
    r.feed([imp(RID, 7, i), play(RID, 7, i + 5 * MIN)]);
    assert_eq!(r.all.plays[0].cell.epoch, i / (30 * MIN));
    // An unattributed play counts in its own epoch.
    r.feed([play("lonely", 7, i + 5 * MIN)]);
    r.finish();
    assert_eq!(r.all.unattributed[0].key.epoch, i / (30 * MIN) + 1);
}

#[test]
fn epochs_floor_negative_times() {
    let mut r = run();
    r.feed([imp(RID, 7, -1)]);
    assert_eq!(r.all.impressions[0].cell.epoch, -1);
}

#[test]
fn region_is_not_part_of_any_key() {
    let mut r = run();
    let mut i = impression(RID, 7, T0);
    i.region = "ap-south-1".to_owned();
    let mut p = play_event(RID, 7, T0 + MIN);
    p.region = "us-west-2".to_owned();
    r.feed([Event::Impression(i), Event::Play(p)]);
    assert_eq!(r.all.plays.len(), 1);
}

#[test]
fn duplicates_collapse() {
    let mut r = run();
    let out = r.feed([imp(RID, 7, T0), imp(RID, 7, T0), play(RID, 7, T0 + MIN)]);
    assert_eq!((out.impressions.len(), out.plays.len()), (1, 1));
    let out = r.feed([play(RID, 7, T0 + MIN), imp(RID, 7, T0), play(RID, 7, T0 + 2 * MIN)]);
    assert!(out.is_empty(), "nothing new: {out:?}");
    r.feed([play("lonely", 7, T0), play("lonely", 7, T0)]);
    r.finish();
    assert_eq!(r.all.unattributed.len(), 1);
    assert_eq!(r.state.stats().duplicates, 4);
    assert_eq!(r.state.state_entries(), 0);
}

#[test]
fn same_key_on_two_canvases_counts_in_both_cells() {
    let mut r = run();
    let row = impression(RID, 7, T0);
    let billboard = Impression { canvas: "billboard".to_owned(), ..row.clone() };
    r.feed([Event::Impression(row), Event::Impression(billboard)]);
    let out = r.feed([play(RID, 7, T0 + MIN)]);
    assert_eq!(out.plays.len(), 2);
    r.finish();
    assert_eq!(counts(&r), (2, 2, 0));
}

#[test]
fn same_cell_at_two_times_emits_each_fact_once() {
    let mut r = run();
    let out = r.feed([imp(RID, 7, T0), imp(RID, 7, T0 + MIN)]);
    assert_eq!(out.impressions.len(), 1);
    let out = r.feed([play(RID, 7, T0 + 2 * MIN)]);
    assert_eq!(out.plays.len(), 1, "one fact for the cell although two impressions match");
    // A play only the later impression can explain still lands in the same cell.
    let mut r = run();
    r.feed([imp(RID, 7, T0), play(RID, 7, T0 + 61 * MIN), imp(RID, 7, T0 + 2 * MIN)]);
    r.finish();
    assert_eq!(counts(&r), (1, 1, 0));
}

#[test]
fn outcome_true_when_a_play_joins_in_the_reward_window() {
    let c = config();
    let mut r = run();
    r.feed([explored_imp(RID, 7, T0)]);
    let out = r.feed([play(RID, 7, T0 + c.reward_window_ms)]);
    assert_eq!(out.outcomes.len(), 1);
    let o = &out.outcomes[0];
    assert!(o.played);
    assert_eq!(o.play_time_ms, Some(T0 + c.reward_window_ms));
    let canvas = &*o.cell.dims.canvas;
    assert_eq!((o.impression_time_ms, canvas, o.explore.policy.as_str()), (T0, "row", "thompson"));
    assert_eq!(o.request_id.to_string(), RID);
    r.feed([play(RID, 7, T0 + MIN)]);
    r.finish();
    assert_eq!(r.outcomes().len(), 1, "one outcome per key");
}

#[test]
fn outcome_true_at_once_when_the_play_came_first() {
    let mut r = run();
    r.feed([play(RID, 7, T0 + MIN)]);
    let out = r.feed([explored_imp(RID, 7, T0)]);
    assert_eq!(out.outcomes.len(), 1);
    assert!(out.outcomes[0].played);
}

#[test]
fn outcome_false_once_the_watermark_passes_reward_window_and_grace() {
    let c = config();
    let mut r = run();
    r.feed([explored_imp(RID, 7, T0)]);
    let deadline = T0 + c.reward_window_ms + c.reward_grace_ms;
    // Decided by the plays watermark: the impressions topic moving on decides nothing.
    let out = r.feed([imp("other", 1, deadline + 1)]);
    assert!(out.outcomes.is_empty(), "the impressions watermark does not decide outcomes");
    let out = r.feed([play("other", 1, deadline)]);
    assert!(out.outcomes.is_empty(), "not at wm == deadline");
    let out = r.feed([play("other", 1, deadline + 1)]);
    assert_eq!(out.outcomes.len(), 1);
    assert!(!out.outcomes[0].played);
    assert_eq!(out.outcomes[0].play_time_ms, None);
    // A play that arrives afterwards is still attributed but does not change the outcome.
    let out = r.feed([play(RID, 7, T0 + MIN)]);
    assert_eq!((out.plays.len(), out.outcomes.len()), (1, 0));
    r.finish();
    assert_eq!(r.outcomes().len(), 1);
}

#[test]
fn play_after_reward_window_is_attributed_but_not_rewarded() {
    let c = config();
    let mut r = run();
    r.feed([explored_imp(RID, 7, T0), play(RID, 7, T0 + c.reward_window_ms + 1)]);
    assert!(r.outcomes().is_empty());
    r.finish();
    assert_eq!(counts(&r), (1, 1, 0));
    assert_eq!(r.outcomes().len(), 1);
    assert!(!r.outcomes()[0].played);
}

#[test]
fn outcome_does_not_depend_on_batching() {
    let c = config();
    let events = vec![
        explored_imp(RID, 7, T0),
        play("other", 1, T0 + c.reward_window_ms + c.reward_grace_ms + 1),
        play(RID, 7, T0 + MIN),
    ];
    let mut one = run();
    one.feed(events.clone());
    let mut many = run();
    for e in events {
        many.feed([e]);
    }
    assert_eq!(one.outcomes(), many.outcomes());
    assert!(!one.outcomes()[0].played, "the timer fired before the play arrived");
}

#[test]
fn outcome_does_not_depend_on_when_the_impression_is_read() {
    let c = config();
    let deadline = T0 + c.reward_window_ms + c.reward_grace_ms;
    // The plays topic: a rewarding play, then the watermark passes the deadline, then
    // another rewarding play that came too late to reward.
    let plays = [play(RID, 7, T0 + MIN), play("other", 1, deadline + 1), play(RID, 8, T0 + MIN)];
    let impressions = [explored_imp(RID, 7, T0), explored_imp(RID, 8, T0)];
    let mut early = run();
    early.feed(impressions.iter().chain(&plays).cloned());
    early.finish();
    let mut late = run();
    late.feed(plays.iter().chain(&impressions).cloned());
    late.finish();
    let view = |r: &Run| {
        let mut v: Vec<_> = r.outcomes().iter().map(|o| (o.cell.video_id, o.played)).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(view(&early), vec![(7, true), (8, false)]);
    assert_eq!(view(&late), view(&early));
}

#[test]
fn a_second_explored_impression_of_the_key_gets_no_outcome() {
    let mut r = run();
    r.feed([explored_imp(RID, 7, T0), explored_imp(RID, 7, T0 + MIN)]);
    r.finish();
    assert_eq!(r.outcomes().len(), 1);
    assert_eq!(r.outcomes()[0].impression_time_ms, T0);
}

#[test]
fn finish_settles_everything_and_later_input_is_late() {
    let mut r = run();
    r.feed([explored_imp(RID, 7, T0), play("lonely", 1, T0)]);
    let out = r.finish();
    assert_eq!((out.unattributed.len(), out.outcomes.len()), (1, 1));
    assert_eq!(r.state.state_entries(), 0);
    let out = r.feed([imp(RID, 7, T0)]);
    assert_eq!(out.late.len(), 1);
    assert_eq!(out.late[0].reason, LateReason::AfterFinish);
    assert!(r.finish().is_empty());
}

#[test]
fn oldest_needed_offsets_track_retained_inputs() {
    let c = config();
    let mut r = run();
    assert_eq!(r.state.oldest_needed_offsets(Origin::LOCAL), SourceOffsets::default());
    r.feed([imp(RID, 1, T0), play(RID, 1, T0), imp(RID, 2, T0 + H)]);
    assert_eq!(
        r.state.oldest_needed_offsets(Origin::LOCAL),
        SourceOffsets { impressions: Some(0), plays: Some(0) }
    );
    // Past the first impression's and the play's deadlines, not the second impression's.
    let wm = T0 + c.attribution_window_ms + c.skew_ms + c.allowed_lateness_ms + c.expiry_granularity_ms + 1;
    r.feed([imp(RID, 3, wm)]);
    let needed = r.state.oldest_needed_offsets(Origin::LOCAL);
    assert_eq!((needed.impressions, needed.plays), (Some(0), None), "no play past the impression yet");
    r.feed([play("other", 3, wm)]);
    let needed = r.state.oldest_needed_offsets(Origin::LOCAL);
    assert_eq!((needed.impressions, needed.plays), (Some(1), Some(1)));
    assert_eq!(needed.get(Source::Impressions), Some(1));
}

#[test]
fn replayed_inputs_rebuild_state_silently() {
    let c = config();
    let committed = SourceOffsets { impressions: Some(2), plays: Some(1) };
    let mut state = JoinState::resume(c, committed, Watermarks::default()).expect("valid");
    let far = T0 + c.allowed_lateness_ms * 2;
    let at = |offset, event| Input::local(offset, event);
    let replay = [
        at(0, imp(RID, 7, far)),
        // Too late by this watermark, but it was judged on first arrival: replay keeps it.
        at(1, imp(RID, 8, T0)),
        at(0, play(RID, 8, T0 + MIN)),
    ];
    let out = state.apply(&replay);
    assert!(out.is_empty(), "replay emits nothing: {out:?}");
    let out = state.apply(&[at(2, imp(RID, 9, far)), at(1, play(RID, 7, far + MIN))]);
    assert_eq!((out.impressions.len(), out.plays.len()), (1, 1));
    assert_eq!(out.plays[0].cell.video_id, 7, "joined a replayed impression");
    let out = state.finish();
    assert!(out.unattributed.is_empty(), "the replayed play was attributed: {out:?}");
    assert_eq!(state.stats().replayed, 3);
}

#[test]
fn text_request_ids_round_trip_and_are_freed() {
    let mut r = run();
    r.feed([imp("Req-ABC", 7, T0), play("Req-ABC", 7, T0 + MIN), play("solo", 1, T0)]);
    let baseline = r.state.approx_state_bytes();
    r.finish();
    assert_eq!(r.all.impressions[0].request_id, RequestId::Text("Req-ABC".into()));
    assert_eq!(r.all.unattributed[0].request_id.to_string(), "solo");
    assert_eq!(r.state.state_entries(), 0);
    assert!(r.state.approx_state_bytes() <= baseline);
}

#[test]
fn state_size_is_reported() {
    let mut r = run();
    r.feed((0..100).map(|i| imp(&format!("{i:08x}-1b3d-4e5f-8a9b-0c1d2e3f4a5b"), 7, T0 + i)));
    assert_eq!(r.state.state_entries(), 100);
    assert!(r.state.approx_state_bytes() > 100 * 48);
}

#[test]
fn invalid_config_is_refused() {
    let c = JoinConfig { expiry_granularity_ms: 0, ..JoinConfig::default() };
    assert!(JoinState::new(c).is_err());
}
