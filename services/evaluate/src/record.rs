//! Logged decisions: what one outcome says about the decision that produced it.
//!
//! An outcome of `nearline.outcomes.v1` carries the shown (title, artwork) pair, the
//! reward, and the `explore` block billboard attached to the decision: the logging
//! policy, its model version, the propensity of the pair, whether it was exploration,
//! every candidate pair and the context the policy decided in. That is everything an
//! off-policy estimate needs, so a [`Decision`] is built from one outcome alone.
//!
//! Every outcome trains the target policies (it is a reward, whatever it lacks); only
//! outcomes with a propensity, candidates and the shown pair among them can be
//! *evaluated*, and [`Decision::problem`] says why one cannot.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use nearline_billboard::policy::rng::stable_hash;
use nearline_billboard::policy::{Arm, Cell, Context, Daypart, TitleFacts};

use crate::target::Range;

/// Why a logged decision cannot be evaluated (it still trains the targets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Problem {
    /// The outcome has no `explore` block.
    NoExplore,
    /// `explore.propensity` is missing or outside (0, 1].
    NoPropensity,
    /// `explore.candidate_artworks` is empty.
    NoCandidates,
    /// The shown pair is not among the candidates.
    ShownNotCandidate,
}

impl Problem {
    /// Stable name (JSON output).
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::NoExplore => "no_explore",
            Problem::NoPropensity => "no_propensity",
            Problem::NoCandidates => "no_candidate_artworks",
            Problem::ShownNotCandidate => "shown_pair_not_a_candidate",
        }
    }

    /// What it means, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Problem::NoExplore => "the outcome has no explore block",
            Problem::NoPropensity => "explore.propensity is missing or outside (0, 1]",
            Problem::NoCandidates => "explore.candidate_artworks is empty",
            Problem::ShownNotCandidate => {
                "the shown (video_id, artwork_id) is not in explore.candidate_artworks"
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One logged decision and its reward.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Request id of the decision.
    pub request_id: String,
    /// Event time of the impression, ms since the Unix epoch.
    pub time_ms: i64,
    /// The member, as a stable hash of its id (only compared, never shown).
    pub member: u64,
    /// The context the logging policy decided in.
    pub context: Context,
    /// Index of `context`'s cell in [`Logs::cells`].
    pub cell: u32,
    /// Index of the candidate pairs in [`Logs::sets`] (adjacent per title).
    pub set: u32,
    /// The shown pair.
    pub arm: Arm,
    /// Index of the shown pair among the candidates (0 when it is not one).
    pub action: usize,
    /// Probability with which the logging policy showed it.
    pub propensity: f64,
    /// The logging policy.
    pub policy: String,
    /// Its model version.
    pub model_version: String,
    /// Whether the pick was exploration.
    pub explored: bool,
    /// 1 when a play followed within the reward window, else 0.
    pub reward: f64,
    /// Why it cannot be evaluated, if it cannot.
    pub problem: Option<Problem>,
}

/// Logged decisions in impression-time order, with the interned candidate sets and
/// cells they refer to and the catalog facts that came with them.
#[derive(Debug, Clone, Default)]
pub struct Logs {
    /// Decisions, by impression time (then request id).
    pub decisions: Vec<Decision>,
    /// Distinct candidate sets: most decisions share one, so each is stored once.
    pub sets: Vec<Arc<[Arm]>>,
    /// Distinct context cells.
    pub cells: Vec<Cell>,
    /// Kind and genres per title, from the outcomes' `title`.
    pub facts: HashMap<i64, TitleFacts>,
    /// Re-emitted outcomes ignored (the first per (request_id, video_id) wins).
    pub duplicates: u64,
}

impl Logs {
    /// The candidates of `decision`.
    pub fn candidates(&self, decision: &Decision) -> &Arc<[Arm]> {
        &self.sets[decision.set as usize]
    }

    /// The cell of `decision`.
    pub fn cell(&self, decision: &Decision) -> &Cell {
        &self.cells[decision.cell as usize]
    }

    /// Decisions in `range` that showed their member a title the member had been shown
    /// less than `stickiness_ms` before, among candidates holding several artworks of
    /// it: where billboard's sticky artwork draw repeated an earlier draw instead of
    /// drawing afresh (0 when `stickiness_ms` is 0). An upper bound: billboard's periods
    /// start at an offset seeded by the member and title, and a repeat across a period's
    /// end drew afresh.
    pub fn sticky_repeats(&self, range: Range, stickiness_ms: i64) -> u64 {
        if stickiness_ms <= 0 {
            return 0;
        }
        let mut last_shown: HashMap<(u64, i64), i64> = HashMap::new();
        let mut repeats = 0;
        for d in &self.decisions {
            let title = d.arm.video_id;
            let before = last_shown.insert((d.member, title), d.time_ms);
            let artworks = self.candidates(d).iter().filter(|a| a.video_id == title).count();
            if range.contains(d.time_ms)
                && artworks > 1
                && before.is_some_and(|t| d.time_ms.saturating_sub(t) < stickiness_ms)
            {
                repeats += 1;
            }
        }
        repeats
    }
}

