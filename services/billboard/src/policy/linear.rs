//! The contextual linear model behind the `linucb` policy: per title, one ridge
//! regression of the reward over all of its artworks' impressions, on one-hot features
//! of the context (country, device, daypart), of the artwork, and of the artwork's
//! device, plus an intercept.
//!
//! The title's context effects are learned from every artwork's impressions, so its
//! artworks share strength: each artwork only has its own offset (and its offset per
//! device) to learn, and a new artwork of a known title starts from the title. What is
//! learned in one context is shared with every context that has a field in common.
//!
//! The regression is fitted from the per-cell counters, which are its sufficient
//! statistics: every impression of an arm in a cell has the same feature vector, so
//! `A = Λ + Σ w·xxᵀ` and `b = λ·m·e₀ + Σ r·x` over (arm, cell), with `m` the title's
//! prior mean (its own shrunk take rate or its genre's), which is how a new title starts
//! from what titles like it do rather than from zero.
//!
//! A decision predicts every candidate in one cell, so nothing on that path hashes a
//! string per candidate: countries and devices get small ids from a [`Vocabulary`]
//! shared by every title, the cell is resolved to those ids once per request
//! ([`Vocabulary::resolve`]), and a title finds its features' positions by indexing
//! arrays with them (its artworks, a handful, by a scan).

use std::collections::HashMap;
use std::sync::Arc;

use super::context::{Cell, Daypart};

/// A title's array entry for a value it never saw.
const UNSEEN: u32 = u32::MAX;

/// Ids of the countries and devices any title's model has seen. Ids are only ever
/// added, and a model rebuilt from a previous one starts from its vocabulary, so a
/// title's model reused across rebuilds still reads the right entries.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    countries: HashMap<Arc<str>, u32>,
    devices: HashMap<Arc<str>, u32>,
}

impl Vocabulary {
    /// The cell with its country and device as ids (`None`: no title has seen it).
    pub fn resolve(&self, cell: &Cell) -> Resolved {
        Resolved {
            country: self.countries.get(&cell.country).copied(),
            device: self.devices.get(&cell.device).copied(),
            daypart: cell.daypart,
        }
    }

    fn intern(map: &mut HashMap<Arc<str>, u32>, value: &Arc<str>) -> u32 {
        let next = map.len() as u32;
        *map.entry(value.clone()).or_insert(next)
    }
}

/// A cell resolved against a [`Vocabulary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    country: Option<u32>,
    device: Option<u32>,
    daypart: Daypart,
}

/// The ridge strengths: of the intercept and the context's features, and of the
/// artwork's own features (larger keeps an artwork close to its title until its
/// impressions say otherwise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ridge {
    /// Intercept and context features.
    pub context: f64,
    /// Artwork and artwork × device features.
    pub artwork: f64,
}

/// Where one artwork's features sit in its title's model.
#[derive(Debug, Clone)]
struct ArtworkSlots {
    id: Arc<str>,
    /// Index of the artwork's own feature.
    slot: u32,
    /// Index of its artwork × device feature, by device id (`UNSEEN` or past the end:
    /// never seen on that device).
    by_device: Vec<u32>,
}

/// A title's fitted ridge regression: the coefficients and the inverse design matrix.
#[derive(Debug, Clone)]
pub struct LinearTitle {
    /// Feature index (after the intercept at 0) of each country, by country id.
    countries: Vec<u32>,
    /// ... of each device, by device id.
    devices: Vec<u32>,
    /// ... of each daypart.
    dayparts: [u32; 4],
    /// The artworks' features.
    artworks: Vec<ArtworkSlots>,
    /// `A⁻¹`, row-major `d × d`.
    a_inv: Vec<f64>,
    /// `θ = A⁻¹ b`.
    theta: Vec<f64>,
    /// Ridge strengths; also the prior precision of a feature the title never saw.
    ridge: Ridge,
    /// The prior mean of the intercept.
    prior_mean: f64,
}

/// The entry of `id` in a by-id array, if the title saw it.
fn seen(slots: &[u32], id: Option<u32>) -> Option<u32> {
    id.and_then(|i| slots.get(i as usize).copied()).filter(|s| *s != UNSEEN)
}

/// The feature index in `entry`, made the next feature (with its ridge) when unseen.
fn feature(entry: &mut u32, ridges: &mut Vec<f64>, ridge: f64) -> u32 {
    if *entry == UNSEEN {
        *entry = ridges.len() as u32;
        ridges.push(ridge);
    }
    *entry
}

/// The entry of `id` in `slots`, added as the next feature when new.
fn slot_of(slots: &mut Vec<u32>, id: u32, ridges: &mut Vec<f64>, ridge: f64) -> u32 {
    let i = id as usize;
    if slots.len() <= i {
        slots.resize(i + 1, UNSEEN);
    }
    feature(&mut slots[i], ridges, ridge)
}

