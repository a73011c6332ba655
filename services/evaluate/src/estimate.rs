//! The estimators and their bootstrap intervals.
//!
//! Each evaluated decision `i` (logged action `aᵢ` with propensity `μᵢ`, reward `rᵢ`,
//! target distribution `πᵢ`, out-of-fold reward model `q̂ᵢ`) contributes one term:
//! the weight `wᵢ = πᵢ(aᵢ)/μᵢ` (clipped at `W` only with `--clip W`), `wᵢrᵢ`, and the
//! doubly robust term `Σₐ πᵢ(a)q̂ᵢ(a) + wᵢ(rᵢ − q̂ᵢ(aᵢ))`. Then over `n` terms:
//!
//! - IPS `Σ wr / n`; SNIPS `Σ wr / Σ w`; DR `Σ dr / n`;
//! - replay: rejection sampling. A decision is accepted when the target, drawn with a
//!   seeded uniform, picks the logged action and a second seeded uniform falls below
//!   `c/μᵢ` (`c` the smallest propensity of the data replayed), so accepted decisions
//!   are an unbiased sample of the target's behaviour; the estimate is their mean
//!   reward. On the uniform-random slice (`c/μ = 1` with a fixed candidate count) this
//!   is Li et al.'s replay; for a deterministic target it runs on all data.
//!
//! Intervals are BCa ([`crate::interval`]) over a bootstrap of the decisions (the
//! Poisson bootstrap of [`crate::resample`] from [`POISSON_FROM`] decisions on, the
//! multinomial one below), each resample seeded by the run's seed and its own number,
//! so they are the same on any number of threads.

use std::collections::BTreeMap;

use nearline_billboard::policy::rng::{Rng, mix64, stable_hash, unit};

use crate::interval;

/// An estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Estimator {
    /// Rejection-sampling replay.
    Replay,
    /// Inverse propensity scoring.
    Ips,
    /// Self-normalised IPS.
    Snips,
    /// Doubly robust with an out-of-fold direct model.
    Dr,
}

impl Estimator {
    /// Every estimator, in output order.
    pub const ALL: [Estimator; 4] = [Estimator::Replay, Estimator::Ips, Estimator::Snips, Estimator::Dr];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Estimator::Replay => "replay",
            Estimator::Ips => "ips",
            Estimator::Snips => "snips",
            Estimator::Dr => "dr",
        }
    }

    /// Parses a comma-separated list (`replay,ips,snips,dr`).
    pub fn parse_list(text: &str) -> Result<Vec<Estimator>, String> {
        let mut out = Vec::new();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let e = Estimator::ALL
                .into_iter()
                .find(|e| e.as_str() == name)
                .ok_or_else(|| format!("unknown estimator `{name}` (replay, ips, snips, dr)"))?;
            if !out.contains(&e) {
                out.push(e);
            }
        }
        if out.is_empty() {
            return Err("no estimator given (replay, ips, snips, dr)".into());
        }
        out.sort();
        Ok(out)
    }
}

const REWARD: u8 = 1;
const ACCEPT_UNIFORM: u8 = 2;
const ACCEPT_ALL: u8 = 4;
const UNIFORM_SLICE: u8 = 8;

/// One decision's contribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Term {
    /// `w·r`.
    pub wr: f64,
    /// `w` (clipped when asked).
    pub w: f64,
    /// The doubly robust term.
    pub dr: f64,
    flags: u8,
}

/// Which data replay runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayData {
    /// Decisions logged by the `uniform` policy.
    UniformSlice,
    /// Every decision (the target is deterministic).
    All,
}

impl ReplayData {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplayData::UniformSlice => "uniform_slice",
            ReplayData::All => "all_decisions",
        }
    }

    fn accept_flag(self) -> u8 {
        match self {
            ReplayData::UniformSlice => ACCEPT_UNIFORM,
            ReplayData::All => ACCEPT_ALL,
        }
    }
}

/// Inputs of one term.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TermInput {
    /// `π(a)/μ`, unclipped.
    pub weight: f64,
    /// Reward.
    pub reward: f64,
    /// `Σₐ π(a) q̂(a)`.
    pub direct: f64,
    /// `q̂` of the logged action.
    pub direct_logged: f64,
    /// Logged by the uniform policy.
    pub uniform_slice: bool,
    /// Accepted by replay on the uniform slice.
    pub accept_uniform: bool,
    /// Accepted by replay on all data.
    pub accept_all: bool,
}