/// What a decision is built from (the fields of an outcome, parsed).
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// Request id.
    pub request_id: String,
    /// The member shown the decision.
    pub member_id: String,
    /// Impression time.
    pub time_ms: i64,
    /// Context.
    pub context: Context,
    /// Candidate pairs, in the logged order.
    pub candidates: Vec<Arm>,
    /// The shown pair.
    pub arm: Arm,
    /// Propensity, when logged.
    pub propensity: Option<f64>,
    /// Logging policy.
    pub policy: String,
    /// Model version.
    pub model_version: String,
    /// Exploration flag.
    pub explored: bool,
    /// Whether a play followed.
    pub played: bool,
    /// Whether the outcome had an explore block at all.
    pub has_explore: bool,
    /// Catalog facts of the shown title, when the outcome carried them.
    pub title: Option<TitleFacts>,
}

/// Builds [`Logs`] from outcomes in any order.
#[derive(Debug, Default)]
pub struct LogsBuilder {
    logs: Logs,
    seen: HashSet<(String, i64)>,
    set_index: HashMap<Vec<Arm>, u32>,
    cell_index: HashMap<Cell, u32>,
}

impl LogsBuilder {
    /// Adds one outcome; a re-emitted one (same request id and title) is ignored.
    pub fn push(&mut self, logged: Logged) {
        if !self.seen.insert((logged.request_id.clone(), logged.arm.video_id)) {
            self.logs.duplicates += 1;
            return;
        }
        if let Some(facts) = logged.title {
            self.logs.facts.insert(logged.arm.video_id, facts);
        }
        let action = logged.candidates.iter().position(|a| *a == logged.arm);
        let problem = if !logged.has_explore {
            Some(Problem::NoExplore)
        } else if !logged.propensity.is_some_and(|p| p > 0.0 && p <= 1.0) {
            Some(Problem::NoPropensity)
        } else if logged.candidates.is_empty() {
            Some(Problem::NoCandidates)
        } else if action.is_none() {
            Some(Problem::ShownNotCandidate)
        } else {
            None
        };
        let set = self.intern_set(&logged.candidates);
        let cell = self.intern_cell(&logged.context.cell());
        self.logs.decisions.push(Decision {
            request_id: logged.request_id,
            time_ms: logged.time_ms,
            member: stable_hash(&[logged.member_id.as_bytes()]),
            context: logged.context,
            cell,
            set,
            arm: logged.arm,
            action: action.unwrap_or(0),
            propensity: logged.propensity.unwrap_or(0.0),
            policy: logged.policy,
            model_version: logged.model_version,
            explored: logged.explored,
            reward: if logged.played { 1.0 } else { 0.0 },
            problem,
        });
    }

    /// Adds the outcomes `other` was given, as if pushed here after everything so far,
    /// in the order it was given them.
    pub fn merge(&mut self, other: LogsBuilder) {
        let sets: Vec<u32> = other.logs.sets.iter().map(|set| self.intern_set(set)).collect();
        let cells: Vec<u32> = other.logs.cells.iter().map(|cell| self.intern_cell(cell)).collect();
        self.logs.duplicates += other.logs.duplicates;
        self.logs.facts.extend(other.logs.facts);
        for mut d in other.logs.decisions {
            if !self.seen.insert((d.request_id.clone(), d.arm.video_id)) {
                self.logs.duplicates += 1;
                continue;
            }
            d.set = sets[d.set as usize];
            d.cell = cells[d.cell as usize];
            self.logs.decisions.push(d);
        }
    }

    fn intern_set(&mut self, candidates: &[Arm]) -> u32 {
        if let Some(&i) = self.set_index.get(candidates) {
            return i;
        }
        let i = self.logs.sets.len() as u32;
        self.logs.sets.push(candidates.into());
        self.set_index.insert(candidates.to_vec(), i);
        i
    }

    fn intern_cell(&mut self, cell: &Cell) -> u32 {
        *self.cell_index.entry(cell.clone()).or_insert_with(|| {
            self.logs.cells.push(cell.clone());
            (self.logs.cells.len() - 1) as u32
        })
    }

    /// The logs, sorted by impression time (ties by request id, so any input order
    /// gives the same logs).
    pub fn finish(mut self) -> Logs {
        self.logs.decisions.sort_by(|a, b| {
            (a.time_ms, &a.request_id, a.arm.video_id).cmp(&(b.time_ms, &b.request_id, b.arm.video_id))
        });
        self.logs
    }
}

/// The daypart of a context, as the policies see it.
pub fn daypart(context: &Context) -> Daypart {
    context.cell().daypart
}
