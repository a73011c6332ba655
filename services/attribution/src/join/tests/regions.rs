//! Property tests over regions: the input is split over two regions, each event logged
//! in a random one (so pairs cross regions), and each region's join reads its own topics
//! plus the other region's, mirrored into its cluster with any delay, outages included.
//! Whatever the delay and however the four sources are interleaved, both regions' joins
//! give the single-region reference over all input, and nothing is too late.
//!
//! As in `props`, each source's order is fixed by the workload (a region's log, which
//! the mirror copies in order) and the interleaving of the sources is generated
//! separately: by arrival through a mirror whose delay varies per record (a record
//! never overtakes the one before it), one source after another, or arbitrary picks.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::super::{
    Event, Impression, Input, JoinState, Origin, Outputs, Play, ResumePoint, Source, SourceOffsets,
};
use super::Facts;
use super::props::{LATENESS_STEPS, Spec, cuts, facts, feed, outcome_view, small_config, spec};
use super::reference::reference;

/// Two regions; each one's join has its own topics as origin 0, the other's as origin 1.
const REGIONS: u8 = 2;

/// An event as logged: in which region, with an arrival jitter within that region's
/// log and a delay the mirror adds when copying it to the other region (all in steps).
#[derive(Debug, Clone, Copy)]
struct Logged {
    spec: Spec,
    region: u8,
    jitter: i64,
    mirror_delay: i64,
}

impl Logged {
    /// The event as its region logged it (its `region` field names that region, so the
    /// counts are per region too).
    fn event(&self) -> Event {
        let region = ["us-east", "eu-west"][usize::from(self.region)].to_owned();
        match self.spec.event() {
            Event::Impression(i) => Event::Impression(Impression { region, ..i }),
            Event::Play(p) => Event::Play(Play { region, ..p }),
        }
    }
}

/// Events over both regions. Mirror delays are mostly small, at times an outage of many
/// times the allowed lateness (the records after it queue behind it, then catch up).
fn workload(max_step: i64, max_jitter: i64) -> impl Strategy<Value = Vec<Logged>> {
    let jitter = prop_oneof![Just(0), Just(max_jitter), 0..=max_jitter];
    let delay = prop_oneof![
        4 => 0..=LATENESS_STEPS,
        1 => Just(40 * LATENESS_STEPS),
        1 => 0..=10 * LATENESS_STEPS,
    ];
    let logged = (spec(max_step), 0..REGIONS, jitter, delay)
        .prop_map(|(spec, region, jitter, mirror_delay)| Logged { spec, region, jitter, mirror_delay });
    prop::collection::vec(logged, 1..80)
}

/// One source of a region's join: (origin, kind).
type SourceId = (Origin, Source);

fn kind(spec: &Spec) -> Source {
    if spec.play { Source::Plays } else { Source::Impressions }
}

/// The four sources of `home`'s join, in a fixed order.
fn sources() -> [SourceId; 4] {
    [
        (Origin::LOCAL, Source::Impressions),
        (Origin::LOCAL, Source::Plays),
        (Origin(1), Source::Impressions),
        (Origin(1), Source::Plays),
    ]
}

/// How `home`'s join sees where an event comes from.
fn origin_at(home: u8, logged: &Logged) -> Origin {
    if logged.region == home { Origin::LOCAL } else { Origin(1) }
}

/// How one region's join interleaves its four sources.
#[derive(Debug, Clone)]
enum Interleaving {
    /// By arrival: local records at their log time, mirrored ones at their log time
    /// plus the mirror's delay (never before the record before them in their source).
    ByArrival,
    /// Each source read to its end, one after another, in this order of `sources()`.
    OneAfterAnother(Vec<usize>),
    /// Picks of a source (cycled; an empty source passes to the next one).
    Picks(Vec<usize>),
}

