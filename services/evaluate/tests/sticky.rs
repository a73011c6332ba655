//! The report counts the decisions whose artwork repeated an earlier sticky draw, and
//! warns when the target learns along such logs (a fixed target is not affected).

use std::collections::HashMap;

use nearline_billboard::policy::{Params, PolicyKind, Split};
use nearline_billboard::sim::{RunConfig, World, WorldConfig};
use nearline_evaluate::input::OutcomeJson;
use nearline_evaluate::{
    Bootstrap, Estimator, LogsBuilder, Options, Range, Report, Training, evaluate, spec,
};

const DAY_MS: i64 = 86_400_000;
const FROM_MS: i64 = 3_600_000;

fn outcomes() -> Vec<OutcomeJson> {
    let world = World::new(WorldConfig {
        countries: 2,
        devices: 2,
        titles: 4,
        artworks: vec![2, 1, 3],
        members: 60,
        launch_at_ms: None,
        drift_at_ms: None,
        ..WorldConfig::default()
    });
    let split = Split::new(&[(PolicyKind::Thompson, 1.0)]);
    let mut config = RunConfig::new(split, Params { min_propensity: 0.02, ..Params::default() });
    config.decisions = 600;
    config.gap_ms = 60_000;
    nearline_evaluate::sim::simulate(&world, &config)
}

fn report(outcomes: &[OutcomeJson], policy: &str, stickiness_ms: i64) -> Report {
    let mut builder = LogsBuilder::default();
    for o in outcomes {
        builder.push(o.clone().logged());
    }
    let options = Options {
        estimators: vec![Estimator::Ips],
        bootstrap: Bootstrap { resamples: 0, seed: 1 },
        clip: None,
        by: Vec::new(),
        training: Training::default(),
        range: Range { from_ms: FROM_MS, to_ms: i64::MAX },
        direct_params: Params::default(),
        stickiness_ms,
    };
    evaluate(&builder.finish(), &spec::parse(policy, Params::default()).unwrap(), &options).unwrap()
}

/// The repeats counted straight from the outcomes: a member shown a title again less
/// than `window` after the last time, the title offering several artworks.
fn repeats_by_hand(outcomes: &[OutcomeJson], window: i64) -> u64 {
    let mut sorted: Vec<&OutcomeJson> = outcomes.iter().collect();
    sorted.sort_by_key(|o| (o.impression_time_ms, o.request_id.clone()));
    let mut last: HashMap<(&str, i64), i64> = HashMap::new();
    let mut n = 0;
    for o in sorted {
        let artworks = o.explore.as_ref().map_or(0, |e| {
            e.candidate_artworks.iter().find(|c| c.video_id == o.video_id).map_or(0, |c| c.artwork_ids.len())
        });
        let before = last.insert((o.member_id.as_str(), o.video_id), o.impression_time_ms);
        if o.impression_time_ms >= FROM_MS
            && artworks > 1
            && before.is_some_and(|t| o.impression_time_ms - t < window)
        {
            n += 1;
        }
    }
    n
}

#[test]
fn sticky_repeats_are_counted_and_a_learning_target_is_warned() {
    let outcomes = outcomes();
    let expected = repeats_by_hand(&outcomes, DAY_MS);
    assert!(expected > 50, "the world repeats members: {expected}");

    let learning = report(&outcomes, "ucb1", DAY_MS);
    assert_eq!(learning.sticky_repeats, expected);
    assert_eq!(learning.warnings.len(), 1, "{:?}", learning.warnings);
    assert!(learning.warnings[0].contains(&format!("{expected} of {}", learning.overall.decisions)));
    assert!(learning.table().contains("warning: "), "{}", learning.table());

    // A fixed target does not learn from the member: counted, not warned.
    for fixed in ["uniform", "logging"] {
        let r = report(&outcomes, fixed, DAY_MS);
        assert_eq!((r.sticky_repeats, r.warnings.len()), (expected, 0), "{fixed}");
    }
    // Without stickiness every draw is fresh.
    let fresh = report(&outcomes, "ucb1", 0);
    assert_eq!((fresh.sticky_repeats, fresh.warnings.len()), (0, 0));
    // A shorter stickiness counts fewer repeats, as the hand count does.
    let hour = report(&outcomes, "ucb1", 3_600_000);
    assert_eq!(hour.sticky_repeats, repeats_by_hand(&outcomes, 3_600_000));
    assert!(hour.sticky_repeats < expected);
}
