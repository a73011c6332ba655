//! Walking a target policy through the logs as it would have run online.
//!
//! Online, every billboard policy learns from every outcome, and an outcome reaches the
//! model only once attribution emits it: after the reward window and its grace have
//! passed since the impression. So before each logged decision the target has learned
//! exactly the outcomes whose impressions are at least `reward_delay` older, and its
//! model is rebuilt at most every `rebuild_every` of event time (billboard rebuilds on
//! each `flush_interval`). The target's distribution over the logged candidates is
//! then computed by billboard's own policy core.

use std::collections::HashMap;
use std::sync::Arc;

use nearline_billboard::policy::{Arm, Model, Observation, Statistics};

use crate::record::Logs;
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

/// Calls `visit(index, probabilities)` for each evaluable decision in `range`, in time
/// order, with the target's probability of each of the decision's candidates.
/// Returns the number of model versions built.
pub fn walk(
    logs: &Logs,
    target: &Target,
    training: Training,
    range: Range,
    mut visit: impl FnMut(usize, TargetProbs<'_>),
) -> Result<u64> {
    let Some(policy) = target.policy() else {
        for (i, d) in logs.decisions.iter().enumerate() {
            if range.contains(d.time_ms) && d.problem.is_none() {
                visit(i, None);
            }
        }
        return Ok(0);
    };
    let params = target.params;
    let facts = Arc::new(logs.facts.clone());
    let mut stats = Statistics::default();
    let mut learned = 0usize;
    let mut learn_until = |stats: &mut Statistics, now: i64, touched: &mut Vec<Arm>| {
        while let Some(d) = logs.decisions.get(learned) {
            if d.time_ms.saturating_add(training.reward_delay_ms) > now {
                break;
            }
            stats.observe(
                &Observation {
                    request_id: String::new(),
                    arm: d.arm.clone(),
                    cell: logs.cell(d).clone(),
                    played: d.reward > 0.0,
                    time_ms: d.time_ms,
                },
                params.discount,
            );
            touched.push(d.arm.clone());
            learned += 1;
        }
    };
    let mut touched = Vec::new();
    let frozen = match &target.kind {
        TargetKind::Snapshot { version, .. } => {
            let first = logs.decisions.iter().find(|d| d.model_version == *version).ok_or_else(|| {
                Error::Unsupported(format!("snapshot: no logged decision has model_version {version:?}"))
            })?;
            learn_until(&mut stats, first.time_ms, &mut touched);
            true
        }
        _ => false,
    };
    let mut model = Model::build(params, 0, &stats, facts.clone());
    let mut last_rebuild = i64::MIN;
    let mut versions = 1u64;
    // Distributions are reused while the model and the (set, cell) stay the same:
    // deterministic in both, and most decisions of a minute share a few cells.
    let mut cache: HashMap<(u32, u32), Vec<f64>> = HashMap::new();
    for (i, d) in logs.decisions.iter().enumerate() {
        if d.time_ms >= range.to_ms {
            break;
        }
        if !frozen {
            learn_until(&mut stats, d.time_ms, &mut touched);
            if !touched.is_empty() && d.time_ms.saturating_sub(last_rebuild) >= training.rebuild_every_ms {
                let changed = touched.drain(..).collect();
                model = Model::rebuild(Some(&model), params, versions, &stats, facts.clone(), &changed);
                versions += 1;
                last_rebuild = d.time_ms;
                cache.clear();
            }
        }
        if !range.contains(d.time_ms) || d.problem.is_some() {
            continue;
        }
        let probs = cache
            .entry((d.set, d.cell))
            .or_insert_with(|| model.probabilities(policy, logs.cell(d), logs.candidates(d)).probs);
        visit(i, Some(probs));
    }
    Ok(versions)
}