fn interleaving() -> impl Strategy<Value = Interleaving> {
    let order = Just(vec![0usize, 1, 2, 3]).prop_shuffle();
    prop_oneof![
        Just(Interleaving::ByArrival),
        order.prop_map(Interleaving::OneAfterAnother),
        prop::collection::vec(0usize..4, 1..64).prop_map(Interleaving::Picks),
        // Long runs of one source.
        prop::collection::vec((0usize..4, 1usize..24), 1..16).prop_map(|runs| {
            Interleaving::Picks(runs.into_iter().flat_map(|(s, n)| std::iter::repeat_n(s, n)).collect())
        }),
    ]
}

/// Per source of `home`'s join, its inputs in source order with offsets, and for each
/// input its arrival step at `home`.
fn source_orders(events: &[Logged], home: u8) -> BTreeMap<SourceId, Vec<(i64, Input)>> {
    let mut order: Vec<_> = events.iter().enumerate().collect();
    // A region's log: by event time plus jitter (stable).
    order.sort_by_key(|(i, e)| (e.spec.step + e.jitter, *i));
    let mut by_source: BTreeMap<SourceId, Vec<(i64, Input)>> = BTreeMap::new();
    for (_, e) in order {
        let origin = origin_at(home, e);
        let queue = by_source.entry((origin, kind(&e.spec))).or_default();
        let logged_at = e.spec.step + e.jitter;
        let arrival = if origin == Origin::LOCAL {
            logged_at
        } else {
            // The mirror keeps each partition's order: a record waits for the one before it.
            let previous = queue.last().map_or(i64::MIN, |(at, _)| *at);
            (logged_at + e.mirror_delay).max(previous)
        };
        let offset = queue.len() as i64;
        queue.push((arrival, Input { origin, offset, event: e.event() }));
    }
    by_source
}

/// `home`'s inputs, the sources merged as `interleaving` says.
fn arrival(events: &[Logged], home: u8, interleaving: &Interleaving) -> Vec<Input> {
    let by_source = source_orders(events, home);
    let queue = |id: &SourceId| by_source.get(id).cloned().unwrap_or_default();
    match interleaving {
        Interleaving::ByArrival => {
            let mut all: Vec<(i64, usize, i64, Input)> = sources()
                .into_iter()
                .enumerate()
                .flat_map(|(n, id)| {
                    queue(&id).into_iter().map(move |(at, input)| (at, n, input.offset, input))
                })
                .collect();
            all.sort_by_key(|(at, n, offset, _)| (*at, *n, *offset));
            all.into_iter().map(|(.., input)| input).collect()
        }
        Interleaving::OneAfterAnother(order) => {
            order.iter().flat_map(|&n| queue(&sources()[n]).into_iter().map(|(_, input)| input)).collect()
        }
        Interleaving::Picks(picks) => {
            let queues =
                sources().into_iter().map(|id| queue(&id).into_iter().map(|(_, input)| input).collect());
            merge_by_picks(queues.collect(), picks)
        }
    }
}

fn all_events(events: &[Logged]) -> Vec<Event> {
    events.iter().map(Logged::event).collect()
}

fn run(inputs: &[Input], cuts: &[usize]) -> (Outputs, Facts) {
    let mut state = JoinState::with_origins(small_config(), 2).expect("valid config");
    let mut out = Outputs::default();
    feed(&mut state, inputs, cuts, &mut out);
    state.finish_into(&mut out);
    let facts = facts(&out);
    (out, facts)
}

/// The too-late inputs of a run, by source and offset.
fn late_set(out: &Outputs) -> BTreeSet<(Origin, Source, i64)> {
    out.late.iter().map(|l| (l.input.origin, l.input.event.source(), l.input.offset)).collect()
}

