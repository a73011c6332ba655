//! The contextual linear model behind the `linucb` policy: per arm, a ridge regression
//! of the reward on the context's one-hot features (country, device, daypart, plus an
//! intercept), so what an arm learns in one context is shared with every context that
//! has a field in common with it.
//!
//! The regression is fitted from the per-cell counters, which are its sufficient
//! statistics: every impression of an arm in a cell has the same feature vector, so
//! `A = λI + Σ w·xxᵀ` and `b = λ·m·e₀ + Σ r·x` over cells, with `m` the arm's prior mean
//! (its title's or the title's genre's take rate), which is how a new arm starts from
//! what titles like it do rather than from zero.

use std::collections::HashMap;
use std::sync::Arc;

use super::context::{Cell, Daypart};

/// One feature of the context.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Feature {
    Country(Arc<str>),
    Device(Arc<str>),
    Daypart(Daypart),
}

/// A fitted per-arm ridge regression: the coefficients and the inverse design matrix.
#[derive(Debug, Clone)]
pub struct LinearArm {
    /// Feature index (after the intercept at 0).
    index: HashMap<Feature, usize>,
    /// `A⁻¹`, row-major `d × d`.
    a_inv: Vec<f64>,
    /// `θ = A⁻¹ b`.
    theta: Vec<f64>,
    /// Ridge strength; also the prior precision of a feature the arm never saw.
    lambda: f64,
}

impl LinearArm {
    /// Fits the model from `(cell, weight, reward)` triples with prior mean `prior_mean`.
    pub fn fit<'a>(
        cells: impl Iterator<Item = (&'a Cell, f64, f64)> + Clone,
        prior_mean: f64,
        lambda: f64,
    ) -> Self {
        let mut index = HashMap::new();
        for (cell, _, _) in cells.clone() {
            for feature in features(cell) {
                let next = index.len() + 1;
                index.entry(feature).or_insert(next);
            }
        }
        let d = index.len() + 1;
        let mut a = vec![0.0; d * d];
        for i in 0..d {
            a[i * d + i] = lambda;
        }
        let mut b = vec![0.0; d];
        b[0] = lambda * prior_mean;
        for (cell, weight, reward) in cells {
            let active = active(&index, cell);
            for &i in active.iter().flatten() {
                b[i] += reward;
                for &j in active.iter().flatten() {
                    a[i * d + j] += weight;
                }
            }
        }
        let a_inv = invert_spd(&a, d);
        let theta = (0..d).map(|i| (0..d).map(|j| a_inv[i * d + j] * b[j]).sum()).collect();
        Self { index, a_inv, theta, lambda }
    }

    /// Predicted mean reward in `cell` and its variance (`xᵀA⁻¹x`). Features the arm never
    /// saw add nothing to the mean and their prior variance `1/λ` to the variance.
    pub fn predict(&self, cell: &Cell) -> (f64, f64) {
        let active = active(&self.index, cell);
        let d = self.theta.len();
        let mut mean = 0.0;
        let mut variance = 0.0;
        for slot in &active {
            match slot {
                Some(i) => {
                    mean += self.theta[*i];
                    for j in active.iter().flatten() {
                        variance += self.a_inv[i * d + j];
                    }
                }
                None => variance += 1.0 / self.lambda,
            }
        }
        (mean, variance.max(0.0))
    }
}

fn features(cell: &Cell) -> [Feature; 3] {
    [
        Feature::Country(cell.country.clone()),
        Feature::Device(cell.device.clone()),
        Feature::Daypart(cell.daypart),
    ]
}

/// Indices of the intercept and the cell's features (`None`: not in the index).
fn active(index: &HashMap<Feature, usize>, cell: &Cell) -> [Option<usize>; 4] {
    let [c, d, p] = features(cell);
    [Some(0), index.get(&c).copied(), index.get(&d).copied(), index.get(&p).copied()]
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
        // TV plays at 20 %, mobile at 5 %, in the US; Brazil seen only on TV.
        let data = [(&us_tv, 1000.0, 200.0), (&us_mobile, 1000.0, 50.0), (&br_tv, 1000.0, 200.0)];
        let model = LinearArm::fit(data.iter().copied(), 0.1, 1.0);
        let (tv, _) = model.predict(&us_tv);
        let (mobile, _) = model.predict(&us_mobile);
        assert!((tv - 0.2).abs() < 0.01, "{tv}");
        assert!((mobile - 0.05).abs() < 0.01, "{mobile}");
        // Brazil on mobile was never seen: the device effect carries over.
        let (br_mobile, var) = model.predict(&cell("BR", "mobile", Daypart::Evening));
        assert!((br_mobile - 0.05).abs() < 0.02, "{br_mobile}");
        assert!(var < 0.01);
        // An unseen country is as uncertain as the prior says.
        let (_, unseen) = model.predict(&cell("FR", "tv", Daypart::Evening));
        assert!(unseen >= 1.0);
    }

    #[test]
    fn no_data_predicts_the_prior() {
        let model = LinearArm::fit(std::iter::empty(), 0.07, 2.0);
        let (mean, var) = model.predict(&cell("US", "tv", Daypart::Night));
        assert!((mean - 0.07).abs() < 1e-12);
        assert!((var - (0.5 + 3.0 * 0.5)).abs() < 1e-12);
    }
}
