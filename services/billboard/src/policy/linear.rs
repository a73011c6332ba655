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

use std::collections::HashMap;
use std::sync::Arc;

use super::context::{Cell, Daypart};

/// One feature of an (artwork, context) pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Feature {
    Country(Arc<str>),
    Device(Arc<str>),
    Daypart(Daypart),
    Artwork(Arc<str>),
    ArtworkDevice(Arc<str>, Arc<str>),
}

impl Feature {
    fn is_artwork(&self) -> bool {
        matches!(self, Feature::Artwork(_) | Feature::ArtworkDevice(..))
    }
}

/// Features active for one (artwork, cell): the intercept and these five.
const FEATURES: usize = 5;

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

impl Ridge {
    fn of(&self, feature: &Feature) -> f64 {
        if feature.is_artwork() { self.artwork } else { self.context }
    }
}

/// A title's fitted ridge regression: the coefficients and the inverse design matrix.
#[derive(Debug, Clone)]
pub struct LinearTitle {
    /// Feature index (after the intercept at 0).
    index: HashMap<Feature, usize>,
    /// `A⁻¹`, row-major `d × d`.
    a_inv: Vec<f64>,
    /// `θ = A⁻¹ b`.
    theta: Vec<f64>,
    /// Ridge strengths; also the prior precision of a feature the title never saw.
    ridge: Ridge,
    /// The prior mean of the intercept.
    prior_mean: f64,
}

impl LinearTitle {
    /// Fits the model from `(artwork, cell, weight, reward)` with prior mean `prior_mean`.
    pub fn fit<'a>(
        observations: impl Iterator<Item = (&'a Arc<str>, &'a Cell, f64, f64)> + Clone,
        prior_mean: f64,
        ridge: Ridge,
    ) -> Self {
        let mut index = HashMap::new();
        let mut ridges = vec![ridge.context];
        for (artwork, cell, _, _) in observations.clone() {
            for feature in features(artwork, cell) {
                let next = index.len() + 1;
                index.entry(feature).or_insert_with_key(|f| {
                    ridges.push(ridge.of(f));
                    next
                });
            }
        }
        let d = index.len() + 1;
        let mut a = vec![0.0; d * d];
        for (i, l) in ridges.iter().enumerate() {
            a[i * d + i] = *l;
        }
        let mut b = vec![0.0; d];
        b[0] = ridge.context * prior_mean;
        for (artwork, cell, weight, reward) in observations {
            let active = active(&index, artwork, cell);
            for &i in active.iter().flatten() {
                b[i] += reward;
                for &j in active.iter().flatten() {
                    a[i * d + j] += weight;
                }
            }
        }
        let a_inv = invert_spd(&a, d);
        let theta = (0..d).map(|i| (0..d).map(|j| a_inv[i * d + j] * b[j]).sum()).collect();
        Self { index, a_inv, theta, ridge, prior_mean }
    }

    /// The model of a title with no outcomes yet.
    pub fn cold(prior_mean: f64, ridge: Ridge) -> Self {
        Self::fit(std::iter::empty(), prior_mean, ridge)
    }

    /// The prior mean it was fitted with.
    pub fn prior_mean(&self) -> f64 {
        self.prior_mean
    }

    /// Predicted mean reward of `artwork` in `cell` and its variance (`xᵀA⁻¹x`).
    /// Features the title never saw add nothing to the mean and their prior variance
    /// `1/λ` to the variance.
    pub fn predict(&self, artwork: &Arc<str>, cell: &Cell) -> (f64, f64) {
        let d = self.theta.len();
        let mut active = [None; FEATURES + 1];
        let mut variance = 0.0;
        active[0] = Some(0);
        for (slot, feature) in active[1..].iter_mut().zip(features(artwork, cell)) {
            *slot = self.index.get(&feature).copied();
            if slot.is_none() {
                variance += 1.0 / self.ridge.of(&feature);
            }
        }
        let mut mean = 0.0;
        for i in active.iter().flatten() {
            mean += self.theta[*i];
            for j in active.iter().flatten() {
                variance += self.a_inv[i * d + j];
            }
        }
        (mean, variance.max(0.0))
    }
}

fn features(artwork: &Arc<str>, cell: &Cell) -> [Feature; FEATURES] {
    [
        Feature::Country(cell.country.clone()),
        Feature::Device(cell.device.clone()),
        Feature::Daypart(cell.daypart),
        Feature::Artwork(artwork.clone()),
        Feature::ArtworkDevice(artwork.clone(), cell.device.clone()),
    ]
}

/// Indices of the intercept and the pair's features (`None`: not in the index).
fn active(index: &HashMap<Feature, usize>, artwork: &Arc<str>, cell: &Cell) -> [Option<usize>; FEATURES + 1] {
    let mut out = [Some(0); FEATURES + 1];
    for (slot, feature) in out[1..].iter_mut().zip(features(artwork, cell)) {
        *slot = index.get(&feature).copied();
    }
    out
}

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
        let model = LinearTitle::fit(data.iter().copied(), 0.1, RIDGE);
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
        let model = LinearTitle::fit(data.iter().copied(), 0.1, RIDGE);
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
        let (mean, var) = model.predict(&"a".into(), &cell("US", "tv", Daypart::Night));
        assert!((mean - 0.07).abs() < 1e-12);
        assert!((var - (0.5 + 3.0 * 0.5 + 2.0 * 0.25)).abs() < 1e-12, "{var}");
    }
}
