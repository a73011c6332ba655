//! The bandit policies: a pure core with no I/O.
//!
//! A decision is drawn from an explicit distribution over the candidates, so the
//! propensity returned with it is its real probability:
//!
//! - [`model`]: the statistics and priors every policy reads, and each policy's
//!   distribution (Thompson's win probabilities by quadrature ([`thompson`]), the
//!   deterministic picks of UCB1 and LinUCB with ties split, ε-greedy, uniform), mixed
//!   with the exploration floor;
//! - [`decide`]: drawing the (title, artwork) pair, with the artwork drawn by a
//!   per-(member, title, period) seed so it is sticky without per-member state;
//! - [`split`]: which policy serves a member, by a hash of the member id;
//! - [`stats`]: the discounted counters and the exactly-once learner;
//! - [`linear`], [`context`], [`rng`]: the linear model, the context and buckets, and
//!   seeded randomness.

pub mod context;
pub mod decide;
pub mod linear;
pub mod model;
pub mod rng;
pub mod split;
pub mod stats;
pub mod thompson;

#[cfg(test)]
mod tests;

use std::fmt;

pub use context::{Bucket, BucketFields, Cell, Context, Daypart};
pub use decide::{Decision, pick, pick_pair, sticky_unit};
pub use model::{Model, Params};
pub use split::Split;
pub use stats::{Arm, Counter, Discount, EarlyRead, Learner, Observation, Statistics, TitleFacts};

/// The policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// Beta-Bernoulli Thompson sampling per context bucket.
    Thompson,
    /// LinUCB over the context's features, per arm.
    Linear,
    /// ε-greedy on the bucket posterior means.
    EpsilonGreedy,
    /// UCB1 per context bucket.
    Ucb1,
    /// Uniformly random: keeps replay evaluation valid.
    Uniform,
}

impl PolicyKind {
    /// Every policy, in a fixed order (the traffic split's order).
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Thompson,
        PolicyKind::Linear,
        PolicyKind::EpsilonGreedy,
        PolicyKind::Ucb1,
        PolicyKind::Uniform,
    ];

    /// Stable name (configuration, API, `explore.policy`).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Thompson => "thompson",
            PolicyKind::Linear => "linucb",
            PolicyKind::EpsilonGreedy => "epsilon_greedy",
            PolicyKind::Ucb1 => "ucb1",
            PolicyKind::Uniform => "uniform",
        }
    }

    /// The policy named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        PolicyKind::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy's distribution over the candidates of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilities {
    /// Probability of each candidate; sums to 1.
    pub probs: Vec<f64>,
    /// The policy's best guess (highest estimated take rate; ties all count): a pick
    /// outside it is exploration.
    pub best: Vec<bool>,
}
