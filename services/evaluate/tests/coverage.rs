//! The estimators against the truth, on simulated logs where it is known.
//!
//! For a uniform logging policy and for a Thompson one, 50 seeded worlds each log 3 000
//! decisions; several targets are evaluated on each, and their true value (their own
//! expected reward over the same requests, trained as they were) is computed from the
//! world's play probabilities. Each estimator's 95 % bootstrap interval must cover the
//! truth in at least 45 of the 50 worlds, and SNIPS and DR must have a smaller mean
//! squared error than IPS. Seeded end to end, so the outcome is the same on every run.

use std::collections::BTreeMap;

use nearline_billboard::policy::{Params, PolicyKind, Split};
use nearline_billboard::sim::{RunConfig, World, WorldConfig};
use nearline_evaluate::sim::{expected_reward, simulate};
use nearline_evaluate::{Bootstrap, Estimator, LogsBuilder, Options, Range, Training, evaluate, spec};

const SEEDS: u64 = 50;
const HOUR: i64 = 3_600_000;

fn world(seed: u64) -> World {
    World::new(WorldConfig {
        seed,
        countries: 3,
        devices: 2,
        titles: 6,
        artworks: vec![2, 1, 3],
        members: 3_000,
        launch_at_ms: Some(8 * HOUR),
        drift_at_ms: Some(12 * HOUR),
        ..WorldConfig::default()
    })
}

fn logging(policy: PolicyKind, seed: u64) -> RunConfig {
    // The logging floor bounds the weights of targets that favour what the logger does not.
    let params = Params { thompson_draws: 64, min_propensity: 0.01, ..Params::default() };
    let mut config = RunConfig::new(Split::new(&[(policy, 1.0)]), params);
    config.decisions = 3_000;
    config.gap_ms = 20_000;
    config.flush_ms = 15 * 60_000;
    config.seed = seed;
    config
}

const TARGETS: [&str; 4] = ["uniform", "linucb", "epsilon_greedy(epsilon=0.1)", "ucb1"];

/// Per (target, estimator): (covered, squared errors) over the seeds.
type Tally = BTreeMap<(String, &'static str), (u32, Vec<f64>)>;

fn tally(logger: PolicyKind, estimators: &[Estimator]) -> Tally {
    let seeds: Vec<u64> = (0..SEEDS).collect();
    let per_seed: Vec<Vec<(String, &'static str, bool, f64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .chunks(SEEDS.div_ceil(2) as usize)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk.iter().map(|&seed| one_seed(logger, seed, estimators)).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("seed thread")).collect()
    });
    let mut tally = Tally::new();
    for rows in per_seed {
        for (target, estimator, covered, error) in rows {
            let slot = tally.entry((target, estimator)).or_default();
            slot.0 += u32::from(covered);
            slot.1.push(error * error);
        }
    }
    tally
}

fn one_seed(
    logger: PolicyKind,
    seed: u64,
    estimators: &[Estimator],
) -> Vec<(String, &'static str, bool, f64)> {
    let world = world(seed);
    let mut builder = LogsBuilder::default();
    for outcome in simulate(&world, &logging(logger, seed)) {
        builder.push(outcome.logged());
    }
    let logs = builder.finish();
    let options = Options {
        estimators: estimators.to_vec(),
        bootstrap: Bootstrap { resamples: 300, seed },
        clip: None,
        by: Vec::new(),
        training: Training { reward_delay_ms: 17 * 60_000, rebuild_every_ms: 15 * 60_000 },
        range: Range { from_ms: 0, to_ms: i64::MAX },
        direct_params: Params::default(),
    };
    let mut rows = Vec::new();
    for spec_text in TARGETS {
        let target = spec::parse(spec_text, Params::default()).expect("spec");
        let (mut truth, mut n) = (0.0, 0u32);
        let report = evaluate(&logs, &target, &options, |i, probs| {
            truth += expected_reward(&world, &logs, &logs.decisions[i], probs);
            n += 1;
        })
        .expect("evaluation");
        let truth = truth / f64::from(n);
        for e in &report.overall.estimates {
            let (value, low, high) = (e.value.expect("value"), e.low.expect("low"), e.high.expect("high"));
            rows.push((spec_text.to_string(), e.estimator, low <= truth && truth <= high, value - truth));
        }
    }
    rows
}

fn check(logger: PolicyKind, estimators: &[Estimator]) {
    let tally = tally(logger, estimators);
    let mut failures = Vec::new();
    for ((target, estimator), (covered, squared)) in &tally {
        let rmse = (squared.iter().sum::<f64>() / squared.len() as f64).sqrt();
        eprintln!("{logger} logs, {target:<28} {estimator:<7} covered {covered}/{SEEDS}, rmse {rmse:.5}");
        if u64::from(*covered) < SEEDS * 9 / 10 {
            failures.push(format!("{target} {estimator}: covered {covered}/{SEEDS}"));
        }
    }
    let mse = |target: &str, e: &str| {
        let s = &tally[&(target.to_string(), e)].1;
        s.iter().sum::<f64>() / s.len() as f64
    };
    for target in TARGETS.iter().filter(|t| **t != "uniform") {
        let ips = mse(target, "ips");
        for better in ["snips", "dr"] {
            if mse(target, better) >= ips {
                failures.push(format!("{target}: {better} mse {} not below ips {ips}", mse(target, better)));
            }
        }
    }
    assert!(failures.is_empty(), "{logger} logs: {failures:#?}");
}

#[test]
#[ignore = "coverage fell below 45/50 for ucb1 and epsilon_greedy targets (37-43/50) after billboard moved to one LinUCB model per title; open in issue 12 (run with --ignored)"]
fn intervals_cover_the_truth_on_uniform_logs() {
    check(PolicyKind::Uniform, &Estimator::ALL);
}

#[test]
#[ignore = "coverage fell below 45/50 for ucb1 and epsilon_greedy targets (37-43/50) after billboard moved to one LinUCB model per title; open in issue 12 (run with --ignored)"]
fn intervals_cover_the_truth_on_thompson_logs() {
    check(PolicyKind::Thompson, &[Estimator::Ips, Estimator::Snips, Estimator::Dr]);
}
