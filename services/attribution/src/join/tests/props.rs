//! Property tests: for random inputs, any order of each topic within the lateness
//! bound, *any interleaving of the two topics*, any duplication and any crash-and-replay
//! (which re-interleaves) give exactly the reference's facts, and nothing is too late.
//!
//! The two topics are independent logs: a producer controls the order within each, never
//! how a consumer interleaves them. So the workload fixes an arrival order per topic and
//! the interleaving is generated separately, including the extremes (one topic read
//! entirely before the other, as when catching up on a backlog).
//!
//! A small configuration (10 s steps against windows of minutes) makes keys collide,
//! state expire mid-stream and inputs land exactly on every inclusive boundary.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::super::{Event, Input, JoinConfig, JoinState, Origin, Outputs, Source, SourceOffsets, Watermarks};
use super::reference::{reference, rewarded};
use super::{Facts, MIN, impression, play_event};

pub(super) const STEP: i64 = 10_000;

pub(super) fn small_config() -> JoinConfig {
    JoinConfig {
        epoch_len_ms: 10 * MIN,
        // A wide skew relative to the window makes the replay corner cases common.
        skew_ms: 2 * MIN,
        attribution_window_ms: 4 * MIN,
        allowed_lateness_ms: 8 * MIN,
        reward_window_ms: 2 * MIN,
        reward_grace_ms: 30_000,
        expiry_granularity_ms: 20_000,
    }
}

/// Lateness in steps: arrival jitter up to this keeps every input in bounds.
pub(super) const LATENESS_STEPS: i64 = 8 * MIN / STEP;

/// A generated event: few request ids and titles so that keys collide.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec {
    pub(super) play: bool,
    rid: u8,
    video: u8,
    pub(super) step: i64,
    dims: u8,
}

impl Spec {
    pub(super) fn event(self) -> Event {
        // Mostly canonical UUIDs (stored as bits), some free text (interned).
        let rid = if self.rid < 4 {
            format!("00000000-0000-4000-8000-{:012x}", self.rid)
        } else {
            format!("req-{}", self.rid)
        };
        let video = i64::from(self.video);
        let t = self.step * STEP;
        let country = ["US", "BR"][usize::from(self.dims & 1)];
        let device = ["tv", "web"][usize::from((self.dims >> 1) & 1)];
        if self.play {
            let mut p = play_event(&rid, video, t);
            p.country = country.to_owned();
            p.device = device.to_owned();
            Event::Play(p)
        } else {
            let mut i = impression(&rid, video, t);
            i.country = country.to_owned();
            i.device = device.to_owned();
            // Billboard impressions are the explored ones, so a repeat carries the same explore.
            if self.dims & 4 != 0 {
                i.canvas = "billboard".to_owned();
                i.explore = Some(super::explore());
            }
            Event::Impression(i)
        }
    }
}

pub(super) fn spec(max_step: i64) -> impl Strategy<Value = Spec> {
    (any::<bool>(), 0u8..6, 0u8..2, 0..=max_step, 0u8..8).prop_map(|(play, rid, video, step, dims)| Spec {
        play,
        rid,
        video,
        step,
        dims,
    })
}

/// Events with an arrival jitter each, in steps.
fn workload(max_step: i64, max_jitter: i64) -> impl Strategy<Value = Vec<(Spec, i64)>> {
    // Jitter at its bounds often, so inputs land exactly on the lateness edge.
    let jitter = prop_oneof![Just(0), Just(max_jitter), 0..=max_jitter];
    prop::collection::vec((spec(max_step), jitter), 1..80)
}

/// How a consumer interleaves the two topics' arrival orders.
#[derive(Debug, Clone)]
enum Interleaving {
    /// By arrival time across both topics (one global order, as a live stream reads).
    ByArrival,
    /// Every impression, then every play: the impressions backlog is drained first.
    ImpressionsFirst,
    /// Every play, then every impression.
    PlaysFirst,
    /// Coin flips (cycled): true takes the next impression.
    Coins(Vec<bool>),
}

fn interleaving() -> impl Strategy<Value = Interleaving> {
    prop_oneof![
        Just(Interleaving::ByArrival),
        Just(Interleaving::ImpressionsFirst),
        Just(Interleaving::PlaysFirst),
        prop::collection::vec(any::<bool>(), 1..64).prop_map(Interleaving::Coins),
        // Long runs of one topic: a coin that rarely switches.
        prop::collection::vec(prop::bool::weighted(0.9), 1..64).prop_map(Interleaving::Coins),
    ]
}