impl LinearTitle {
    /// Fits the model from `(artwork, cell, weight, reward)` with prior mean
    /// `prior_mean`, adding the cells' countries and devices to `vocabulary`.
    pub fn fit<'a>(
        observations: impl Iterator<Item = (&'a Arc<str>, &'a Cell, f64, f64)>,
        prior_mean: f64,
        ridge: Ridge,
        vocabulary: &mut Vocabulary,
    ) -> Self {
        let mut model = LinearTitle {
            countries: Vec::new(),
            devices: Vec::new(),
            dayparts: [UNSEEN; 4],
            artworks: Vec::new(),
            a_inv: Vec::new(),
            theta: Vec::new(),
            ridge,
            prior_mean,
        };
        // Feature indices in order of first occurrence, and each one's ridge.
        let mut ridges = vec![ridge.context];
        let mut rows: Vec<([u32; FEATURES + 1], f64, f64)> = Vec::new();
        for (artwork, cell, weight, reward) in observations {
            let country = Vocabulary::intern(&mut vocabulary.countries, &cell.country);
            let device = Vocabulary::intern(&mut vocabulary.devices, &cell.device);
            let c = slot_of(&mut model.countries, country, &mut ridges, ridge.context);
            let d = slot_of(&mut model.devices, device, &mut ridges, ridge.context);
            let p = feature(&mut model.dayparts[cell.daypart.index()], &mut ridges, ridge.context);
            let a = match model.artworks.iter().position(|s| s.id == *artwork) {
                Some(i) => i,
                None => {
                    model.artworks.push(ArtworkSlots {
                        id: artwork.clone(),
                        slot: ridges.len() as u32,
                        by_device: Vec::new(),
                    });
                    ridges.push(ridge.artwork);
                    model.artworks.len() - 1
                }
            };
            let art = &mut model.artworks[a];
            let ad = slot_of(&mut art.by_device, device, &mut ridges, ridge.artwork);
            rows.push(([0, c, d, p, art.slot, ad], weight, reward));
        }
        let d = ridges.len();
        let mut a = vec![0.0; d * d];
        for (i, l) in ridges.iter().enumerate() {
            a[i * d + i] = *l;
        }
        let mut b = vec![0.0; d];
        b[0] = ridge.context * prior_mean;
        for (active, weight, reward) in rows {
            for &i in &active {
                let i = i as usize;
                b[i] += reward;
                for &j in &active {
                    a[i * d + j as usize] += weight;
                }
            }
        }
        model.a_inv = invert_spd(&a, d);
        model.theta = (0..d).map(|i| (0..d).map(|j| model.a_inv[i * d + j] * b[j]).sum()).collect();
        model
    }

    /// The model of a title with no outcomes yet.
    pub fn cold(prior_mean: f64, ridge: Ridge) -> Self {
        Self::fit(std::iter::empty(), prior_mean, ridge, &mut Vocabulary::default())
    }

    /// The prior mean it was fitted with.
    pub fn prior_mean(&self) -> f64 {
        self.prior_mean
    }

    /// Predicted mean reward of `artwork` in `cell` and its variance (`xᵀA⁻¹x`).
    /// Features the title never saw add nothing to the mean and their prior variance
    /// `1/λ` to the variance.
    pub fn predict(&self, artwork: &Arc<str>, cell: &Resolved) -> (f64, f64) {
        let d = self.theta.len();
        let (ctx, art) = (1.0 / self.ridge.context, 1.0 / self.ridge.artwork);
        let mut active = [0u32; FEATURES + 1];
        let mut n = 1;
        let mut variance = 0.0;
        let mut push = |slot: Option<u32>, prior: f64| match slot {
            Some(s) => {
                active[n] = s;
                n += 1;
            }
            None => variance += prior,
        };
        push(seen(&self.countries, cell.country), ctx);
        push(seen(&self.devices, cell.device), ctx);
        push(seen(&self.dayparts, Some(cell.daypart.index() as u32)), ctx);
        // A title has a handful of artworks: the same `Arc` as the catalog's, usually.
        match self.artworks.iter().find(|s| Arc::ptr_eq(&s.id, artwork) || s.id == *artwork) {
            Some(s) => {
                push(Some(s.slot), art);
                push(seen(&s.by_device, cell.device), art);
            }
            None => {
                push(None, art);
                push(None, art);
            }
        }
        let active = &active[..n];
        let mut mean = 0.0;
        for &i in active {
            let row = &self.a_inv[i as usize * d..(i as usize + 1) * d];
            mean += self.theta[i as usize];
            for &j in active {
                variance += row[j as usize];
            }
        }
        (mean, variance.max(0.0))
    }
}

/// Features active for one (artwork, cell): the intercept and these five.
const FEATURES: usize = 5;

