//! What the model learns: per (arm, cell) discounted counts of impressions and plays,
//! and the learner that applies outcomes to them exactly once.
//!
//! Every policy is a function of these statistics (and the catalog), so one table of
//! counters is the whole learned state: it is what is saved with the consumer offsets,
//! and every policy learns from every outcome.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::context::Cell;

/// A (title, artwork) pair: what the billboard shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arm {
    /// Title.
    pub video_id: i64,
    /// Artwork of the title.
    pub artwork_id: Arc<str>,
}

impl Arm {
    /// The pair `(video_id, artwork_id)`.
    pub fn new(video_id: i64, artwork_id: &str) -> Self {
        Self { video_id, artwork_id: Arc::from(artwork_id) }
    }
}

/// Exponential discount by event time: an observation `half_life_ms` older than another
/// counts half as much. `None` keeps every observation at full weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Discount {
    half_life_ms: Option<f64>,
}

impl Discount {
    /// Discounting with `half_life_ms` (0 or less: none).
    pub fn new(half_life_ms: i64) -> Self {
        Self { half_life_ms: (half_life_ms > 0).then_some(half_life_ms as f64) }
    }

    /// The weight, at time `to_ms`, of one unit observed at `from_ms` (1 when `from_ms`
    /// is not earlier).
    pub fn factor(self, from_ms: i64, to_ms: i64) -> f64 {
        match self.half_life_ms {
            Some(h) if to_ms > from_ms => (-((to_ms - from_ms) as f64) / h).exp2(),
            _ => 1.0,
        }
    }
}

/// Discounted and raw counts of one arm in one cell.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counter {
    /// Discounted impressions, as of `at_ms`.
    pub weight: f64,
    /// Discounted plays, as of `at_ms`.
    pub reward: f64,
    /// Event time the discounted values refer to: the latest observation's.
    pub at_ms: i64,
    /// Outcomes applied, undiscounted.
    pub impressions: u64,
    /// Played outcomes applied, undiscounted.
    pub plays: u64,
}

impl Counter {
    /// Adds one outcome observed at `time_ms`. Out-of-order outcomes are discounted to
    /// the newer reference time instead of moving it back, so the result does not depend
    /// on arrival order (up to floating-point rounding).
    pub fn observe(&mut self, time_ms: i64, played: bool, discount: Discount) {
        let reward = if played { 1.0 } else { 0.0 };
        if self.impressions == 0 || time_ms >= self.at_ms {
            let f = if self.impressions == 0 { 0.0 } else { discount.factor(self.at_ms, time_ms) };
            self.weight = self.weight * f + 1.0;
            self.reward = self.reward * f + reward;
            self.at_ms = time_ms;
        } else {
            let f = discount.factor(time_ms, self.at_ms);
            self.weight += f;
            self.reward += reward * f;
        }
        self.impressions += 1;
        self.plays += u64::from(played);
    }

    /// `(weight, reward)` discounted to `to_ms`.
    pub fn at(&self, to_ms: i64, discount: Discount) -> (f64, f64) {
        let f = discount.factor(self.at_ms, to_ms);
        (self.weight * f, self.reward * f)
    }
}

/// Catalog facts about a title used for cold-start priors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TitleFacts {
    /// `movie` or `series`, when known.
    pub kind: Option<String>,
    /// Genre tokens.
    pub genres: Vec<String>,
    /// The title's launch early read from insights, when there is one.
    pub early_read: Option<EarlyRead>,
}

/// What a title did in its first hours after launch, on every canvas (insights'
/// `GetLaunchRead`): the strongest prior a title without outcomes of its own can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EarlyRead {
    /// Impressions counted since launch.
    pub impressions: u64,
    /// Plays attributed to them.
    pub plays: u64,
}

/// One reward, as the learner needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Request of the impression.
    pub request_id: String,
    /// What was shown.
    pub arm: Arm,
    /// The context the decision was made in.
    pub cell: Cell,
    /// Whether a play followed in time.
    pub played: bool,
    /// Event time of the impression.
    pub time_ms: i64,
}

impl Observation {
    /// The dedupe key: the first outcome per (request_id, video_id) wins.
    pub fn key(&self) -> (String, i64) {
        (self.request_id.clone(), self.arm.video_id)
    }
}

/// Every counter, by arm then cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statistics {
    arms: HashMap<Arm, BTreeMap<Cell, Counter>>,
}