/// Per source, the offset after the last of its inputs in `inputs`.
fn next_offsets(inputs: &[Input], origin: Origin) -> SourceOffsets {
    let next = |source| inputs.iter().filter(|i| i.source() == (origin, source)).map(|i| i.offset + 1).max();
    SourceOffsets { impressions: next(Source::Impressions), plays: next(Source::Plays) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any mirror delay (outages of many times the allowed lateness included) and any
    /// interleaving of the four sources: each region's counts are the single-region
    /// reference over both regions' events, and nothing is too late.
    #[test]
    fn both_regions_count_the_single_region_reference(
        events in workload(360, LATENESS_STEPS),
        interleavings in (interleaving(), interleaving()),
        cuts in cuts(),
    ) {
        let expected = reference(&small_config(), &all_events(&events));
        for (home, interleaving) in [(0, &interleavings.0), (1, &interleavings.1)] {
            let (out, facts) = run(&arrival(&events, home, interleaving), &cuts);
            prop_assert!(out.late.is_empty(), "region {home}: judged too late: {:?}", out.late);
            prop_assert_eq!(&facts, &expected, "region {}", home);
        }
    }

    /// With disorder beyond the allowed lateness, what is too late depends on each
    /// source's own order only: any two interleavings (hence any mirror delay) agree on
    /// the late inputs and the facts, which are the reference over the accepted inputs.
    #[test]
    fn lateness_is_judged_per_source_whatever_the_mirror_does(
        events in workload(360, 4 * LATENESS_STEPS),
        interleavings in (interleaving(), interleaving()),
        cuts in cuts(),
    ) {
        let inputs = arrival(&events, 0, &interleavings.0);
        let (out, facts) = run(&inputs, &cuts);
        let late = late_set(&out);
        let accepted: Vec<Event> = inputs
            .iter()
            .filter(|i| !late.contains(&(i.origin, i.event.source(), i.offset)))
            .map(|i| i.event.clone())
            .collect();
        prop_assert_eq!(&facts, &reference(&small_config(), &accepted));
        let (other_out, other_facts) = run(&arrival(&events, 0, &interleavings.1), &cuts);
        prop_assert_eq!(late, late_set(&other_out));
        prop_assert_eq!(facts, other_facts);
    }

    /// Crash at random points and resume every origin from its saved needed offsets
    /// (or earlier) with its saved watermarks, the replay interleaving the four sources
    /// differently: the union of facts is the reference, and nothing is late.
    #[test]
    fn crash_and_replay_over_regions_matches_reference(
        events in workload(360, LATENESS_STEPS),
        interleaving in interleaving(),
        crashes in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
        rewind in 0i64..6,
        replay_picks in prop::collection::vec(0usize..4, 1..64),
        cuts in cuts(),
    ) {
        let inputs = arrival(&events, 0, &interleaving);
        let mut crash_points: Vec<usize> = crashes.iter().map(|c| c.index(inputs.len() + 1)).collect();
        crash_points.sort_unstable();
        crash_points.push(inputs.len());

        let mut union = Facts::default();
        let mut state = JoinState::with_origins(small_config(), 2).expect("valid config");
        let mut position = 0;
        for (n, &crash) in crash_points.iter().enumerate() {
            let last = n + 1 == crash_points.len();
            let mut out = Outputs::default();
            feed(&mut state, &inputs[position..crash], &cuts, &mut out);
            if last {
                state.finish_into(&mut out);
            }
            prop_assert!(out.late.is_empty(), "late after restart: {:?}", out.late);
            union.union(&facts(&out));
            if last {
                break;
            }
            // "Commit" at `crash`, then lose the state.
            let points: Vec<ResumePoint> = [Origin::LOCAL, Origin(1)]
                .map(|origin| ResumePoint {
                    committed: next_offsets(&inputs[..crash], origin),
                    watermarks: state.watermarks(origin),
                })
                .to_vec();
            let start = |(origin, source): SourceId| {
                let committed = points[usize::from(origin.0)].committed.get(source);
                let from = state.oldest_needed_offsets(origin).get(source).or(committed).unwrap_or(0);
                (from - rewind).max(0)
            };
            let starts: Vec<i64> = sources().into_iter().map(start).collect();
            let replay = merge_replay(&inputs[..crash], &starts, &replay_picks);
            state = JoinState::resume_origins(small_config(), &points).expect("valid config");
            let mut out = Outputs::default();
            feed(&mut state, &replay, &cuts, &mut out);
            prop_assert!(out.is_empty(), "a replay emits nothing: {:?}", out);
            position = crash;
        }
        prop_assert_eq!(union, reference(&small_config(), &all_events(&events)));
    }

    /// Outcomes follow each source's own order: played iff a rewarding play arrived while
    /// its own source's plays watermark was not past the owner's deadline, however far
    /// the mirror lags. (The owner is the key's first explored impression to arrive.)
    #[test]
    fn outcomes_follow_each_sources_order_whatever_the_mirror_does(
        events in workload(60, LATENESS_STEPS),
        interleaving in interleaving(),
        cuts in cuts(),
    ) {
        let inputs = arrival(&events, 0, &interleaving);
        let (out, _) = run(&inputs, &cuts);
        let got = outcome_view(&out);
        prop_assert_eq!(got.len(), out.outcomes.len(), "one outcome per key");
        prop_assert_eq!(got, outcomes_by_source_order(&inputs));
    }
}

/// The replay of a restart: each source of `inputs` from `starts[n]` (for `sources()[n]`),
/// merged by cycled picks, each source's order kept.
fn merge_replay(inputs: &[Input], starts: &[i64], picks: &[usize]) -> Vec<Input> {
    let queues = sources()
        .into_iter()
        .zip(starts)
        .map(|(id, &from)| inputs.iter().filter(|i| i.source() == id && i.offset >= from).cloned().collect())
        .collect();
    merge_by_picks(queues, picks)
}

/// Merges queues by cycled picks of a queue (an empty one passes to the next).
fn merge_by_picks(queues: Vec<Vec<Input>>, picks: &[usize]) -> Vec<Input> {
    let mut queues: Vec<_> = queues.into_iter().map(Vec::into_iter).collect();
    let mut left: usize = queues.iter().map(ExactSizeIterator::len).sum();
    let mut merged = Vec::with_capacity(left);
    let mut picks = picks.iter().cycle();
    while left > 0 {
        let mut n = *picks.next().unwrap_or(&0);
        while queues[n].len() == 0 {
            n = (n + 1) % queues.len();
        }
        merged.extend(queues[n].next());
        left -= 1;
    }
    merged
}

/// Outcomes as each source's order decides them (no key expires within the input).
fn outcomes_by_source_order(arrival: &[Input]) -> BTreeMap<(String, i64), (i64, bool)> {
    let c = small_config();
    let mut plays_wm: BTreeMap<Origin, i64> = BTreeMap::new();
    let mut plays = Vec::new();
    for input in arrival {
        if let Event::Play(p) = &input.event {
            let wm = plays_wm.entry(input.origin).or_insert(i64::MIN);
            *wm = (*wm).max(p.event_time_ms);
            plays.push((p, *wm));
        }
    }
    let mut result = BTreeMap::new();
    for input in arrival {
        let Event::Impression(i) = &input.event else { continue };
        let key = (i.request_id.clone(), i.video_id);
        if i.explore.is_none() || result.contains_key(&key) {
            continue;
        }
        let deadline = i.event_time_ms + c.reward_window_ms + c.reward_grace_ms;
        let played = plays.iter().any(|(p, wm_at_arrival)| {
            p.request_id == key.0
                && p.video_id == key.1
                && c.rewards(i.event_time_ms, p.event_time_ms)
                && *wm_at_arrival <= deadline
        });
        result.insert(key, (i.event_time_ms, played));
    }
    result
}

#[test]
fn a_silent_mirror_holds_unattributed_plays() {
    // A local play with no impression anywhere: with one origin it is settled once the
    // impressions watermark passes it; with a silent mirror nothing settles it, as a
    // mirrored impression of any time could still come, until the mirror moves.
    let c = small_config();
    let mut state = JoinState::with_origins(c, 2).expect("valid config");
    let play = Event::Play(super::play_event("r1", 1, 0));
    let far = 10 * c.allowed_lateness_ms;
    let later = |offset, t| Input::local(offset, Event::Impression(super::impression("other", 2, t)));
    let mut out = state.apply(&[Input::local(0, play), later(0, far)]);
    assert!(out.unattributed.is_empty(), "held while the mirror showed nothing: {out:?}");
    let mirrored = Input { origin: Origin(1), ..later(0, far) };
    out = state.apply(&[mirrored]);
    assert_eq!(out.unattributed.len(), 1, "settled once every impressions source passed it");
    assert_eq!(state.min_watermarks().impressions, Some(far));
}