impl Term {
    /// The term, with its weight clipped at `clip` when given.
    pub fn new(input: TermInput, clip: Option<f64>) -> Self {
        let w = clip.map_or(input.weight, |c| input.weight.min(c));
        let mut flags = 0;
        for (set, flag) in [
            (input.reward > 0.0, REWARD),
            (input.accept_uniform, ACCEPT_UNIFORM),
            (input.accept_all, ACCEPT_ALL),
            (input.uniform_slice, UNIFORM_SLICE),
        ] {
            if set {
                flags |= flag;
            }
        }
        Term { wr: w * input.reward, w, dr: input.direct + w * (input.reward - input.direct_logged), flags }
    }

    fn reward(&self) -> f64 {
        if self.flags & REWARD != 0 { 1.0 } else { 0.0 }
    }
}

/// Seeded uniforms of the replay draws of one decision.
pub fn replay_uniforms(seed: u64, request_id: &str, video_id: i64) -> (f64, f64) {
    let h = stable_hash(&[request_id.as_bytes(), &video_id.to_le_bytes(), &seed.to_le_bytes()]);
    (unit(mix64(h ^ 0x7265_706c_6179)), unit(mix64(h ^ 0x6163_6365_7074)))
}

/// Sums every estimator reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sums {
    n: f64,
    wr: f64,
    w: f64,
    dr: f64,
    accepted: f64,
    accepted_reward: f64,
}

impl Sums {
    #[inline]
    fn add(&mut self, t: &Term, accept: u8) {
        self.n += 1.0;
        self.wr += t.wr;
        self.w += t.w;
        self.dr += t.dr;
        if t.flags & accept != 0 {
            self.accepted += 1.0;
            self.accepted_reward += t.reward();
        }
    }

    /// Adds a decision's own sums but its count (a resample of `n` draws knows it).
    #[inline]
    fn add_unit(&mut self, u: &Sums) {
        self.wr += u.wr;
        self.w += u.w;
        self.dr += u.dr;
        self.accepted += u.accepted;
        self.accepted_reward += u.accepted_reward;
    }

    fn value(&self, e: Estimator) -> Option<f64> {
        let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        match e {
            Estimator::Replay => ratio(self.accepted_reward, self.accepted),
            Estimator::Ips => ratio(self.wr, self.n),
            Estimator::Snips => ratio(self.wr, self.w),
            Estimator::Dr => ratio(self.dr, self.n),
        }
    }
}

/// One estimate with its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Which estimator.
    pub estimator: Estimator,
    /// Point estimate, or why there is none.
    pub value: Result<f64, String>,
    /// The 95 % BCa bootstrap interval (`None` without bootstrap).
    pub interval: Option<(f64, f64)>,
    /// Replay only: decisions accepted and eligible.
    pub replay_counts: Option<(u64, u64)>,
}

/// What one slice's terms say.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Decisions.
    pub decisions: u64,
    /// Mean logged reward.
    pub logged_take_rate: f64,
    /// `(Σw)² / Σw²`.
    pub effective_sample_size: f64,
    /// Largest weight, before clipping.
    pub max_weight: f64,
    /// Weights that clipping lowered.
    pub clipped_weights: u64,
    /// One per requested estimator.
    pub estimates: Vec<Estimate>,
}

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    /// Resamples (0: no intervals).
    pub resamples: usize,
    /// Seed.
    pub seed: u64,
}

