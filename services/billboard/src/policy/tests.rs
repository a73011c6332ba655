//! Property tests of the policy core: every policy's propensities are a distribution
//! with the floor respected; drawn decisions occur as often as their propensities say;
//! and the learner applies the first outcome per key whatever the order or duplication.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;

use super::rng::Rng;
use super::*;

const HOUR: i64 = 3_600_000;
const COUNTRIES: [&str; 3] = ["US", "BR", "FR"];
const DEVICES: [&str; 2] = ["tv", "mobile"];

fn cell(c: usize, d: usize, p: usize) -> Cell {
    Cell { country: COUNTRIES[c % 3].into(), device: DEVICES[d % 2].into(), daypart: Daypart::ALL[p % 4] }
}

/// Candidates: `titles` titles with 1..=3 artworks each, adjacent per title.
fn candidates(titles: usize, artworks: &[usize]) -> Vec<Arm> {
    (0..titles)
        .flat_map(|t| {
            (0..artworks[t % artworks.len()]).map(move |a| Arm::new(t as i64 + 1, &format!("art{a}")))
        })
        .collect()
}

/// Random statistics over the candidates.
fn learned(seed: u64, arms: &[Arm], outcomes: usize) -> Statistics {
    let mut rng = Rng::new(seed);
    let mut learner = Learner::default();
    for i in 0..outcomes {
        let arm = arms[rng.below(arms.len())].clone();
        let o = Observation {
            request_id: format!("r{i}"),
            cell: cell(rng.below(3), rng.below(2), rng.below(4)),
            played: rng.uniform() < 0.1 + 0.05 * (arm.video_id % 4) as f64,
            time_ms: rng.below(48) as i64 * HOUR,
            arm,
        };
        learner.apply(&o, Discount::new(24 * HOUR));
    }
    learner.stats
}

fn facts() -> Arc<HashMap<i64, TitleFacts>> {
    Arc::new(
        (1..=40)
            .map(|id| {
                let kind = if id % 2 == 0 { "movie" } else { "series" };
                (
                    id,
                    TitleFacts {
                        kind: Some(kind.into()),
                        genres: vec![format!("g{}", id % 3)],
                        early_read: None,
                    },
                )
            })
            .collect(),
    )
}

fn params(min_propensity: f64) -> Params {
    Params { min_propensity, new_title_impressions: 5, thompson_draws: 200, ..Params::default() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn propensities_are_a_distribution_with_the_floor(
        seed in any::<u64>(),
        titles in 1usize..20,
        artworks in prop::collection::vec(1usize..4, 1..4),
        outcomes in 0usize..600,
        floor in 0.0f64..0.05,
        ctx in (0usize..3, 0usize..2, 0usize..4),
    ) {
        let arms = candidates(titles, &artworks);
        let stats = learned(seed, &arms, outcomes);
        let model = Model::build(params(floor), 1, &stats, facts());
        let cell = cell(ctx.0, ctx.1, ctx.2);
        for policy in PolicyKind::ALL {
            let p = model.probabilities(policy, &cell, &arms);
            let total: f64 = p.probs.iter().sum();
            prop_assert!((total - 1.0).abs() < 1e-9, "{policy}: sum {total}");
            let least = floor.min(1.0 / arms.len() as f64);
            for (i, x) in p.probs.iter().enumerate() {
                prop_assert!(*x > 0.0 || floor == 0.0, "{policy}: candidate {i} has probability {x}");
                prop_assert!(*x <= 1.0 + 1e-12, "{policy}: {x}");
                prop_assert!(*x >= least - 1e-12, "{policy}: candidate {i} below the floor: {x} < {least}");
            }
            prop_assert!(p.best.iter().any(|b| *b) || policy == PolicyKind::Uniform);
            // Drawn decisions carry their own probability, in (0, 1].
            let mut rng = Rng::new(seed);
            for _ in 0..20 {
                let d = pick_pair(&p, &arms, rng.uniform(), |_| rng.uniform());
                prop_assert!(d.propensity > 0.0 && d.propensity <= 1.0);
                prop_assert_eq!(d.propensity, p.probs[d.index]);
            }
        }
    }

    #[test]
    fn first_outcome_per_key_wins_in_any_order(
        seed in any::<u64>(),
        n in 1usize..200,
        dups in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..100),
    ) {
        let arms = candidates(5, &[2]);
        let mut rng = Rng::new(seed);
        let originals: Vec<Observation> = (0..n)
            .map(|i| Observation {
                request_id: format!("r{}", i / 2),
                arm: arms[rng.below(arms.len())].clone(),
                cell: cell(rng.below(3), rng.below(2), rng.below(4)),
                played: rng.uniform() < 0.3,
                time_ms: rng.below(100) as i64 * HOUR,
            })
            .collect();
        // Re-emissions (possibly with a different reward) inserted anywhere after their original.
        let mut stream = originals.clone();
        for (index, flip) in dups {
            let i = index.index(stream.len());
            let mut copy = stream[i].clone();
            if flip {
                copy.played = !copy.played;
            }
            let at = i + 1 + rng.below(stream.len() - i);
            stream.insert(at, copy);
        }
        let discount = Discount::new(24 * HOUR);
        let mut with_dups = Learner::default();
        for o in &stream {
            with_dups.apply(o, discount);
        }
        let mut reference = Learner::default();
        let mut seen = HashSet::new();
        for o in &originals {
            if seen.insert(o.key()) {
                reference.stats.observe(o, discount);
            }
        }
        let (a, b) = (with_dups.stats.sorted(), reference.stats.sorted());
        prop_assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            prop_assert_eq!((&x.0, &x.1, x.2.impressions, x.2.plays), (&y.0, &y.1, y.2.impressions, y.2.plays));
            prop_assert!((x.2.weight - y.2.weight).abs() < 1e-9);
        }
    }
}

