//! Walking a target policy through the logs as it would have run online.
//!
//! Online, every billboard policy learns from every outcome, and an outcome reaches the
//! model only once attribution emits it: after the reward window and its grace have
//! passed since the impression. So before each logged decision the target has learned
//! exactly the outcomes whose impressions are at least `reward_delay` older, and its
//! model is rebuilt at most every `rebuild_every` of event time (billboard rebuilds on
//! each `flush_interval`). The target's distribution over the logged candidates is
//! then computed by billboard's own policy core.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nearline_billboard::policy::{Arm, Model, Observation, Params, PolicyKind, Statistics, TitleFacts};

use crate::record::{Decision, Logs};
use crate::spec::{Target, TargetKind};
use crate::{Error, Result};

/// How the target learns along the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Training {
    /// An outcome is known this long after its impression (reward window + grace).
    pub reward_delay_ms: i64,
    /// The model is rebuilt at most this often (event time).
    pub rebuild_every_ms: i64,
}

impl Default for Training {
    /// Attribution's default 15-minute window plus 2 minutes' grace; a rebuild per
    /// simulated minute, as billboard's simulator does.
    fn default() -> Self {
        Self { reward_delay_ms: 17 * 60_000, rebuild_every_ms: 60_000 }
    }
}

/// The event-time range decisions are evaluated in: `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Inclusive start.
    pub from_ms: i64,
    /// Exclusive end.
    pub to_ms: i64,
}

impl Range {
    /// Whether `time_ms` is in the range.
    pub fn contains(&self, time_ms: i64) -> bool {
        (self.from_ms..self.to_ms).contains(&time_ms)
    }
}

/// The target's distribution at one decision, or `None` for `logging` (the logged
/// action with probability equal to its propensity, weight 1).
pub type TargetProbs<'a> = Option<&'a [f64]>;

/// Rebuilds per unit of parallel work. Fixed (not derived from the thread count), so the
/// sequence of model builds, and with it every number, is the same on any machine.
const REBUILDS_PER_CHUNK: usize = 32;

/// The walk's result: model versions built and `per`'s value for each evaluated
/// decision, with its index, in time order.
pub type Walked<T> = (u64, Vec<(usize, T)>);

/// Walks the target through `logs` and returns `per(index, probabilities)` for each
/// evaluable decision in `range`, in time order, with the target's probability of each
/// of the decision's candidates, and the number of model versions built.
///
/// Which decisions the model learned before each rebuild depends on the logged times
/// alone, so the rebuilds are planned first and then run in chunks on every core: a
/// chunk starts from the statistics of everything learned before it and a model built
/// afresh, then rebuilds as the sequential walk would. `per` runs on those threads.
pub fn walk<T: Send>(
    logs: &Logs,
    target: &Target,
    training: Training,
    range: Range,
    per: impl Fn(usize, TargetProbs<'_>) -> T + Sync,
) -> Result<Walked<T>> {
    let evaluable = |d: &Decision| range.contains(d.time_ms) && d.problem.is_none();
    let Some(policy) = target.policy() else {
        let out =
            logs.decisions.iter().enumerate().filter(|(_, d)| evaluable(d)).map(|(i, _)| (i, per(i, None)));
        return Ok((0, out.collect()));
    };
    let end = logs.decisions.partition_point(|d| d.time_ms < range.to_ms);
    let facts = Arc::new(logs.facts.clone());
    let walker = Walker { logs, params: target.params, policy, facts, evaluable: &evaluable, per: &per };
    if let TargetKind::Snapshot { version, .. } = &target.kind {
        let first = logs.decisions.iter().find(|d| d.model_version == *version).ok_or_else(|| {
            Error::Unsupported(format!("snapshot: no logged decision has model_version {version:?}"))
        })?;
        let mut learner = Learned::default();
        learner.advance(logs, learnable(logs, training, first.time_ms), target.params);
        let model = Model::build(target.params, 0, &learner.stats, walker.facts.clone());
        let mut out = Vec::new();
        walker.decide(&model, 0..end, &mut HashMap::new(), &mut out);
        return Ok((1, out));
    }
    let plan = plan(logs, training, end);
    let chunks = plan.chunks(REBUILDS_PER_CHUNK).count() + 1;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(chunks);
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Vec<(usize, T)>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut learner = Learned::default();
                    let mut mine = Vec::new();
                    loop {
                        // Chunks are claimed in increasing order, so a worker's
                        // statistics only ever move forward.
                        let chunk = next.fetch_add(1, Ordering::Relaxed);
                        if chunk >= chunks {
                            return mine;
                        }
                        mine.push((chunk, walker.chunk(&plan, chunk, end, &mut learner)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("walk worker")).collect()
    });
    done.sort_by_key(|(chunk, _)| *chunk);
    let out = done.into_iter().flat_map(|(_, rows)| rows).collect();
    Ok((plan.len() as u64 + 1, out))
}

/// One rebuild of the sequential walk: before the decision at `at`, with the first
/// `learned` decisions known.
#[derive(Debug, Clone, Copy)]
struct Rebuild {
    at: usize,
    learned: usize,
}

/// How many decisions (a prefix, in time order) are known at `now`: their reward delay
/// has passed.
fn learnable(logs: &Logs, training: Training, now: i64) -> usize {
    logs.decisions.partition_point(|d| d.time_ms.saturating_add(training.reward_delay_ms) <= now)
}

/// The rebuilds of the walk over the first `end` decisions: at a decision, when
/// something was learned since the last rebuild and at least `rebuild_every` passed.
fn plan(logs: &Logs, training: Training, end: usize) -> Vec<Rebuild> {
    let mut out = Vec::new();
    let (mut learned, mut last_rebuild, mut built_with) = (0usize, i64::MIN, 0usize);
    for (i, d) in logs.decisions[..end].iter().enumerate() {
        while logs
            .decisions
            .get(learned)
            .is_some_and(|l| l.time_ms.saturating_add(training.reward_delay_ms) <= d.time_ms)
        {
            learned += 1;
        }
        if learned > built_with && d.time_ms.saturating_sub(last_rebuild) >= training.rebuild_every_ms {
            out.push(Rebuild { at: i, learned });
            built_with = learned;
            last_rebuild = d.time_ms;
        }
    }
    out
}

/// Statistics of a prefix of the logs, and the arms it touched since last asked.
#[derive(Debug, Default)]
struct Learned {
    stats: Statistics,
    count: usize,
    touched: HashSet<Arm>,
}

impl Learned {
    /// Learns the decisions up to `upto` (exclusive).
    fn advance(&mut self, logs: &Logs, upto: usize, params: Params) {
        for d in &logs.decisions[self.count.min(upto)..upto] {
            self.stats.observe(
                &Observation {
                    request_id: String::new(),
                    arm: d.arm.clone(),
                    cell: logs.cell(d).clone(),
                    played: d.reward > 0.0,
                    time_ms: d.time_ms,
                },
                params.discount,
            );
            self.touched.insert(d.arm.clone());
        }
        self.count = self.count.max(upto);
    }
}

/// What every chunk of the walk shares.
struct Walker<'a, F, P> {
    logs: &'a Logs,
    params: Params,
    policy: PolicyKind,
    facts: Arc<HashMap<i64, TitleFacts>>,
    evaluable: &'a F,
    per: &'a P,
}