/// Summarises the terms `indices` of `terms` (`raw_weights` are the unclipped ones).
pub fn summarise(
    terms: &[Term],
    raw_weights: &[f64],
    indices: &[u32],
    estimators: &[Estimator],
    replay: ReplayData,
    bootstrap: Bootstrap,
    salt: u64,
) -> Summary {
    let accept = replay.accept_flag();
    let mut sums = Sums::default();
    let (mut w2, mut max_weight, mut clipped, mut rewards, mut eligible) = (0.0, 0.0f64, 0u64, 0.0, 0u64);
    for &i in indices {
        let t = &terms[i as usize];
        sums.add(t, accept);
        w2 += t.w * t.w;
        let raw = raw_weights[i as usize];
        max_weight = max_weight.max(raw);
        clipped += u64::from(raw > t.w);
        rewards += t.reward();
        eligible += u64::from(replay == ReplayData::All || t.flags & UNIFORM_SLICE != 0);
    }
    let n = indices.len();
    // Each decision's sums, in order: what the bootstrap resamples and the jackknife
    // leaves out.
    let units: Vec<Sums> = indices
        .iter()
        .map(|&i| {
            let mut s = Sums::default();
            s.add(&terms[i as usize], accept);
            s
        })
        .collect();
    let resampled = resample(&units, estimators, bootstrap, salt);
    let estimates = estimators
        .iter()
        .enumerate()
        .map(|(k, &e)| {
            let value = if n == 0 {
                Err("no decision".to_string())
            } else if e == Estimator::Replay && eligible == 0 {
                Err(match replay {
                    ReplayData::UniformSlice => {
                        "no decision was logged by the uniform policy, and the target is not deterministic"
                            .to_string()
                    }
                    ReplayData::All => "no decision to replay".to_string(),
                })
            } else if e == Estimator::Replay && sums.accepted == 0.0 {
                Err(format!("none of {eligible} eligible decisions was accepted (the target never picked the logged pair)"))
            } else if e != Estimator::Replay && sums.w == 0.0 {
                Err("no overlap: the target gives probability 0 to every logged pair".to_string())
            } else {
                sums.value(e).ok_or_else(|| "undefined".to_string())
            };
            let interval = match (&value, &resampled) {
                (Ok(v), Some(r)) => interval::bca(&r[k], *v, jackknife(&units, &sums, e)),
                _ => None,
            };
            Estimate {
                estimator: e,
                interval: if value.is_ok() { interval } else { None },
                replay_counts: (e == Estimator::Replay).then_some((sums.accepted as u64, eligible)),
                value,
            }
        })
        .collect();
    Summary {
        decisions: n as u64,
        logged_take_rate: if n > 0 { rewards / n as f64 } else { 0.0 },
        effective_sample_size: if w2 > 0.0 { sums.w * sums.w / w2 } else { 0.0 },
        max_weight,
        clipped_weights: clipped,
        estimates,
    }
}

/// One summed field of [`Sums`].
type Column = fn(&Sums) -> f64;

/// From this many decisions on, the bootstrap is the Poisson one ([`crate::resample`]);
/// below, the classical multinomial one. The Poisson bootstrap approximates the
/// multinomial (its resample size is random, an effect that vanishes as `1/n`) and is
/// many times faster on large inputs, where the multinomial's `n` random reads per
/// resample are bound by memory latency; below this size those reads stay in cache and
/// take at most about a second, so the exact one costs little. (Measured on the
/// coverage tests' 10 000-decision worlds, the Poisson bootstrap covers as the
/// multinomial does, within the tests' noise: README, "Tests".)
pub const POISSON_FROM: usize = 100_000;

/// Every resample's value of each estimator (`None` without bootstrap): a Poisson
/// bootstrap ([`crate::resample`]) of the decisions' sums the estimators read, one
/// pass shared by all of them.
fn resample(
    units: &[Sums],
    estimators: &[Estimator],
    bootstrap: Bootstrap,
    salt: u64,
) -> Option<Vec<Vec<f64>>> {
    if bootstrap.resamples == 0 || units.is_empty() {
        return None;
    }
    if units.len() < POISSON_FROM {
        return Some(multinomial(units, estimators, bootstrap, salt));
    }
    // The columns, `Sums`'s fields after the count (a resample's count is the sum of
    // its Poisson counts); only those a requested estimator reads are summed (the
    // others stay 0).
    let wants = |e: Estimator| estimators.contains(&e);
    let columns: [(bool, Column); 5] = [
        (wants(Estimator::Ips) || wants(Estimator::Snips), |u| u.wr),
        (wants(Estimator::Snips), |u| u.w),
        (wants(Estimator::Dr), |u| u.dr),
        (wants(Estimator::Replay), |u| u.accepted),
        (wants(Estimator::Replay), |u| u.accepted_reward),
    ];
    let used: Vec<usize> = (0..columns.len()).filter(|&c| columns[c].0).collect();
    let data: Vec<Vec<f64>> = used.iter().map(|&c| units.iter().map(columns[c].1).collect()).collect();
    let slices: Vec<&[f64]> = data.iter().map(Vec::as_slice).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows =
        crate::resample::poisson_sums(&slices, bootstrap.resamples, mix64(bootstrap.seed ^ salt), threads);
    let all: Vec<Sums> = rows
        .iter()
        .map(|row| {
            let mut field = [0.0; 5];
            for (&c, &v) in used.iter().zip(&row[1..]) {
                field[c] = v;
            }
            let [wr, w, dr, accepted, accepted_reward] = field;
            Sums { n: row[0], wr, w, dr, accepted, accepted_reward }
        })
        .collect();
    Some(estimators.iter().map(|&e| all.iter().filter_map(|s| s.value(e)).collect()).collect())
}

