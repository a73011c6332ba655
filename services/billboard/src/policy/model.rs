//! A snapshot of everything the policies decide from: per arm, its bucket posteriors,
//! its pooled take rate and its prior; per title, its linear model; built from the
//! statistics and the catalog whenever they change, then shared read-only by every
//! decision.
//!
//! Priors form a ladder, so that no arm ever starts from nothing: an arm's pooled mean
//! is shrunk toward its title's, a title's toward the mean of the titles sharing its
//! kind and genres, and those toward the global take rate (itself shrunk toward a weak
//! configured default). Each level counts `prior_strength` pseudo-impressions.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::context::{Bucket, BucketFields, Cell};
use super::linear::{LinearTitle, Ridge, Vocabulary};
use super::rng::{BetaDraws, BetaShape, IdMap, Rng, mix64, stable_hash};
use super::stats::{Arm, Counter, Discount, Statistics, TitleFacts};
use super::{PolicyKind, Probabilities};

/// Tunables of every policy (validated by the caller: all finite, in range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Discount by event time.
    pub discount: Discount,
    /// Which context fields make a bucket of the per-bucket bandits.
    pub bucket_fields: BucketFields,
    /// Pseudo-impressions of each prior level.
    pub prior_strength: f64,
    /// Take rate assumed before any outcome was seen.
    pub default_prior_mean: f64,
    /// Ridge strength of the linear model's intercept and context features.
    pub ridge: f64,
    /// Ridge strength of the linear model's per-artwork features: how strongly an
    /// artwork is held to its title's prediction.
    pub artwork_ridge: f64,
    /// Width of the linear model's confidence bonus, in standard deviations.
    pub linucb_alpha: f64,
    /// UCB1's exploration constant.
    pub ucb_c: f64,
    /// ε of ε-greedy.
    pub epsilon: f64,
    /// The exploration floor: least probability of any candidate.
    pub min_propensity: f64,
    /// A title with fewer impressions than this is new...
    pub new_title_impressions: u64,
    /// ...and each of its pairs gets at least this probability.
    pub new_title_floor: f64,
    /// How Thompson sampling's win probabilities are computed: 0, by quadrature (see
    /// [`super::thompson`]); else estimated by this many Monte Carlo draws.
    pub thompson_draws: usize,
    /// Most pseudo-impressions a title's early read from insights counts for in its
    /// prior, however many impressions it had: an early read is another canvas and
    /// another time, so it must not outweigh what billboard sees of the title itself.
    pub early_read_weight: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            discount: Discount::new(7 * 24 * 3_600_000),
            bucket_fields: BucketFields::ALL,
            prior_strength: 20.0,
            default_prior_mean: 0.05,
            ridge: 1.0,
            artwork_ridge: 1.0,
            linucb_alpha: 0.2,
            ucb_c: 0.2,
            epsilon: 0.05,
            min_propensity: 0.0003,
            new_title_impressions: 100,
            new_title_floor: 0.01,
            thompson_draws: 0,
            early_read_weight: 200.0,
        }
    }
}

/// What the model knows of one arm.
#[derive(Debug, Clone)]
struct ArmModel {
    /// `(weight, reward)` per bucket, discounted to the arm's latest outcome.
    buckets: HashMap<Bucket, (f64, f64)>,
    /// Shrunk pooled take rate over every cell: the bucket posteriors' prior mean.
    pooled_mean: f64,
    /// The title's prior the arm was fitted with.
    prior_mean: f64,
}

impl ArmModel {
    fn fit(cells: &BTreeMap<Cell, Counter>, prior_mean: f64, params: &Params) -> Self {
        let latest = cells.values().map(|c| c.at_ms).max().unwrap_or(0);
        let decayed: Vec<(&Cell, f64, f64)> = cells
            .iter()
            .map(|(cell, c)| {
                let (w, r) = c.at(latest, params.discount);
                (cell, w, r)
            })
            .collect();
        let mut buckets: HashMap<Bucket, (f64, f64)> = HashMap::new();
        let (mut w_all, mut r_all) = (0.0, 0.0);
        for (cell, w, r) in &decayed {
            let slot = buckets.entry(params.bucket_fields.bucket(cell)).or_default();
            slot.0 += w;
            slot.1 += r;
            w_all += w;
            r_all += r;
        }
        let k = params.prior_strength;
        Self { buckets, pooled_mean: (r_all + k * prior_mean) / (w_all + k), prior_mean }
    }