/// Draws many decisions for one request (members differ, so the sticky artwork draw
/// varies as it does across real members) and checks every pair's frequency against its
/// propensity within 4.5 binomial standard deviations.
#[test]
fn empirical_frequencies_match_propensities() {
    let arms = candidates(12, &[1, 2, 3]);
    let stats = learned(11, &arms, 3_000);
    let model = Model::build(params(0.005), 7, &stats, facts());
    let cell = cell(0, 0, 3);
    for policy in PolicyKind::ALL {
        let p = model.probabilities(policy, &cell, &arms);
        assert_draws_follow_propensities(&p, &arms, 99, &policy.to_string());
    }
}

/// Draws 200 000 decisions from `p` (each for its own member, so the sticky artwork
/// draw varies as across real members; `seed` for the titles' draws) and checks that
/// each returns its own propensity and that every pair's frequency is within 4.5
/// binomial standard deviations of it.
fn assert_draws_follow_propensities(p: &Probabilities, arms: &[Arm], seed: u64, what: &str) {
    let draws = 200_000;
    let mut counts = vec![0u32; arms.len()];
    let mut rng = Rng::new(seed);
    for i in 0..draws {
        let member = format!("member-{i}");
        let d = pick_pair(p, arms, rng.uniform(), |video| sticky_unit(&member, video, 0, 24 * HOUR));
        assert_eq!(d.propensity, p.probs[d.index]);
        counts[d.index] += 1;
    }
    for (i, (&c, &q)) in counts.iter().zip(&p.probs).enumerate() {
        let expected = q * draws as f64;
        let sd = (draws as f64 * q * (1.0 - q)).sqrt().max(1.0);
        assert!(
            (f64::from(c) - expected).abs() <= 4.5 * sd,
            "{what}: candidate {i} drawn {c} times, propensity {q} expects {expected:.0} ± {sd:.0}"
        );
    }
}

/// The same for Thompson sampling with its win probabilities by quadrature (the
/// default; the test above runs the Monte Carlo estimate), over three contexts.
#[test]
fn empirical_frequencies_match_quadrature_propensities() {
    let arms = candidates(12, &[1, 2, 3]);
    let stats = learned(12, &arms, 3_000);
    let model = Model::build(Params { thompson_draws: 0, ..params(0.005) }, 7, &stats, facts());
    for cell in [cell(0, 0, 3), cell(1, 1, 0), cell(2, 0, 1)] {
        let p = model.probabilities(PolicyKind::Thompson, &cell, &arms);
        let total: f64 = p.probs.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "sum {total}");
        assert_draws_follow_propensities(&p, &arms, 98, &format!("{cell:?}"));
    }
}

#[test]
fn artwork_is_sticky_within_a_period() {
    let arms = candidates(1, &[3]);
    let stats = learned(5, &arms, 500);
    let model = Model::build(params(0.05), 1, &stats, facts());
    let p = model.probabilities(PolicyKind::Thompson, &cell(0, 0, 0), &arms);
    let mut changed = 0;
    for m in 0..1_000 {
        let member = format!("m{m}");
        let first = pick(&p, sticky_unit(&member, 1, 0, 24 * HOUR)).index;
        // An hour later, same period for almost every member (unless their period started in between).
        let later = pick(&p, sticky_unit(&member, 1, HOUR, 24 * HOUR)).index;
        changed += usize::from(first != later);
    }
    // About 1/24 of members cross a period boundary in an hour, and then redraw.
    assert!(changed < 100, "{changed} of 1000 members saw another artwork an hour later");
}

#[test]
fn learning_moves_the_pick_to_the_better_arm() {
    let arms = vec![Arm::new(1, "a"), Arm::new(2, "a")];
    let mut learner = Learner::default();
    let c = cell(0, 0, 0);
    for i in 0..2_000 {
        let arm = arms[i % 2].clone();
        let played = if arm.video_id == 2 { i % 5 == 1 } else { i % 50 == 0 };
        learner.apply(
            &Observation { request_id: format!("r{i}"), arm, cell: c.clone(), played, time_ms: 0 },
            Discount::new(0),
        );
    }
    let model = Model::build(params(0.01), 1, &learner.stats, facts());
    for policy in [PolicyKind::Thompson, PolicyKind::Linear, PolicyKind::EpsilonGreedy, PolicyKind::Ucb1] {
        let p = model.probabilities(policy, &c, &arms);
        assert!(p.probs[1] > 0.9, "{policy}: {:?}", p.probs);
        assert_eq!(p.best, vec![false, true], "{policy}");
    }
}

#[test]
fn a_new_title_gets_its_exploration_share() {
    let arms = candidates(3, &[1]);
    let mut learner = Learner::default();
    for i in 0..1_000 {
        let arm = arms[i % 2].clone();
        learner.apply(
            &Observation {
                request_id: format!("r{i}"),
                arm,
                cell: cell(0, 0, 0),
                played: i % 3 == 0,
                time_ms: 0,
            },
            Discount::new(0),
        );
    }
    let model = Model::build(Params { new_title_floor: 0.2, ..params(0.0) }, 1, &learner.stats, facts());
    let p = model.probabilities(PolicyKind::Linear, &cell(0, 0, 0), &arms);
    assert!(p.probs[2] >= 0.2 - 1e-12, "{:?}", p.probs);
}