impl<F, P> Walker<'_, F, P>
where
    F: Fn(&Decision) -> bool,
{
    /// `per` of the evaluable decisions of `decisions` under `model`. Distributions are
    /// reused while the (candidates, cell) stay the same: deterministic in both, and
    /// decisions between two rebuilds share a few cells.
    fn decide<T>(
        &self,
        model: &Model,
        decisions: std::ops::Range<usize>,
        cache: &mut HashMap<(u32, u32), Vec<f64>>,
        out: &mut Vec<(usize, T)>,
    ) where
        P: Fn(usize, TargetProbs<'_>) -> T,
    {
        for i in decisions {
            let d = &self.logs.decisions[i];
            if !(self.evaluable)(d) {
                continue;
            }
            let probs = cache.entry((d.set, d.cell)).or_insert_with(|| {
                model.probabilities(self.policy, self.logs.cell(d), self.logs.candidates(d)).probs
            });
            out.push((i, (self.per)(i, Some(probs.as_slice()))));
        }
    }

    /// Chunk `chunk` of the plan: the decisions from its first rebuild to the next
    /// chunk's (chunk 0 also covers those before any rebuild, under the cold model).
    fn chunk<T>(&self, plan: &[Rebuild], chunk: usize, end: usize, learner: &mut Learned) -> Vec<(usize, T)>
    where
        P: Fn(usize, TargetProbs<'_>) -> T,
    {
        let mut out = Vec::new();
        let mut cache = HashMap::new();
        // Chunk 0 is the cold model's stretch; chunk k ≥ 1 holds rebuilds
        // (k−1)·R .. k·R, versions numbered from 1 as the sequential walk numbers them.
        if chunk == 0 {
            let stop = plan.first().map_or(end, |r| r.at);
            let model = Model::build(self.params, 0, &learner.stats, self.facts.clone());
            self.decide(&model, 0..stop, &mut cache, &mut out);
            return out;
        }
        let first = (chunk - 1) * REBUILDS_PER_CHUNK;
        let rebuilds = &plan[first..(first + REBUILDS_PER_CHUNK).min(plan.len())];
        let mut model: Option<Model> = None;
        for (k, r) in rebuilds.iter().enumerate() {
            learner.advance(self.logs, r.learned, self.params);
            let version = (first + k + 1) as u64;
            let touched = std::mem::take(&mut learner.touched);
            model = Some(match &model {
                None => Model::build(self.params, version, &learner.stats, self.facts.clone()),
                Some(previous) => Model::rebuild(
                    Some(previous),
                    self.params,
                    version,
                    &learner.stats,
                    self.facts.clone(),
                    &touched,
                ),
            });
            cache.clear();
            let stop = plan.get(first + k + 1).map_or(end, |next| next.at);
            self.decide(model.as_ref().expect("just built"), r.at..stop, &mut cache, &mut out);
        }
        out
    }
}