/// Arrival order: each topic by event time plus jitter (stable), the two merged as
/// `interleaving` says. With jitter <= lateness no input can be too late: everything
/// before it *in its own topic* has time <= its time + lateness.
fn arrival(events: &[(Spec, i64)], interleaving: &Interleaving) -> Vec<Event> {
    let mut order: Vec<_> = events.iter().enumerate().collect();
    order.sort_by_key(|(i, (s, jitter))| (s.step + jitter, *i));
    if let Interleaving::ByArrival = interleaving {
        return order.into_iter().map(|(_, (s, _))| s.event()).collect();
    }
    let (plays, impressions): (Vec<_>, Vec<_>) =
        order.into_iter().map(|(_, (s, _))| *s).partition(|s| s.play);
    let (mut imps, mut plays) = (impressions.into_iter().peekable(), plays.into_iter().peekable());
    let mut coins = match interleaving {
        Interleaving::Coins(coins) => coins.clone(),
        Interleaving::ImpressionsFirst => vec![true],
        Interleaving::PlaysFirst | Interleaving::ByArrival => vec![false],
    }
    .into_iter()
    .cycle();
    let mut merged = Vec::with_capacity(events.len());
    while imps.peek().is_some() || plays.peek().is_some() {
        let take_impression =
            plays.peek().is_none() || (imps.peek().is_some() && coins.next().unwrap_or(true));
        merged.extend(if take_impression { imps.next() } else { plays.next() }.map(Spec::event));
    }
    merged
}

/// Tags events with per-source offsets in arrival order.
fn with_offsets(events: &[Event]) -> Vec<Input> {
    let mut next = [0i64; 2];
    events
        .iter()
        .map(|event| {
            let slot = usize::from(matches!(event, Event::Play(_)));
            next[slot] += 1;
            Input::local(next[slot] - 1, event.clone())
        })
        .collect()
}

/// Feeds `inputs` in batches of the given sizes (cycled).
pub(super) fn feed(state: &mut JoinState, inputs: &[Input], cuts: &[usize], out: &mut Outputs) {
    let mut rest = inputs;
    let mut sizes = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        state.apply_into(&rest[..n], out);
        rest = &rest[n..];
    }
}

/// Runs `inputs` through a fresh state and finishes; returns what it emitted and its facts.
fn run_all(inputs: &[Input], cuts: &[usize]) -> (Outputs, Facts) {
    let mut state = JoinState::new(small_config()).expect("valid config");
    let mut out = Outputs::default();
    feed(&mut state, inputs, cuts, &mut out);
    state.finish_into(&mut out);
    let facts = facts(&out);
    (out, facts)
}

pub(super) fn facts(out: &Outputs) -> Facts {
    let mut f = Facts::default();
    f.absorb(out);
    f
}

fn events_of(inputs: &[Input]) -> Vec<Event> {
    inputs.iter().map(|i| i.event.clone()).collect()
}

pub(super) fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..8, 1..5)
}

/// The too-late inputs of a run, by source and offset.
fn late_set(out: &Outputs) -> BTreeSet<(Source, i64)> {
    out.late.iter().map(|l| (l.input.event.source(), l.input.offset)).collect()
}