    fn cold(prior_mean: f64, params: &Params) -> Self {
        Self::fit(&BTreeMap::new(), prior_mean, params)
    }

    /// Beta posterior `(α, β)` of the arm in `bucket`.
    fn beta(&self, bucket: &Bucket, k: f64) -> (f64, f64) {
        self.beta_around(bucket, k, self.pooled_mean)
    }

    /// Beta posterior `(α, β)` of the arm in `bucket`, its prior `k` pseudo-impressions
    /// at mean `m`.
    fn beta_around(&self, bucket: &Bucket, k: f64, m: f64) -> (f64, f64) {
        let (w, r) = self.buckets.get(bucket).copied().unwrap_or_default();
        let m = m.clamp(1e-6, 1.0 - 1e-6);
        (k * m + r, k * (1.0 - m) + (w - r).max(0.0))
    }
}

/// A title's aggregate statistics.
#[derive(Debug, Clone, Copy, Default)]
struct TitleModel {
    impressions: u64,
    weight: f64,
    reward: f64,
}

/// Everything a decision reads; immutable once built.
#[derive(Debug)]
pub struct Model {
    params: Params,
    version: u64,
    arms: HashMap<Arm, ArmModel>,
    titles: IdMap<TitleModel>,
    /// The linear model of each title with outcomes.
    linear: IdMap<LinearTitle>,
    /// The ids of the linear models' countries and devices.
    vocabulary: Vocabulary,
    facts: Arc<HashMap<i64, TitleFacts>>,
    /// Shrunk take rate per (kind, genre).
    groups: HashMap<(String, String), f64>,
    global_mean: f64,
    /// Thompson win probabilities and posterior means per (cell, candidates), valid for
    /// this version.
    thompson: Mutex<HashMap<u64, ThompsonEntry>>,
}

/// Thompson's win probabilities and posterior means for one (cell, candidates).
type ThompsonEntry = Arc<(Vec<f64>, Vec<f64>)>;

/// An arm with its per-cell counters.
type ArmCells<'a> = (&'a Arm, &'a BTreeMap<Cell, Counter>);

/// Thompson cache entries kept per model version before it is cleared.
const THOMPSON_CACHE_ENTRIES: usize = 4096;

impl Model {
    /// The model of `stats` and the catalog's `facts`, from scratch.
    pub fn build(
        params: Params,
        version: u64,
        stats: &Statistics,
        facts: Arc<HashMap<i64, TitleFacts>>,
    ) -> Self {
        Self::rebuild(None, params, version, stats, facts, &HashSet::new())
    }

    /// The model after `touched` arms changed, reusing `previous`'s fit of every arm
    /// whose statistics and prior did not change.
    pub fn rebuild(
        previous: Option<&Model>,
        params: Params,
        version: u64,
        stats: &Statistics,
        facts: Arc<HashMap<i64, TitleFacts>>,
        touched: &HashSet<Arm>,
    ) -> Self {
        let mut titles: IdMap<TitleModel> = IdMap::default();
        let (mut w_all, mut r_all) = (0.0, 0.0);
        for (arm, cells) in stats.arms() {
            let latest = cells.values().map(|c| c.at_ms).max().unwrap_or(0);
            let title = titles.entry(arm.video_id).or_default();
            for c in cells.values() {
                let (w, r) = c.at(latest, params.discount);
                title.weight += w;
                title.reward += r;
                title.impressions += c.impressions;
                w_all += w;
                r_all += r;
            }
        }
        let k = params.prior_strength;
        let global_mean = (r_all + k * params.default_prior_mean) / (w_all + k);
        let mut group_sums: HashMap<(String, String), (f64, f64)> = HashMap::new();
        for (video_id, title) in &titles {
            let Some(f) = facts.get(video_id) else { continue };
            for key in group_keys(f) {
                let slot = group_sums.entry(key).or_default();
                slot.0 += title.weight;
                slot.1 += title.reward;
            }
        }
        let groups =
            group_sums.into_iter().map(|(key, (w, r))| (key, (r + k * global_mean) / (w + k))).collect();
        let mut model = Model {
            params,
            version,
            arms: HashMap::new(),
            titles,
            linear: IdMap::default(),
            vocabulary: Vocabulary::default(),
            facts,
            groups,
            global_mean,
            thompson: Mutex::new(HashMap::new()),
        };
        let mut arms = HashMap::with_capacity(stats.arms().size_hint().0);
        for (arm, cells) in stats.arms() {
            let prior = model.title_prior(arm.video_id);
            let reuse = previous
                .filter(|_| !touched.contains(arm))
                .and_then(|p| p.arms.get(arm))
                .filter(|m| (m.prior_mean - prior).abs() <= 1e-12 * prior.abs().max(1e-12));
            let fitted = match reuse {
                Some(m) => m.clone(),
                None => ArmModel::fit(cells, prior, &params),
            };
            arms.insert(arm.clone(), fitted);
        }
        model.arms = arms;
        (model.linear, model.vocabulary) = Self::fit_linear(previous, &model, stats, touched);
        model
    }