/// The inverse of a symmetric positive-definite matrix, by Cholesky factorisation.
/// `A = λI + Σ w·xxᵀ` with λ > 0 is always positive definite.
fn invert_spd(a: &[f64], d: usize) -> Vec<f64> {
    // L with A = L Lᵀ.
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut sum = a[i * d + j];
            for k in 0..j {
                sum -= l[i * d + k] * l[j * d + k];
            }
            l[i * d + j] = if i == j { sum.max(1e-300).sqrt() } else { sum / l[j * d + j] };
        }
    }
    // L⁻¹ (lower triangular), then A⁻¹ = L⁻ᵀ L⁻¹.
    let mut li = vec![0.0; d * d];
    for i in 0..d {
        li[i * d + i] = 1.0 / l[i * d + i];
        for j in 0..i {
            let mut sum = 0.0;
            for k in j..i {
                sum -= l[i * d + k] * li[k * d + j];
            }
            li[i * d + j] = sum / l[i * d + i];
        }
    }
    let mut inv = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let sum: f64 = (i..d).map(|k| li[k * d + i] * li[k * d + j]).sum();
            inv[i * d + j] = sum;
            inv[j * d + i] = sum;
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(country: &str, device: &str, daypart: Daypart) -> Cell {
        Cell { country: country.into(), device: device.into(), daypart }
    }

    const RIDGE: Ridge = Ridge { context: 1.0, artwork: 1.0 };

    /// Fits `data` with its own vocabulary, and predicts cells through it.
    struct Fitted(LinearTitle, Vocabulary);

    impl Fitted {
        fn new(data: &[(&Arc<str>, &Cell, f64, f64)], prior_mean: f64, ridge: Ridge) -> Self {
            let mut vocabulary = Vocabulary::default();
            let model = LinearTitle::fit(data.iter().copied(), prior_mean, ridge, &mut vocabulary);
            Fitted(model, vocabulary)
        }

        fn predict(&self, artwork: &Arc<str>, cell: &Cell) -> (f64, f64) {
            self.0.predict(artwork, &self.1.resolve(cell))
        }
    }

    #[test]
    fn inverse_times_matrix_is_identity() {
        let a = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 2.0];
        let inv = invert_spd(&a, 3);
        for i in 0..3 {
            for j in 0..3 {
                let p: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((p - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12, "({i},{j}) = {p}");
            }
        }
    }

    #[test]
    fn learns_context_effects_and_shares_them() {
        let us_tv = cell("US", "tv", Daypart::Evening);
        let us_mobile = cell("US", "mobile", Daypart::Evening);
        let br_tv = cell("BR", "tv", Daypart::Evening);
        let art: Arc<str> = "a".into();
        // TV plays at 20 %, mobile at 5 %, in the US; Brazil seen only on TV.
        let data =
            [(&art, &us_tv, 1000.0, 200.0), (&art, &us_mobile, 1000.0, 50.0), (&art, &br_tv, 1000.0, 200.0)];
        let model = Fitted::new(&data, 0.1, RIDGE);
        let (tv, _) = model.predict(&art, &us_tv);
        let (mobile, _) = model.predict(&art, &us_mobile);
        assert!((tv - 0.2).abs() < 0.01, "{tv}");
        assert!((mobile - 0.05).abs() < 0.01, "{mobile}");
        // Brazil on mobile was never seen: the device effect carries over.
        let (br_mobile, var) = model.predict(&art, &cell("BR", "mobile", Daypart::Evening));
        assert!((br_mobile - 0.05).abs() < 0.02, "{br_mobile}");
        assert!(var < 0.01);
        // An unseen country is as uncertain as the prior says.
        let (_, unseen) = model.predict(&art, &cell("FR", "tv", Daypart::Evening));
        assert!(unseen >= 1.0);
    }

    #[test]
    fn artworks_of_a_title_share_its_context_effects() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let us = cell("US", "tv", Daypart::Evening);
        let br = cell("BR", "tv", Daypart::Evening);
        // Artwork a: 20 % in the US, 10 % in Brazil; artwork b, seen only in the US, 30 %.
        let data = [(&a, &us, 2000.0, 400.0), (&a, &br, 2000.0, 200.0), (&b, &us, 2000.0, 600.0)];
        let model = Fitted::new(&data, 0.1, RIDGE);
        // b in Brazil: b's offset over a (+10 points) on the title's Brazil effect (−10).
        let (b_br, _) = model.predict(&b, &br);
        assert!((b_br - 0.2).abs() < 0.02, "{b_br}");
        // A new artwork starts from the title, with the artwork's prior uncertainty.
        let c: Arc<str> = "c".into();
        let (c_us, var) = model.predict(&c, &us);
        assert!((0.2..=0.3).contains(&c_us), "{c_us}");
        assert!(var >= 2.0, "two unseen artwork features: {var}");
    }

    #[test]
    fn no_data_predicts_the_prior() {
        let model = LinearTitle::cold(0.07, Ridge { context: 2.0, artwork: 4.0 });
        let (mean, var) =
            model.predict(&"a".into(), &Vocabulary::default().resolve(&cell("US", "tv", Daypart::Night)));
        assert!((mean - 0.07).abs() < 1e-12);
        assert!((var - (0.5 + 3.0 * 0.5 + 2.0 * 0.25)).abs() < 1e-12, "{var}");
    }
}
