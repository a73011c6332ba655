//! A seeded simulated world for tests, benchmarks and demos: members, contexts, titles
//! with artworks, true play probabilities that depend on the context, a launch, a drift,
//! and rewards that arrive late, as attribution emits them (about 17 minutes of event
//! time after the impression: the reward window plus its grace).
//!
//! [`world`] holds the truth; [`run`] drives the policy core through it: decide, draw the
//! play from the truth, deliver the outcome after the delay, learn, rebuild the model on
//! a flush interval. Everything is a function of the seeds, so a run is reproducible.

pub mod world;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::policy::rng::Rng;
use crate::policy::{Learner, Model, Observation, Params, PolicyKind, Split, pick_pair, sticky_unit};
pub use world::{World, WorldConfig};

/// How a run is driven.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Decisions to make.
    pub decisions: usize,
    /// Event time between decisions.
    pub gap_ms: i64,
    /// Delay from an impression to its outcome reaching the learner.
    pub reward_delay_ms: i64,
    /// How often (event time) applied outcomes are folded into a new model.
    pub flush_ms: i64,
    /// The tail of the run the take rates are measured over (the last 40 %).
    pub measured_fraction: f64,
    /// Policy tunables.
    pub params: Params,
    /// Traffic split.
    pub split: Split,
    /// Artwork stickiness period.
    pub stickiness_ms: i64,
    /// Seed of the decisions and plays (the world has its own).
    pub seed: u64,
}

impl RunConfig {
    /// The setting: 50 000 decisions over a day, rewards 17 minutes late, the
    /// model rebuilt every simulated minute, measured over the last 40 %.
    pub fn new(split: Split, params: Params) -> Self {
        Self {
            decisions: 50_000,
            gap_ms: 86_400_000 / 50_000,
            reward_delay_ms: 17 * 60_000,
            flush_ms: 60_000,
            measured_fraction: 0.4,
            params,
            split,
            stickiness_ms: 24 * 3_600_000,
            seed: 1,
        }
    }
}

/// Take rates of one policy over the measured tail.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PolicyReport {
    /// Decisions it served in the tail.
    pub decisions: u64,
    /// Mean true play probability of what it served.
    pub served: f64,
    /// Mean true play probability of the best pair of the same requests.
    pub oracle: f64,
    /// Plays drawn.
    pub plays: u64,
}

impl PolicyReport {
    /// Served take rate as a fraction of the oracle's.
    pub fn ratio(&self) -> f64 {
        if self.oracle > 0.0 { self.served / self.oracle } else { 0.0 }
    }
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Over all decisions in the tail.
    pub total: PolicyReport,
    /// Per serving policy.
    pub by_policy: HashMap<PolicyKind, PolicyReport>,
    /// Mean true play probability of a uniformly random pick, over the tail.
    pub uniform: f64,
    /// Model versions built.
    pub versions: u64,
}

/// Runs `config` through `world`.
pub fn run(world: &World, config: &RunConfig) -> Report {
    let mut rng = Rng::new(config.seed);
    let facts = Arc::new(world.facts());
    let discount = config.params.discount;
    let mut learner = Learner::default();
    let mut model = Arc::new(Model::build(config.params, 0, &learner.stats, facts.clone()));
    let mut pending: VecDeque<(i64, Observation)> = VecDeque::new();
    let mut next_flush = config.flush_ms;
    let measured_from = ((1.0 - config.measured_fraction) * config.decisions as f64) as usize;
    let mut report = Report::default();
    let mut sums = (0.0, 0.0, 0.0, 0u64, 0u64);
    for i in 0..config.decisions {
        let now = i as i64 * config.gap_ms;
        while pending.front().is_some_and(|(arrival, _)| *arrival <= now) {
            let (_, o) = pending.pop_front().expect("checked");
            learner.apply(&o, discount);
        }
        if now >= next_flush {
            let touched = learner.take_touched();
            if !touched.is_empty() {
                let version = model.version() + 1;
                model = Arc::new(Model::rebuild(
                    Some(&model),
                    config.params,
                    version,
                    &learner.stats,
                    facts.clone(),
                    &touched,
                ));
            }
            next_flush = now + config.flush_ms;
        }
        let request = world.request(&mut rng, now);
        let policy = config.split.policy(&request.member);
        let probabilities = model.probabilities(policy, &request.cell, &request.candidates);
        let decision = pick_pair(&probabilities, &request.candidates, rng.uniform(), |video| {
            sticky_unit(&request.member, video, now, config.stickiness_ms)
        });
        let arm = &request.candidates[decision.index];
        let truth = world.play_probability(&request.cell, arm, now);
        let played = rng.uniform() < truth;
        if i >= measured_from {
            let truths: Vec<f64> =
                request.candidates.iter().map(|a| world.play_probability(&request.cell, a, now)).collect();
            let best = truths.iter().copied().fold(0.0, f64::max);
            let mean = truths.iter().sum::<f64>() / truths.len() as f64;
            let entry = report.by_policy.entry(policy).or_default();
            entry.decisions += 1;
            entry.served += truth;
            entry.oracle += best;
            entry.plays += u64::from(played);
            sums.0 += truth;
            sums.1 += best;
            sums.2 += mean;
            sums.3 += 1;
            sums.4 += u64::from(played);
        }
        pending.push_back((
            now + config.reward_delay_ms,
            Observation {
                request_id: format!("sim-{i}"),
                arm: arm.clone(),
                cell: request.cell.clone(),
                played,
                time_ms: now,
            },
        ));
    }
    for r in report.by_policy.values_mut() {
        r.served /= r.decisions.max(1) as f64;
        r.oracle /= r.decisions.max(1) as f64;
    }
    let n = sums.3.max(1) as f64;
    report.total = PolicyReport { decisions: sums.3, served: sums.0 / n, oracle: sums.1 / n, plays: sums.4 };
    report.uniform = sums.2 / n;
    report.versions = model.version();
    report
}

#[cfg(test)]
mod tests;