/// The classical bootstrap: each resample draws `n` decisions with replacement, seeded
/// by the run's seed and its number.
fn multinomial(units: &[Sums], estimators: &[Estimator], bootstrap: Bootstrap, salt: u64) -> Vec<Vec<f64>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(bootstrap.resamples);
    let one = |b: usize| -> Sums {
        let mut rng = Rng::new(mix64(bootstrap.seed ^ salt ^ (b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        let mut sums = Sums::default();
        // Indices drawn a batch ahead, so the batch's random reads are in flight together
        // (same draws, same order of sums as one at a time).
        let n = units.len();
        let mut batch = [0usize; 16];
        let mut left = n;
        while left > 0 {
            let k = left.min(batch.len());
            for slot in &mut batch[..k] {
                *slot = rng.below(n);
            }
            for &i in &batch[..k] {
                sums.add_unit(&units[i]);
            }
            left -= k;
        }
        sums.n = n as f64;
        sums
    };
    let mut all: Vec<Sums> = vec![Sums::default(); bootstrap.resamples];
    let chunk = bootstrap.resamples.div_ceil(threads);
    std::thread::scope(|scope| {
        for (c, slot) in all.chunks_mut(chunk).enumerate() {
            let one = &one;
            scope.spawn(move || {
                for (j, s) in slot.iter_mut().enumerate() {
                    *s = one(c * chunk + j);
                }
            });
        }
    });
    estimators.iter().map(|&e| all.iter().filter_map(|s| s.value(e)).collect()).collect()
}

/// The leave-one-out values of estimator `e` over the decisions' `units` (whose sums
/// are `sums`), for the interval's acceleration, in O(n): every estimator is a ratio of
/// sums, so leaving a decision out subtracts its own. A decision whose removal leaves
/// the estimate undefined is skipped.
fn jackknife<'a>(units: &'a [Sums], sums: &'a Sums, e: Estimator) -> impl Iterator<Item = f64> + Clone + 'a {
    units.iter().filter_map(move |u| {
        let without = Sums {
            n: sums.n - u.n,
            wr: sums.wr - u.wr,
            w: sums.w - u.w,
            dr: sums.dr - u.dr,
            accepted: sums.accepted - u.accepted,
            accepted_reward: sums.accepted_reward - u.accepted_reward,
        };
        without.value(e)
    })
}

/// Groups `count` items into slices by key, in key order.
pub fn slices<K: Ord + Clone>(keys: impl Iterator<Item = K>) -> BTreeMap<K, Vec<u32>> {
    let mut out: BTreeMap<K, Vec<u32>> = BTreeMap::new();
    for (i, k) in keys.enumerate() {
        out.entry(k).or_default().push(i as u32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(weight: f64, reward: f64) -> Term {
        Term::new(
            TermInput {
                weight,
                reward,
                direct: 0.1,
                direct_logged: 0.1,
                uniform_slice: true,
                // Accepted by some rule unrelated to the reward (here: the weight).
                accept_uniform: weight > 0.7,
                accept_all: false,
            },
            None,
        )
    }

    #[test]
    fn estimators_follow_their_formulas() {
        let terms = vec![term(2.0, 1.0), term(0.5, 0.0), term(0.0, 1.0), term(1.5, 0.0)];
        let raw: Vec<f64> = terms.iter().map(|t| t.w).collect();
        let idx: Vec<u32> = (0..4).collect();
        let s = summarise(
            &terms,
            &raw,
            &idx,
            &Estimator::ALL,
            ReplayData::UniformSlice,
            Bootstrap { resamples: 0, seed: 1 },
            0,
        );
        let v = |e: Estimator| s.estimates.iter().find(|x| x.estimator == e).unwrap().value.clone().unwrap();
        assert!((v(Estimator::Ips) - 2.0 / 4.0).abs() < 1e-12);
        assert!((v(Estimator::Snips) - 2.0 / 4.0).abs() < 1e-12);
        // DR: 0.1 + w(r - 0.1) each.
        let dr = [0.1 + 2.0 * 0.9, 0.1 - 0.05, 0.1, 0.1 - 0.15].iter().sum::<f64>() / 4.0;
        assert!((v(Estimator::Dr) - dr).abs() < 1e-12);
        // Accepted: weights 2.0 and 1.5, rewards 1 and 0.
        assert_eq!(v(Estimator::Replay), 0.5);
        assert!((s.effective_sample_size - 16.0 / 6.5).abs() < 1e-12);
        assert_eq!(s.max_weight, 2.0);
    }

    #[test]
    fn clipping_caps_weights_and_counts_them() {
        let input = |w| TermInput {
            weight: w,
            reward: 1.0,
            direct: 0.0,
            direct_logged: 0.0,
            uniform_slice: false,
            accept_uniform: false,
            accept_all: false,
        };
        let terms = vec![Term::new(input(10.0), Some(3.0)), Term::new(input(1.0), Some(3.0))];
        let raw = vec![10.0, 1.0];
        let s = summarise(
            &terms,
            &raw,
            &[0, 1],
            &[Estimator::Ips],
            ReplayData::UniformSlice,
            Bootstrap { resamples: 0, seed: 1 },
            0,
        );
        assert_eq!(s.estimates[0].value, Ok(2.0));
        assert_eq!((s.max_weight, s.clipped_weights), (10.0, 1));
    }

    #[test]
    fn no_overlap_and_no_uniform_slice_are_errors() {
        let terms = vec![Term::new(
            TermInput {
                weight: 0.0,
                reward: 1.0,
                direct: 0.0,
                direct_logged: 0.0,
                uniform_slice: false,
                accept_uniform: false,
                accept_all: false,
            },
            None,
        )];
        let s = summarise(
            &terms,
            &[0.0],
            &[0],
            &Estimator::ALL,
            ReplayData::UniformSlice,
            Bootstrap { resamples: 10, seed: 1 },
            0,
        );
        for e in &s.estimates {
            let err = e.value.clone().unwrap_err();
            match e.estimator {
                Estimator::Replay => assert!(err.contains("uniform policy"), "{err}"),
                _ => assert!(err.contains("no overlap"), "{err}"),
            }
        }
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_estimate() {
        let mut rng = Rng::new(3);
        let terms: Vec<Term> =
            (0..2_000).map(|_| term(rng.uniform() * 2.0, f64::from(u8::from(rng.uniform() < 0.3)))).collect();
        let raw: Vec<f64> = terms.iter().map(|t| t.w).collect();
        let idx: Vec<u32> = (0..2_000).collect();
        let run = || {
            summarise(
                &terms,
                &raw,
                &idx,
                &Estimator::ALL,
                ReplayData::UniformSlice,
                Bootstrap { resamples: 200, seed: 9 },
                0,
            )
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        for e in &a.estimates {
            let (lo, hi) = e.interval.unwrap();
            let v = e.value.clone().unwrap();
            assert!(lo <= v && v <= hi && hi - lo > 0.0, "{e:?}");
        }
    }

    #[test]
    fn poisson_and_multinomial_bootstraps_agree_on_large_inputs() {
        // Skewed terms (rare heavy weights), n at the Poisson threshold.
        let mut rng = Rng::new(11);
        let units: Vec<Sums> = (0..POISSON_FROM)
            .map(|_| {
                let heavy = rng.uniform() < 0.01;
                let t = term(if heavy { 50.0 } else { 0.5 }, f64::from(u8::from(rng.uniform() < 0.2)));
                let mut s = Sums::default();
                s.add(&t, ACCEPT_UNIFORM);
                s
            })
            .collect();
        let estimators = [Estimator::Ips, Estimator::Snips, Estimator::Dr];
        let bootstrap = Bootstrap { resamples: 400, seed: 2 };
        let poisson = resample(&units, &estimators, bootstrap, 0).unwrap();
        let classic = multinomial(&units, &estimators, bootstrap, 0);
        for (p, c) in poisson.iter().zip(&classic) {
            let sorted = |v: &[f64]| {
                let mut v = v.to_vec();
                v.sort_by(f64::total_cmp);
                v
            };
            let (p, c) = (sorted(p), sorted(c));
            let width = interval::quantile(&c, 0.975) - interval::quantile(&c, 0.025);
            for q in [0.025, 0.5, 0.975] {
                let d = (interval::quantile(&p, q) - interval::quantile(&c, q)).abs();
                assert!(d < 0.15 * width, "quantile {q}: {d} of width {width}");
            }
        }
    }
}