    /// Each title's linear model over all of its arms' cells, discounted to the title's
    /// latest outcome; reused from `previous` for titles none of whose arms changed.
    fn fit_linear(
        previous: Option<&Model>,
        model: &Model,
        stats: &Statistics,
        touched: &HashSet<Arm>,
    ) -> (IdMap<LinearTitle>, Vocabulary) {
        let params = &model.params;
        // Ids stay those of the models reused from `previous`.
        let mut vocabulary = previous.map(|p| p.vocabulary.clone()).unwrap_or_default();
        let ridge = Ridge { context: params.ridge, artwork: params.artwork_ridge };
        let touched_titles: HashSet<i64> = touched.iter().map(|a| a.video_id).collect();
        let mut by_title: HashMap<i64, Vec<ArmCells<'_>>> = HashMap::new();
        for (arm, cells) in stats.arms() {
            by_title.entry(arm.video_id).or_default().push((arm, cells));
        }
        let linear = by_title
            .into_iter()
            .map(|(video_id, arms)| {
                let prior = model.title_prior(video_id);
                let reuse = previous
                    .filter(|_| !touched_titles.contains(&video_id))
                    .and_then(|p| p.linear.get(&video_id))
                    .filter(|m| (m.prior_mean() - prior).abs() <= 1e-12 * prior.abs().max(1e-12));
                if let Some(m) = reuse {
                    return (video_id, m.clone());
                }
                let latest =
                    arms.iter().flat_map(|(_, cells)| cells.values()).map(|c| c.at_ms).max().unwrap_or(0);
                let observations = arms.iter().flat_map(|(arm, cells)| {
                    cells.iter().map(move |(cell, c)| {
                        let (w, r) = c.at(latest, params.discount);
                        (&arm.artwork_id, cell, w, r)
                    })
                });
                (video_id, LinearTitle::fit(observations, prior, ridge, &mut vocabulary))
            })
            .collect();
        (linear, vocabulary)
    }

    /// The model's version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The tunables.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// A title's prior mean: its own shrunk take rate, shrunk toward its early read
    /// from insights when there is one (counting at most `early_read_weight`
    /// impressions), else toward its genre's mean, else the global one.
    pub fn title_prior(&self, video_id: i64) -> f64 {
        let (center, strength) = self.title_base(video_id);
        match self.titles.get(&video_id) {
            Some(t) => (t.reward + strength * center) / (t.weight + strength),
            None => center,
        }
    }

    /// What a title's own statistics are shrunk toward, and with how many
    /// pseudo-impressions.
    fn title_base(&self, video_id: i64) -> (f64, f64) {
        let k = self.params.prior_strength;
        let group = self.group_prior(video_id);
        match self.facts.get(&video_id).and_then(|f| f.early_read) {
            Some(read) if read.impressions > 0 => {
                let n = read.impressions as f64;
                let weight = n.min(self.params.early_read_weight);
                // The read's rate, scaled to `weight` impressions, shrunk to the group.
                let plays = read.plays.min(read.impressions) as f64 * weight / n;
                ((plays + k * group) / (weight + k), weight + k)
            }
            _ => (group, k),
        }
    }

    fn group_prior(&self, video_id: i64) -> f64 {
        let Some(f) = self.facts.get(&video_id) else { return self.global_mean };
        let means: Vec<f64> = group_keys(f).filter_map(|key| self.groups.get(&key).copied()).collect();
        if means.is_empty() { self.global_mean } else { means.iter().sum::<f64>() / means.len() as f64 }
    }

