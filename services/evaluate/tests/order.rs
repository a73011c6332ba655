//! The logs are a set: any order and any re-emission of the same outcomes gives the same
//! report, number for number (the first outcome per (request_id, video_id) wins, as in
//! billboard's learner).

use std::sync::LazyLock;

use nearline_billboard::policy::rng::Rng;
use nearline_billboard::policy::{Params, PolicyKind, Split};
use nearline_billboard::sim::{RunConfig, World, WorldConfig};
use nearline_evaluate::input::OutcomeJson;
use nearline_evaluate::{
    Bootstrap, Estimator, LogsBuilder, Options, Range, Report, SliceField, Training, evaluate, spec,
};
use proptest::prelude::*;

static OUTCOMES: LazyLock<Vec<OutcomeJson>> = LazyLock::new(|| {
    let world = World::new(WorldConfig {
        countries: 2,
        devices: 2,
        titles: 4,
        artworks: vec![2, 1],
        launch_at_ms: None,
        drift_at_ms: None,
        ..WorldConfig::default()
    });
    let split = Split::new(&[(PolicyKind::Linear, 0.7), (PolicyKind::Uniform, 0.3)]);
    let mut config = RunConfig::new(split, Params { min_propensity: 0.02, ..Params::default() });
    config.decisions = 400;
    config.gap_ms = 30_000;
    nearline_evaluate::sim::simulate(&world, &config)
});

fn report(outcomes: impl IntoIterator<Item = OutcomeJson>) -> Report {
    let mut builder = LogsBuilder::default();
    for o in outcomes {
        builder.push(o.logged());
    }
    let logs = builder.finish();
    let options = Options {
        estimators: Estimator::ALL.to_vec(),
        bootstrap: Bootstrap { resamples: 50, seed: 3 },
        clip: Some(20.0),
        by: vec![SliceField::Device, SliceField::Policy],
        training: Training { reward_delay_ms: 17 * 60_000, rebuild_every_ms: 5 * 60_000 },
        range: Range { from_ms: 3_600_000, to_ms: i64::MAX },
        direct_params: Params::default(),
        stickiness_ms: 24 * 3_600_000,
    };
    let target = spec::parse("epsilon_greedy(epsilon=0.2)", Params::default()).unwrap();
    let mut report = evaluate(&logs, &target, &options).unwrap();
    report.outcomes_read = 0;
    report.duplicates_ignored = 0;
    report
}

/// Equal, numbers to 1e-9 relative: billboard's model sums its statistics in hash-map
/// order, so the last bits of a float may differ between two builds of the same model.
fn same(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-12), "{at}: {x} != {y}");
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
            for (k, v) in x {
                same(v, &y[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                same(v, w, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

static REFERENCE: LazyLock<Report> = LazyLock::new(|| report(OUTCOMES.iter().cloned()));

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn any_order_and_duplication_gives_the_same_report(seed in any::<u64>(), dups in 0usize..60) {
        let mut rng = Rng::new(seed);
        let mut stream: Vec<OutcomeJson> = OUTCOMES.clone();
        // Re-emissions (with a flipped reward: they must not count) after their original.
        for _ in 0..dups {
            let i = rng.below(stream.len());
            let mut copy = stream[i].clone();
            copy.played = !copy.played;
            let at = i + 1 + rng.below(stream.len() - i);
            stream.insert(at, copy);
        }
        // Then shuffle whole, keeping each original before its copies.
        let mut keyed: Vec<(u64, usize, OutcomeJson)> =
            stream.into_iter().enumerate().map(|(k, o)| (rng.next_u64(), k, o)).collect();
        let mut first_seen = std::collections::HashMap::new();
        for (_, k, o) in &keyed {
            first_seen.entry((o.request_id.clone(), o.video_id)).or_insert(*k);
        }
        keyed.sort_by_key(|(r, k, o)| (u64::from(first_seen[&(o.request_id.clone(), o.video_id)] != *k), *r));
        let got = report(keyed.into_iter().map(|(_, _, o)| o));
        let (got, want) = (serde_json::to_value(&got).unwrap(), serde_json::to_value(&*REFERENCE).unwrap());
        same(&got, &want, "$");
    }
}
