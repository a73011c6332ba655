//! Decisions per second in process: one billboard decision (the policy's distribution
//! over 50 (title, artwork) candidates, then the two-step draw) per iteration, for each
//! policy, from a model learned in the simulated world.
//!
//! `cargo bench -p nearline-billboard --bench decisions`

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nearline_billboard::policy::rng::Rng;
use nearline_billboard::policy::{
    Arm, Cell, Daypart, Discount, Learner, Model, Observation, Params, PolicyKind, TitleFacts, pick_pair,
    sticky_unit,
};

const COUNTRIES: [&str; 5] = ["US", "BR", "FR", "IN", "JP"];
const DEVICES: [&str; 3] = ["tv", "mobile", "web"];

fn cell(rng: &mut Rng) -> Cell {
    Cell {
        country: COUNTRIES[rng.below(5)].into(),
        device: DEVICES[rng.below(3)].into(),
        daypart: Daypart::ALL[rng.below(4)],
    }
}

/// 25 titles × 2 artworks = 50 candidates, and a model learned from 50 000 outcomes.
fn setup() -> (Vec<Arm>, Params, Learner, Arc<HashMap<i64, TitleFacts>>) {
    let arms: Vec<Arm> = (0..25)
        .flat_map(|t| (0..2).map(move |a| Arm::new(80_000_000 + t, &format!("art-{t}-{a}"))))
        .collect();
    let facts = Arc::new(
        (0..25)
            .map(|t| {
                (
                    80_000_000 + t,
                    TitleFacts {
                        kind: Some("movie".into()),
                        genres: vec![format!("g{}", t % 4)],
                        early_read: None,
                    },
                )
            })
            .collect(),
    );
    let params = Params::default();
    let mut learner = Learner::default();
    let mut rng = Rng::new(3);
    for i in 0..50_000 {
        let arm = arms[rng.below(arms.len())].clone();
        let played = rng.uniform() < 0.02 + 0.002 * (arm.video_id % 25) as f64;
        let o =
            Observation { request_id: format!("r{i}"), arm, cell: cell(&mut rng), played, time_ms: i * 1000 };
        learner.apply(&o, Discount::new(7 * 24 * 3_600_000));
    }
    (arms, params, learner, facts)
}

fn decisions(c: &mut Criterion) {
    let (arms, params, learner, facts) = setup();
    let model = Model::build(params, 1, &learner.stats, facts.clone());
    let mut group = c.benchmark_group("decision_50_candidates");
    group.throughput(Throughput::Elements(1));
    for policy in PolicyKind::ALL {
        let mut rng = Rng::new(9);
        group.bench_function(policy.as_str(), |b| {
            b.iter(|| {
                let cell = cell(&mut rng);
                let p = model.probabilities(policy, &cell, &arms);
                let u = rng.uniform();
                black_box(pick_pair(&p, &arms, u, |v| sticky_unit("member-1", v, 0, 86_400_000)))
            });
        });
    }
    // Thompson right after the model changed: the win probabilities are computed, not
    // read from the per-version cache (each of the 60 buckets pays this once per version),
    // by quadrature (the default) and by 400 Monte Carlo draws.
    for (name, draws) in [("thompson_after_model_change", 0), ("thompson_after_model_change_400_draws", 400)]
    {
        let params = Params { thompson_draws: draws, ..params };
        group.bench_function(name, |b| {
            let mut rng = Rng::new(5);
            let mut version = 1;
            // By reference: dropping the model is not part of a decision.
            b.iter_batched_ref(
                || {
                    version += 1;
                    Model::build(params, version, &learner.stats, facts.clone())
                },
                |model| {
                    let cell = cell(&mut rng);
                    black_box(model.probabilities(PolicyKind::Thompson, &cell, &arms))
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