impl Statistics {
    /// Adds one outcome.
    pub fn observe(&mut self, observation: &Observation, discount: Discount) {
        self.arms
            .entry(observation.arm.clone())
            .or_default()
            .entry(observation.cell.clone())
            .or_default()
            .observe(observation.time_ms, observation.played, discount);
    }

    /// Sets one counter (restoring saved statistics).
    pub fn insert(&mut self, arm: Arm, cell: Cell, counter: Counter) {
        self.arms.entry(arm).or_default().insert(cell, counter);
    }

    /// The counters of one arm, by cell.
    pub fn arm(&self, arm: &Arm) -> Option<&BTreeMap<Cell, Counter>> {
        self.arms.get(arm)
    }

    /// The counter of `arm` in `cell`.
    pub fn counter(&self, arm: &Arm, cell: &Cell) -> Option<&Counter> {
        self.arms.get(arm)?.get(cell)
    }

    /// Every arm with statistics.
    pub fn arms(&self) -> impl Iterator<Item = (&Arm, &BTreeMap<Cell, Counter>)> {
        self.arms.iter()
    }

    /// Every counter, in a stable order (for saving and comparing).
    pub fn sorted(&self) -> Vec<(Arm, Cell, Counter)> {
        let mut all: Vec<(Arm, Cell, Counter)> = self
            .arms
            .iter()
            .flat_map(|(arm, cells)| cells.iter().map(|(cell, c)| (arm.clone(), cell.clone(), *c)))
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }

    /// Outcomes applied, undiscounted.
    pub fn impressions(&self) -> u64 {
        self.arms.values().flat_map(|c| c.values()).map(|c| c.impressions).sum()
    }
}

/// Applies outcomes exactly once: the first outcome per (request_id, video_id) wins
/// and any later one for the same key changes nothing. In memory; the service keeps the
/// same rule durably in the database.
#[derive(Debug, Clone, Default)]
pub struct Learner {
    /// The statistics learned so far.
    pub stats: Statistics,
    seen: HashSet<(String, i64)>,
    /// Arms changed since [`Learner::take_touched`].
    touched: HashSet<Arm>,
}

impl Learner {
    /// Applies `observation` unless its key was seen; whether it was applied.
    pub fn apply(&mut self, observation: &Observation, discount: Discount) -> bool {
        if !self.seen.insert(observation.key()) {
            return false;
        }
        self.stats.observe(observation, discount);
        self.touched.insert(observation.arm.clone());
        true
    }

    /// The arms changed since the last call.
    pub fn take_touched(&mut self) -> HashSet<Arm> {
        std::mem::take(&mut self.touched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::context::Daypart;

    const HOUR: i64 = 3_600_000;

    fn cell() -> Cell {
        Cell { country: "US".into(), device: "tv".into(), daypart: Daypart::Evening }
    }

    #[test]
    fn discount_halves_after_a_half_life() {
        let d = Discount::new(HOUR);
        let mut c = Counter::default();
        c.observe(0, true, d);
        c.observe(HOUR, false, d);
        assert!((c.weight - 1.5).abs() < 1e-12);
        assert!((c.reward - 0.5).abs() < 1e-12);
        assert_eq!((c.impressions, c.plays), (2, 1));
    }

    #[test]
    fn order_does_not_matter() {
        let d = Discount::new(HOUR);
        let times = [5 * HOUR, HOUR, 3 * HOUR, 0, 2 * HOUR];
        let mut forward = Counter::default();
        let mut backward = Counter::default();
        for (i, t) in times.iter().enumerate() {
            forward.observe(*t, i % 2 == 0, d);
        }
        for (i, t) in times.iter().enumerate().rev() {
            backward.observe(*t, i % 2 == 0, d);
        }
        assert_eq!(forward.at_ms, backward.at_ms);
        assert!((forward.weight - backward.weight).abs() < 1e-12);
        assert!((forward.reward - backward.reward).abs() < 1e-12);
    }

    #[test]
    fn first_outcome_per_key_wins() {
        let d = Discount::new(0);
        let mut learner = Learner::default();
        let o = Observation {
            request_id: "r".into(),
            arm: Arm::new(1, "a"),
            cell: cell(),
            played: false,
            time_ms: 0,
        };
        assert!(learner.apply(&o, d));
        assert!(!learner.apply(&Observation { played: true, ..o.clone() }, d));
        let c = learner.stats.counter(&o.arm, &o.cell).unwrap();
        assert_eq!((c.impressions, c.plays), (1, 0));
        // Another title of the same request is another key.
        assert!(learner.apply(&Observation { arm: Arm::new(2, "a"), ..o }, d));
    }
}
