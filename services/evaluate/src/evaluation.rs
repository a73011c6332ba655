//! One evaluation: a target walked through the logs, every decision's term, and the
//! estimates overall and per slice.

use std::collections::BTreeMap;

use nearline_billboard::policy::{Params, PolicyKind};

use crate::direct::DirectModel;
use crate::estimate::{self, Bootstrap, Estimator, ReplayData, Term, TermInput};
use crate::record::{Decision, Logs, Problem};
use crate::report::{EstimateReport, Report, SliceReport};
use crate::spec::{Target, TargetKind};
use crate::target::{self, Range, TargetProbs, Training};
use crate::{Error, Result};

/// A context field decisions can be sliced by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SliceField {
    /// Country.
    Country,
    /// Device.
    Device,
    /// Daypart of the local hour.
    Daypart,
    /// The logging policy.
    Policy,
}

impl SliceField {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            SliceField::Country => "country",
            SliceField::Device => "device",
            SliceField::Daypart => "daypart",
            SliceField::Policy => "policy",
        }
    }

    /// Parses `country,device,...`.
    pub fn parse_list(text: &str) -> std::result::Result<Vec<SliceField>, String> {
        let all = [SliceField::Country, SliceField::Device, SliceField::Daypart, SliceField::Policy];
        let mut out = Vec::new();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let f = all
                .into_iter()
                .find(|f| f.as_str() == name)
                .ok_or_else(|| format!("unknown slice field `{name}` (country, device, daypart, policy)"))?;
            if !out.contains(&f) {
                out.push(f);
            }
        }
        Ok(out)
    }

    fn value(self, logs: &Logs, d: &Decision) -> String {
        match self {
            SliceField::Country => d.context.country.to_string(),
            SliceField::Device => d.context.device.to_string(),
            SliceField::Daypart => logs.cell(d).daypart.to_string(),
            SliceField::Policy => d.policy.clone(),
        }
    }
}

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Which estimators.
    pub estimators: Vec<Estimator>,
    /// Intervals.
    pub bootstrap: Bootstrap,
    /// Clip weights at this value, when given.
    pub clip: Option<f64>,
    /// Slice by these fields (besides overall).
    pub by: Vec<SliceField>,
    /// How the target learns along the logs.
    pub training: Training,
    /// Decisions evaluated.
    pub range: Range,
    /// Parameters of the direct reward model (billboard's configured ones).
    pub direct_params: Params,
    /// The logging billboard's artwork stickiness (`billboard.artwork_stickiness`), to
    /// count the decisions whose artwork repeated an earlier draw (0: none did).
    pub stickiness_ms: i64,
}

/// Evaluates `target` on `logs`.
pub fn evaluate(logs: &Logs, target: &Target, options: &Options) -> Result<Report> {
    evaluate_with(logs, target, options, |_, _| ()).map(|(report, _)| report)
}