/// Each explored key's outcome as (owner impression time, played).
pub(super) fn outcome_view(out: &Outputs) -> BTreeMap<(String, i64), (i64, bool)> {
    out.outcomes
        .iter()
        .map(|o| ((o.request_id.to_string(), o.cell.video_id), (o.impression_time_ms, o.played)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any arrival order in which nothing is too late within its own topic, interleaved
    /// in any way, gives the reference over all input and reports nothing late.
    #[test]
    fn any_in_bounds_order_and_interleaving_matches_reference(
        events in workload(360, LATENESS_STEPS),
        interleaving in interleaving(),
        cuts in cuts(),
    ) {
        let inputs = with_offsets(&arrival(&events, &interleaving));
        let (out, facts) = run_all(&inputs, &cuts);
        prop_assert!(out.late.is_empty(), "in bounds: {:?}", out.late);
        prop_assert_eq!(facts, reference(&small_config(), &events_of(&inputs)));
    }

    /// Any order at all gives the reference over the inputs it did not report late, and
    /// which inputs are late depends only on each topic's own order: two interleavings
    /// of the same topic orders agree on the late inputs and on every fact.
    #[test]
    fn any_order_matches_reference_over_accepted_whatever_the_interleaving(
        events in workload(360, 4 * LATENESS_STEPS),
        interleaving in interleaving(),
        cuts in cuts(),
    ) {
        let inputs = with_offsets(&arrival(&events, &interleaving));
        let (out, facts) = run_all(&inputs, &cuts);
        let late = late_set(&out);
        let accepted: Vec<Event> = inputs
            .iter()
            .filter(|i| !late.contains(&(i.event.source(), i.offset)))
            .map(|i| i.event.clone())
            .collect();
        prop_assert_eq!(&facts, &reference(&small_config(), &accepted));
        let other = with_offsets(&arrival(&events, &Interleaving::PlaysFirst));
        let (other_out, other_facts) = run_all(&other, &cuts);
        prop_assert_eq!(late, late_set(&other_out));
        prop_assert_eq!(facts, other_facts);
    }

    /// Repeating inputs, each repeat arriving at its own time, changes no fact and never
    /// emits a fact twice while its key is live.
    #[test]
    fn duplication_changes_nothing(
        events in workload(360, LATENESS_STEPS),
        repeats in prop::collection::vec((any::<prop::sample::Index>(), 0..=LATENESS_STEPS), 0..40),
        interleaving in interleaving(),
        cuts in cuts(),
    ) {
        let mut doubled = events.clone();
        for (pick, jitter) in &repeats {
            doubled.push((events[pick.index(events.len())].0, *jitter));
        }
        let inputs = with_offsets(&arrival(&doubled, &interleaving));
        let (out, facts) = run_all(&inputs, &cuts);
        prop_assert!(out.late.is_empty());
        let originals: Vec<Event> = events.iter().map(|(s, _)| s.event()).collect();
        prop_assert_eq!(facts, reference(&small_config(), &originals));
    }

    /// While a key is retained the join emits none of its cell facts twice. (Input is
    /// kept shorter than impression retention, so no key expires before `finish`.)
    #[test]
    fn no_cell_fact_repeats_while_its_key_is_live(
        events in workload(60, LATENESS_STEPS),
        repeats in prop::collection::vec((any::<prop::sample::Index>(), 0..=LATENESS_STEPS), 0..40),
        interleaving in interleaving(),
        cuts in cuts(),
    ) {
        let mut doubled = events.clone();
        for (pick, jitter) in &repeats {
            doubled.push((events[pick.index(events.len())].0, *jitter));
        }
        let (out, f) = run_all(&with_offsets(&arrival(&doubled, &interleaving)), &cuts);
        prop_assert_eq!(out.impressions.len(), f.impressions.len());
        prop_assert_eq!(out.plays.len(), f.plays.len());
    }

    /// Crash at random points, restart from the saved needed offsets (or earlier) with
    /// the saved watermarks and a different interleaving of the two sources: the union
    /// of facts is the reference, and nothing is late before or after a restart.
    #[test]
    fn crash_and_replay_matches_reference(
        events in workload(360, LATENESS_STEPS),
        interleaving in interleaving(),
        crashes in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
        rewind in 0i64..6,
        replay_interleave in prop::collection::vec(any::<bool>(), 0..160),
        cuts in cuts(),
    ) {
        let inputs = with_offsets(&arrival(&events, &interleaving));
        let mut crash_points: Vec<usize> = crashes.iter().map(|c| c.index(inputs.len() + 1)).collect();
        crash_points.sort_unstable();
        crash_points.push(inputs.len());

        let mut union = Facts::default();
        let mut state = JoinState::new(small_config()).expect("valid config");
        let mut position = 0;
        for (n, &crash) in crash_points.iter().enumerate() {
            let mut out = Outputs::default();
            feed(&mut state, &inputs[position..crash], &cuts, &mut out);
            if n + 1 == crash_points.len() {
                state.finish_into(&mut out);
            }
            prop_assert!(out.late.is_empty(), "late after restart: {:?}", out.late);
            union.union(&facts(&out));
            if n + 1 == crash_points.len() {
                break;
            }
            // "Commit" at `crash`, then lose the state.
            let committed = next_offsets(&inputs[..crash]);
            let needed = state.oldest_needed_offsets(Origin::LOCAL);
            let watermarks: Watermarks = state.watermarks(Origin::LOCAL);
            let start = |source| {
                let from = needed.get(source).or(committed.get(source)).unwrap_or(0);
                (from - rewind).max(0)
            };
            let replay = replay_range(
                &inputs[..crash],
                start(Source::Impressions),
                start(Source::Plays),
                &replay_interleave,
            );
            state = JoinState::resume(small_config(), committed, watermarks).expect("valid config");
            let mut out = Outputs::default();
            feed(&mut state, &replay, &cuts, &mut out);
            prop_assert!(out.is_empty(), "a replay emits nothing: {:?}", out);
            position = crash;
        }
        prop_assert_eq!(union, reference(&small_config(), &events_of(&inputs)));
    }

    /// In any in-bounds order and any interleaving each explored key gets one outcome,
    /// decided by the topics' own orders only: played iff a rewarding play arrives
    /// before the plays watermark passes `t + reward_window + reward_grace`.
    #[test]
    fn outcomes_follow_the_topic_orders_whatever_the_interleaving(
        events in workload(60, LATENESS_STEPS),
        interleaving in interleaving(),
        cuts in cuts(),
    ) {
        let inputs = with_offsets(&arrival(&events, &interleaving));
        let (out, _) = run_all(&inputs, &cuts);
        let expected = outcomes_by_topic_order(&small_config(), &events_of(&inputs));
        let got = outcome_view(&out);
        prop_assert_eq!(got.len(), out.outcomes.len(), "one outcome per key");
        prop_assert_eq!(got, expected);
    }

    /// In event-time order every explored key gets exactly one outcome, from its first
    /// explored impression, played exactly when DESIGN §3 says.
    #[test]
    fn outcomes_in_time_order_match_reference(events in workload(60, 0), cuts in cuts()) {
        let inputs = with_offsets(&arrival(&events, &Interleaving::ByArrival));
        let (out, _) = run_all(&inputs, &cuts);
        let all = events_of(&inputs);
        let c = small_config();
        let mut owners = BTreeMap::new();
        for e in &all {
            if let Event::Impression(i) = e
                && i.explore.is_some()
            {
                owners.entry((i.request_id.clone(), i.video_id)).or_insert(i.event_time_ms);
            }
        }
        prop_assert_eq!(out.outcomes.len(), owners.len());
        for o in &out.outcomes {
            let key = (o.request_id.to_string(), o.cell.video_id);
            prop_assert_eq!(owners.get(&key), Some(&o.impression_time_ms));
            prop_assert_eq!(o.played, rewarded(&c, &all, &key.0, key.1, o.impression_time_ms));
        }
    }
}

/// Outcomes computed from each topic's own order (no key expires within the input):
/// the owner is a key's first explored impression in the impressions topic; it is played
/// iff some rewarding play arrived while the plays watermark (the running maximum of
/// the plays topic, that play included) was not past the owner's deadline.
fn outcomes_by_topic_order(c: &JoinConfig, arrival: &[Event]) -> BTreeMap<(String, i64), (i64, bool)> {
    let mut plays_wm = i64::MIN;
    let mut rewarding_plays = Vec::new();
    for e in arrival {
        if let Event::Play(p) = e {
            plays_wm = plays_wm.max(p.event_time_ms);
            rewarding_plays.push((p, plays_wm));
        }
    }
    let mut result = BTreeMap::new();
    for e in arrival {
        let Event::Impression(i) = e else { continue };
        let key = (i.request_id.clone(), i.video_id);
        if i.explore.is_none() || result.contains_key(&key) {
            continue;
        }
        let deadline = i.event_time_ms + c.reward_window_ms + c.reward_grace_ms;
        let played = rewarding_plays.iter().any(|(p, wm_at_arrival)| {
            p.request_id == key.0
                && p.video_id == key.1
                && c.rewards(i.event_time_ms, p.event_time_ms)
                && *wm_at_arrival <= deadline
        });
        result.insert(key, (i.event_time_ms, played));
    }
    result
}

/// Per source, the offset after the last input in `inputs` (what a commit would save).
fn next_offsets(inputs: &[Input]) -> SourceOffsets {
    let next = |source| inputs.iter().filter(|i| i.event.source() == source).map(|i| i.offset + 1).max();
    SourceOffsets { impressions: next(Source::Impressions), plays: next(Source::Plays) }
}

/// The inputs a restarted worker reads again: each source from its start offset, merged
/// in an arbitrary interleaving that keeps each source's own order.
fn replay_range(inputs: &[Input], from_impressions: i64, from_plays: i64, interleave: &[bool]) -> Vec<Input> {
    let pick = |source, from| -> Vec<Input> {
        inputs.iter().filter(|i| i.event.source() == source && i.offset >= from).cloned().collect()
    };
    let (imps, plays) = (pick(Source::Impressions, from_impressions), pick(Source::Plays, from_plays));
    let (mut a, mut b) = (imps.into_iter().peekable(), plays.into_iter().peekable());
    let mut merged = Vec::new();
    let mut coin = interleave.iter().cycle();
    while a.peek().is_some() || b.peek().is_some() {
        let take_a = b.peek().is_none() || (a.peek().is_some() && *coin.next().unwrap_or(&true));
        merged.extend(if take_a { a.next() } else { b.next() });
    }
    merged
}
