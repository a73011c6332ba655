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
use crate::policy::{
    Learner, Model, Observation, Params, PolicyKind, Split, TitleFacts, pick_pair, sticky_unit,
};
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
    /// Wall time spent deciding (distribution and draw), over all decisions.
    pub deciding: std::time::Duration,
}

/// Mixed into the run's seed for the decisions' and plays' draws.
const DRAWS_SEED: u64 = 0x5eed_d1a5_0000_0001;

/// The requests [`run`] sees for `config`, with their event times.
pub fn stream(world: &World, config: &RunConfig) -> Vec<(i64, world::Request)> {
    let mut requests = Rng::new(config.seed);
    (0..config.decisions)
        .map(|i| {
            let now = i as i64 * config.gap_ms;
            (now, world.request(&mut requests, now))
        })
        .collect()
}

/// A model learning as the service does: each outcome arrives `reward_delay_ms` after
/// its decision and the model is rebuilt every `flush_ms` of simulated time (the loop
/// [`run`] and offline evaluation's logging runs share).
#[derive(Debug)]
pub struct Online {
    params: Params,
    facts: Arc<HashMap<i64, TitleFacts>>,
    learner: Learner,
    model: Arc<Model>,
    /// Outcomes not yet arrived, by arrival time.
    pending: VecDeque<(i64, Observation)>,
    next_flush: i64,
    flush_ms: i64,
    reward_delay_ms: i64,
}

impl Online {
    /// A cold model for `config`'s parameters, flush interval and reward delay.
    pub fn new(config: &RunConfig, facts: Arc<HashMap<i64, TitleFacts>>) -> Self {
        let learner = Learner::default();
        let model = Arc::new(Model::build(config.params, 0, &learner.stats, facts.clone()));
        Self {
            params: config.params,
            facts,
            learner,
            model,
            pending: VecDeque::new(),
            next_flush: config.flush_ms,
            flush_ms: config.flush_ms,
            reward_delay_ms: config.reward_delay_ms,
        }
    }

    /// Applies the outcomes arrived by `now`, rebuilds the model when a flush is due,
    /// and returns the model a decision at `now` uses.
    pub fn at(&mut self, now: i64) -> &Arc<Model> {
        while self.pending.front().is_some_and(|(arrival, _)| *arrival <= now) {
            let (_, o) = self.pending.pop_front().expect("checked");
            self.learner.apply(&o, self.params.discount);
        }
        if now >= self.next_flush {
            let touched = self.learner.take_touched();
            if !touched.is_empty() {
                let version = self.model.version() + 1;
                self.model = Arc::new(Model::rebuild(
                    Some(&self.model),
                    self.params,
                    version,
                    &self.learner.stats,
                    self.facts.clone(),
                    &touched,
                ));
            }
            self.next_flush = now + self.flush_ms;
        }
        &self.model
    }

    /// The outcome of a decision made at `outcome.time_ms`; it arrives after the delay.
    pub fn observe(&mut self, outcome: Observation) {
        self.pending.push_back((outcome.time_ms + self.reward_delay_ms, outcome));
    }

    /// The current model.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }
}

/// Runs `config` through `world`.
pub fn run(world: &World, config: &RunConfig) -> Report {
    // Requests have their own generator, so the stream is the same whatever the policy
    // decides ([`stream`] gives it to other tools, such as the peer comparison).
    let mut requests = Rng::new(config.seed);
    let mut rng = Rng::new(config.seed ^ DRAWS_SEED);
    let mut online = Online::new(config, Arc::new(world.facts()));
    let measured_from = ((1.0 - config.measured_fraction) * config.decisions as f64) as usize;
    let mut report = Report::default();
    let mut sums = (0.0, 0.0, 0.0, 0u64, 0u64);
    for i in 0..config.decisions {
        let now = i as i64 * config.gap_ms;
        let model = online.at(now).clone();
        let request = world.request(&mut requests, now);
        let started = std::time::Instant::now();
        let policy = config.split.policy(&request.member);
        let probabilities = model.probabilities(policy, &request.cell, &request.candidates);
        let decision = pick_pair(&probabilities, &request.candidates, rng.uniform(), |video| {
            sticky_unit(&request.member, video, now, config.stickiness_ms)
        });
        report.deciding += started.elapsed();
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
        online.observe(Observation {
            request_id: format!("sim-{i}"),
            arm: arm.clone(),
            cell: request.cell.clone(),
            played,
            time_ms: now,
        });
    }
    for r in report.by_policy.values_mut() {
        r.served /= r.decisions.max(1) as f64;
        r.oracle /= r.decisions.max(1) as f64;
    }
    let n = sums.3.max(1) as f64;
    report.total = PolicyReport { decisions: sums.3, served: sums.0 / n, oracle: sums.1 / n, plays: sums.4 };
    report.uniform = sums.2 / n;
    report.versions = online.model().version();
    report
}

#[cfg(test)]
mod tests;