/// Evaluates `target` on `logs`, and returns `visit(index, probabilities)` of each
/// evaluated decision (in time order, with its index) besides the report: it sees the
/// target's distribution there (tests compute the truth from it). `visit` runs on the
/// walk's threads.
pub fn evaluate_with<V: Send>(
    logs: &Logs,
    target: &Target,
    options: &Options,
    visit: impl Fn(usize, TargetProbs<'_>) -> V + Sync,
) -> Result<(Report, Vec<(usize, V)>)> {
    let range = options.range;
    check_range(logs, range)?;
    let in_range = || logs.decisions.iter().filter(|d| range.contains(d.time_ms));
    let min_of = |uniform_only: bool| {
        in_range()
            .filter(|d| !uniform_only || d.policy == "uniform")
            .map(|d| d.propensity)
            .fold(f64::INFINITY, f64::min)
    };
    let (c_uniform, c_all) = (min_of(true), min_of(false));
    let direct =
        options.estimators.contains(&Estimator::Dr).then(|| DirectModel::fit(logs, options.direct_params));
    let seed = options.bootstrap.seed;
    let (versions, walked) = target::walk(logs, target, options.training, range, |i, probs| {
        let d = &logs.decisions[i];
        let q = direct.as_ref().map(|m| m.predict(logs, i));
        let q_logged = q.map_or(0.0, |q| q[d.action]);
        let (draw_u, coin) = estimate::replay_uniforms(seed, &d.request_id, d.arm.video_id);
        let (weight, direct_value, drawn, deterministic) = match probs {
            None => (1.0, q_logged, d.action, true),
            Some(p) => {
                let direct_value = q.map_or(0.0, |q| p.iter().zip(q).map(|(a, b)| a * b).sum());
                let deterministic = p.iter().copied().fold(0.0, f64::max) >= 1.0 - 1e-9;
                (p[d.action] / d.propensity, direct_value, draw(p, draw_u), deterministic)
            }
        };
        let matched = drawn == d.action;
        let uniform_slice = d.policy == "uniform";
        let input = TermInput {
            weight,
            reward: d.reward,
            direct: direct_value,
            direct_logged: q_logged,
            uniform_slice,
            accept_uniform: uniform_slice && matched && coin < c_uniform / d.propensity,
            accept_all: matched && coin < c_all / d.propensity,
        };
        (Term::new(input, options.clip), weight, deterministic, visit(i, probs))
    })?;
    let deterministic = walked.iter().all(|(_, (_, _, det, _))| *det);
    let mut terms: Vec<Term> = Vec::with_capacity(walked.len());
    let mut raw_weights: Vec<f64> = Vec::with_capacity(walked.len());
    let mut evaluated: Vec<u32> = Vec::with_capacity(walked.len());
    let mut visited = Vec::with_capacity(walked.len());
    for (i, (term, weight, _, v)) in walked {
        terms.push(term);
        raw_weights.push(weight);
        evaluated.push(i as u32);
        visited.push((i, v));
    }
    let replay =
        if deterministic || target.policy().is_none() { ReplayData::All } else { ReplayData::UniformSlice };
    let all: Vec<u32> = (0..terms.len() as u32).collect();
    let summary = |indices: &[u32], salt: u64| {
        estimate::summarise(
            &terms,
            &raw_weights,
            indices,
            &options.estimators,
            replay,
            options.bootstrap,
            salt,
        )
    };
    let overall = SliceReport::new(BTreeMap::new(), summary(&all, 0));
    let mut slices = Vec::new();
    if !options.by.is_empty() {
        let keys = evaluated.iter().map(|&i| {
            let d = &logs.decisions[i as usize];
            options.by.iter().map(|f| f.value(logs, d)).collect::<Vec<String>>()
        });
        for (key, indices) in estimate::slices(keys) {
            let salt = nearline_billboard::policy::rng::stable_hash(
                &key.iter().map(|k| k.as_bytes()).collect::<Vec<_>>(),
            );
            let names = options.by.iter().map(|f| f.as_str().to_string()).zip(key).collect();
            slices.push(SliceReport::new(names, summary(&indices, salt)));
        }
    }
    let outcomes = logs.decisions.len() as u64;
    let sticky_repeats = logs.sticky_repeats(range, options.stickiness_ms);
    let warnings = sticky_warning(target, sticky_repeats, terms.len()).into_iter().collect();
    let report = Report {
        target: target.spec.clone(),
        from_ms: range.from_ms,
        to_ms: range.to_ms,
        outcomes_read: outcomes + logs.duplicates,
        duplicates_ignored: logs.duplicates,
        reward_delay_ms: options.training.reward_delay_ms,
        rebuild_every_ms: options.training.rebuild_every_ms,
        model_versions: versions,
        bootstrap: options.bootstrap.resamples,
        seed,
        confidence: 0.95,
        clip: options.clip,
        replay_data: replay.as_str(),
        sticky_repeats,
        warnings,
        overall,
        slices,
    };
    Ok((report, visited))
}

/// The warning for a target that learns along logs where billboard's artwork
/// stickiness repeated earlier draws (`repeats` of `evaluated` decisions), if any.
///
/// A repeated draw is not independent of the member's earlier impression of the title,
/// which the target learned from, so the logged (marginal) propensity is not the
/// draw's probability given what the target knew. Measured on simulated Thompson logs
/// (the crate's README, "Tests"), this biases targets that learn each arm within its
/// own context bucket from few outcomes; a fixed target (`uniform`, `logging`, a
/// snapshot) does not learn from the member and is not affected.
fn sticky_warning(target: &Target, repeats: u64, evaluated: usize) -> Option<String> {
    let learns = matches!(target.policy(), Some(p) if p != PolicyKind::Uniform)
        && !matches!(target.kind, TargetKind::Snapshot { .. });
    (learns && repeats > 0).then(|| {
        format!(
            "{repeats} of {evaluated} evaluated decisions ({:.1} %) showed a member a title again within \
             billboard's artwork stickiness, so their artwork repeated an earlier draw: a target that learns \
             along the logs, most one that learns each arm within its own context bucket from few outcomes \
             (epsilon_greedy, ucb1), may be estimated with a bias; a fixed target (uniform, logging, \
             snapshot) is not affected (services/evaluate/README.md, \"Tests\")",
            100.0 * repeats as f64 / evaluated.max(1) as f64
        )
    })
}

/// Fails when the range holds no decision, or decisions that cannot be evaluated
/// (dropping them would bias every estimate).
fn check_range(logs: &Logs, range: Range) -> Result<()> {
    let in_range: Vec<&Decision> = logs.decisions.iter().filter(|d| range.contains(d.time_ms)).collect();
    if in_range.is_empty() {
        let span = match (logs.decisions.first(), logs.decisions.last()) {
            (Some(a), Some(b)) => {
                format!("; the {} outcome(s) read span {} to {}", logs.decisions.len(), a.time_ms, b.time_ms)
            }
            _ => "; no outcome was read at all".to_string(),
        };
        return Err(Error::Unsupported(format!(
            "no logged decision between {} and {} (impression time, ms){span}",
            range.from_ms, range.to_ms
        )));
    }
    let mut problems: BTreeMap<Problem, (u64, &str)> = BTreeMap::new();
    for d in &in_range {
        if let Some(p) = d.problem {
            problems.entry(p).or_insert((0, &d.request_id)).0 += 1;
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let total: u64 = problems.values().map(|(n, _)| n).sum();
    let detail: Vec<String> = problems
        .iter()
        .map(|(p, (n, first))| format!("{n} where {} (first: request_id {first})", p.describe()))
        .collect();
    let all = if total == in_range.len() as u64 { " (all of them)" } else { "" };
    Err(Error::Unsupported(format!(
        "{total} of {} logged decisions in the range cannot be evaluated{all}: {}; off-policy estimates need every decision's propensity and candidates",
        in_range.len(),
        detail.join("; ")
    )))
}

/// Summaries to report rows.
impl SliceReport {
    fn new(slice: BTreeMap<String, String>, s: estimate::Summary) -> Self {
        SliceReport {
            slice,
            decisions: s.decisions,
            logged_take_rate: s.logged_take_rate,
            effective_sample_size: s.effective_sample_size,
            max_weight: s.max_weight,
            clipped_weights: s.clipped_weights,
            estimates: s
                .estimates
                .into_iter()
                .map(|e| EstimateReport {
                    estimator: e.estimator.as_str(),
                    value: e.value.as_ref().ok().copied(),
                    low: e.interval.map(|i| i.0),
                    high: e.interval.map(|i| i.1),
                    accepted: e.replay_counts.map(|c| c.0),
                    eligible: e.replay_counts.map(|c| c.1),
                    error: e.value.err(),
                })
                .collect(),
        }
    }
}

/// The candidate the uniform `u` picks from `probs` (inverse CDF; the last candidate with
/// positive probability when rounding leaves `u` past the total), as billboard draws.
fn draw(probs: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    let mut last = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p <= 0.0 {
            continue;
        }
        acc += p;
        last = i;
        if u < acc {
            return i;
        }
    }
    last
}