    fn arm(&self, arm: &Arm) -> std::borrow::Cow<'_, ArmModel> {
        match self.arms.get(arm) {
            Some(m) => std::borrow::Cow::Borrowed(m),
            None => std::borrow::Cow::Owned(ArmModel::cold(self.title_prior(arm.video_id), &self.params)),
        }
    }

    /// Outcomes applied for a title, undiscounted.
    pub fn title_impressions(&self, video_id: i64) -> u64 {
        self.titles.get(&video_id).map_or(0, |t| t.impressions)
    }

    /// Posterior mean take rate of each candidate in `cell`'s bucket.
    pub fn bucket_means(&self, cell: &Cell, candidates: &[Arm]) -> Vec<f64> {
        let bucket = self.params.bucket_fields.bucket(cell);
        let k = self.params.prior_strength;
        candidates
            .iter()
            .map(|arm| {
                let (a, b) = self.arm(arm).beta(&bucket, k);
                a / (a + b)
            })
            .collect()
    }

    /// The linear model's predicted take rate and its standard deviation per candidate.
    pub fn linear_predictions(&self, cell: &Cell, candidates: &[Arm]) -> Vec<(f64, f64)> {
        let ridge = Ridge { context: self.params.ridge, artwork: self.params.artwork_ridge };
        let resolved = self.vocabulary.resolve(cell);
        // The title of the previous candidate (a title's pairs are adjacent), and its model
        // or, for a title with no outcomes, its prior with every feature's prior variance.
        let mut title: Option<(i64, Cow<'_, LinearTitle>)> = None;
        candidates
            .iter()
            .map(|arm| {
                if title.as_ref().is_none_or(|(id, _)| *id != arm.video_id) {
                    let model = match self.linear.get(&arm.video_id) {
                        Some(m) => Cow::Borrowed(m),
                        None => Cow::Owned(LinearTitle::cold(self.title_prior(arm.video_id), ridge)),
                    };
                    title = Some((arm.video_id, model));
                }
                let (mean, var) =
                    title.as_ref().map_or((0.0, 0.0), |(_, m)| m.predict(&arm.artwork_id, &resolved));
                (mean, var.sqrt())
            })
            .collect()
    }

    /// The probability of each candidate under `policy` in `cell`, floors included.
    ///
    /// `candidates` must be non-empty. The result sums to 1 and every entry is at least
    /// the exploration floor (when the floors fit in 1 at all).
    pub fn probabilities(&self, policy: PolicyKind, cell: &Cell, candidates: &[Arm]) -> Probabilities {
        let n = candidates.len();
        let p = &self.params;
        let (q, best): (Vec<f64>, Vec<bool>) = match policy {
            PolicyKind::Uniform => (vec![1.0 / n as f64; n], vec![false; n]),
            PolicyKind::Thompson => {
                let (wins, means) = &*self.thompson(cell, candidates);
                (wins.clone(), argmax_set(means))
            }
            PolicyKind::EpsilonGreedy => {
                let best = argmax_set(&self.bucket_means(cell, candidates));
                let ties = best.iter().filter(|b| **b).count() as f64;
                let q = best
                    .iter()
                    .map(|&b| p.epsilon / n as f64 + if b { (1.0 - p.epsilon) / ties } else { 0.0 })
                    .collect();
                (q, best)
            }
            PolicyKind::Ucb1 => {
                let bucket = p.bucket_fields.bucket(cell);
                let k = p.prior_strength;
                let posts: Vec<(f64, f64)> =
                    candidates.iter().map(|a| self.arm(a).beta(&bucket, k)).collect();
                let total: f64 = posts.iter().map(|(a, b)| a + b).sum();
                let means: Vec<f64> = posts.iter().map(|(a, b)| a / (a + b)).collect();
                let scores: Vec<f64> = posts
                    .iter()
                    .zip(&means)
                    .map(|((a, b), m)| m + p.ucb_c * (2.0 * (total + 1.0).ln() / (a + b)).sqrt())
                    .collect();
                (split_ties(&argmax_set(&scores)), argmax_set(&means))
            }
            PolicyKind::Linear => {
                let preds = self.linear_predictions(cell, candidates);
                let scores: Vec<f64> = preds.iter().map(|(m, s)| m + p.linucb_alpha * s).collect();
                let means: Vec<f64> = preds.iter().map(|(m, _)| *m).collect();
                (split_ties(&argmax_set(&scores)), argmax_set(&means))
            }
        };
        let floors: Vec<f64> = candidates
            .iter()
            .map(|arm| {
                if self.title_impressions(arm.video_id) < p.new_title_impressions {
                    p.min_propensity.max(p.new_title_floor)
                } else {
                    p.min_propensity
                }
            })
            .collect();
        Probabilities { probs: with_floors(&q, &floors), best }
    }

    /// Thompson sampling's win probabilities, by quadrature, or estimated by Monte Carlo
    /// with a seed fixed by the model version, the bucket and the candidates (so equal
    /// requests against one version get equal probabilities); cached for the version.
    ///
    /// Each bucket's Beta prior is centred on the linear model's prediction for the
    /// cell, so a bucket with few outcomes starts from what the arm's title does in
    /// contexts that share a field with it, not from its rate over every context. The
    /// prior depends on the whole cell, so the cache is keyed by the cell.
    fn thompson(&self, cell: &Cell, candidates: &[Arm]) -> ThompsonEntry {
        let bucket = self.params.bucket_fields.bucket(cell);
        let key = thompson_key(&BucketFields::ALL.bucket(cell), candidates);
        if let Some(hit) = self.thompson.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return hit.clone();
        }
        let k = self.params.prior_strength;
        let centres = self.linear_predictions(cell, candidates);
        let posts: Vec<(f64, f64)> = candidates
            .iter()
            .zip(&centres)
            .map(|(a, (centre, _))| self.arm(a).beta_around(&bucket, k, *centre))
            .collect();
        let means: Vec<f64> = posts.iter().map(|(a, b)| a / (a + b)).collect();
        let wins = match self.params.thompson_draws {
            0 => super::thompson::win_probabilities(&posts),
            draws => self.monte_carlo(key, &posts, draws),
        };
        let probs = Arc::new((wins, means));
        let mut cache = self.thompson.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= THOMPSON_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, probs.clone());
        probs
    }

    /// Win probabilities estimated from `draws` Monte Carlo draws of the posteriors.
    fn monte_carlo(&self, key: u64, posts: &[(f64, f64)], draws: usize) -> Vec<f64> {
        let mut rng = Rng::new(mix64(key ^ self.version.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        let mut beta = BetaDraws::new(&mut rng);
        let shapes: Vec<BetaShape> = posts.iter().map(|(a, b)| BetaShape::new(*a, *b)).collect();
        let mut wins = vec![0u32; posts.len()];
        for _ in 0..draws {
            let mut best = (f64::NEG_INFINITY, 0);
            for (i, shape) in shapes.iter().enumerate() {
                let x = beta.draw(shape);
                if x > best.0 {
                    best = (x, i);
                }
            }
            wins[best.1] += 1;
        }
        wins.iter().map(|&w| f64::from(w) / draws as f64).collect()
    }
}

fn group_keys(f: &TitleFacts) -> impl Iterator<Item = (String, String)> + '_ {
    let kind = f.kind.clone().unwrap_or_default();
    f.genres.iter().map(move |g| (kind.clone(), g.clone()))
}

