//! The direct reward model of the doubly robust estimator, fitted out of fold.
//!
//! Decisions are split into folds by a hash of their request id; the prediction for a
//! decision comes from a model fitted on the other folds only, so its own reward never
//! informs the correction it is part of (cross-fitting keeps DR unbiased when the model
//! is wrong and its variance honest when it overfits). The model is billboard's linear
//! one, per (title, artwork) a ridge regression on one-hot country, device and daypart
//! with the prior ladder of titles like it, fitted on undiscounted counts.

use std::collections::HashMap;
use std::sync::Arc;

use nearline_billboard::policy::rng::stable_hash;
use nearline_billboard::policy::{Discount, Model, Observation, Params, Statistics};

use crate::record::{Decision, Logs};

/// Folds of the cross-fitting.
pub const FOLDS: usize = 5;

/// One model per fold, each fitted without that fold, and its predictions for every
/// (fold, candidates, cell) the logs hold: few distinct ones, shared by many decisions.
#[derive(Debug)]
pub struct DirectModel {
    /// Each decision's fold.
    folds: Vec<u8>,
    predictions: HashMap<(u8, u32, u32), Arc<[f64]>>,
}

/// The fold of a decision.
pub fn fold(decision: &Decision) -> usize {
    (stable_hash(&[decision.request_id.as_bytes(), b"dr-fold"]) % FOLDS as u64) as usize
}

impl DirectModel {
    /// Fits the fold models on every logged decision.
    pub fn fit(logs: &Logs, params: Params) -> Self {
        let params = Params { discount: Discount::new(0), ..params };
        let folds: Vec<u8> = logs.decisions.iter().map(|d| fold(d) as u8).collect();
        let mut stats: Vec<Statistics> = (0..FOLDS).map(|_| Statistics::default()).collect();
        for (d, &own) in logs.decisions.iter().zip(&folds) {
            let o = Observation {
                request_id: String::new(),
                arm: d.arm.clone(),
                cell: logs.cell(d).clone(),
                played: d.reward > 0.0,
                time_ms: d.time_ms,
            };
            for (k, s) in stats.iter_mut().enumerate() {
                if k != usize::from(own) {
                    s.observe(&o, params.discount);
                }
            }
        }
        let facts = Arc::new(logs.facts.clone());
        let models: Vec<Model> = stats.iter().map(|s| Model::build(params, 0, s, facts.clone())).collect();
        let mut predictions = HashMap::new();
        for (d, &k) in logs.decisions.iter().zip(&folds) {
            predictions.entry((k, d.set, d.cell)).or_insert_with(|| {
                models[usize::from(k)]
                    .linear_predictions(logs.cell(d), logs.candidates(d))
                    .into_iter()
                    .map(|(mean, _)| mean.clamp(0.0, 1.0))
                    .collect()
            });
        }
        Self { folds, predictions }
    }

    /// Predicted take rate of each candidate of decision `index`, from the model of the
    /// other folds.
    pub fn predict(&self, logs: &Logs, index: usize) -> &[f64] {
        let d = &logs.decisions[index];
        &self.predictions[&(self.folds[index], d.set, d.cell)]
    }
}