fn thompson_key(bucket: &Bucket, candidates: &[Arm]) -> u64 {
    let mut h = stable_hash(&[
        bucket.country.as_deref().unwrap_or("*").as_bytes(),
        bucket.device.as_deref().unwrap_or("*").as_bytes(),
        bucket.daypart.map_or("*", |d| d.as_str()).as_bytes(),
    ]);
    for arm in candidates {
        h = mix64(h ^ stable_hash(&[&arm.video_id.to_le_bytes(), arm.artwork_id.as_bytes()]));
    }
    h
}

/// Which entries are maximal (all of them tie when every value is equal).
fn argmax_set(values: &[f64]) -> Vec<bool> {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Relative tolerance: equal priors computed along different paths still tie.
    let tolerance = 1e-12 * max.abs().max(1e-12);
    values.iter().map(|v| *v >= max - tolerance).collect()
}

/// The deterministic pick as a distribution: ties share its mass equally, so a tie
/// never silently favours the first candidate.
fn split_ties(best: &[bool]) -> Vec<f64> {
    let ties = best.iter().filter(|b| **b).count().max(1) as f64;
    best.iter().map(|&b| if b { 1.0 / ties } else { 0.0 }).collect()
}

/// Mixes `q` with per-candidate floors: `p = f + (1 − Σf)·q`; when the floors alone
/// exceed 1 they are scaled to sum to 1.
pub(crate) fn with_floors(q: &[f64], floors: &[f64]) -> Vec<f64> {
    let total: f64 = floors.iter().sum();
    if total >= 1.0 {
        return floors.iter().map(|f| f / total).collect();
    }
    let q_total: f64 = q.iter().sum();
    let rest = 1.0 - total;
    q.iter().zip(floors).map(|(q, f)| f + rest * q / q_total).collect()
}
