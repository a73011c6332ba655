//! What `GET /v1/billboard/model` and gRPC `GetModel` answer: per context cell and arm
//! the statistics applied and what the policies make of them, per title its prior.

use std::collections::HashMap;

use super::Billboard;
use crate::error::{ApiError, FieldError};
use crate::policy::{Cell, Daypart, EarlyRead, PolicyKind};
use crate::store::ModelInfo;

/// Which cells the view shows; an empty or absent value matches every cell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelFilter {
    /// Only cells of this country.
    pub country: Option<String>,
    /// Only cells of this device.
    pub device: Option<String>,
}

impl ModelFilter {
    /// The filter's values, each checked as a decision's context is, so a typo is an
    /// error naming the field rather than an empty view.
    fn check(&self) -> Result<(Option<&str>, Option<&str>), ApiError> {
        let (country, device) = (given(&self.country), given(&self.device));
        let mut problems = Vec::new();
        if let Some(c) = country.filter(|c| !nearline_ingest::validate::is_country(c)) {
            problems.push(FieldError::new(
                "country",
                format!("must be an ISO 3166-1 alpha-2 code in upper case (e.g. US), got {c:?}"),
            ));
        }
        if let Some(Err(reason)) = device.map(nearline_ingest::validate::token) {
            problems.push(FieldError::new("device", reason));
        }
        if problems.is_empty() { Ok((country, device)) } else { Err(ApiError::Invalid(problems)) }
    }
}

/// A filter value, when it is not empty.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.is_empty())
}

impl Billboard {
    /// Per cell and arm, what the model holds, filtered by `filter`'s country and
    /// device (each checked as a decision's context is).
    pub fn model_view(&self, filter: &ModelFilter) -> Result<ModelView, ApiError> {
        let (country, device) = filter.check()?;
        let model = self.model();
        let catalog = self.catalog();
        let learned = self.learned();
        let main_policy = self
            .inner
            .settings
            .split
            .shares()
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(PolicyKind::Uniform, |(p, _)| p);
        let pool = catalog.arms("pool", &catalog.pool).unwrap_or_default();
        let mut cells: HashMap<Cell, Vec<ArmView>> = HashMap::new();
        for (arm, arm_cells) in learned.stats.arms() {
            for (cell, counter) in arm_cells {
                if country.is_some_and(|c| c != &*cell.country) || device.is_some_and(|d| d != &*cell.device)
                {
                    continue;
                }
                cells.entry(cell.clone()).or_default().push(ArmView {
                    video_id: arm.video_id,
                    artwork_id: arm.artwork_id.to_string(),
                    impressions: counter.impressions,
                    plays: counter.plays,
                    posterior_mean: model.bucket_means(cell, std::slice::from_ref(arm))[0],
                    linear_mean: model.linear_predictions(cell, std::slice::from_ref(arm))[0].0,
                    pick_probability: None,
                });
            }
        }
        let mut buckets: Vec<BucketView> = cells
            .into_iter()
            .map(|(cell, mut arms)| {
                if !pool.is_empty() {
                    let p = model.probabilities(main_policy, &cell, &pool);
                    for view in &mut arms {
                        view.pick_probability = pool
                            .iter()
                            .position(|a| a.video_id == view.video_id && *a.artwork_id == *view.artwork_id)
                            .map(|i| p.probs[i]);
                    }
                }
                arms.sort_by(|a, b| (a.video_id, &a.artwork_id).cmp(&(b.video_id, &b.artwork_id)));
                BucketView {
                    country: cell.country.to_string(),
                    device: cell.device.to_string(),
                    daypart: cell.daypart,
                    arms,
                }
            })
            .collect();
        buckets.sort_by(|a, b| (&a.country, &a.device, a.daypart).cmp(&(&b.country, &b.device, b.daypart)));
        let reads = self.inner.early_reads.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut titles: Vec<TitleView> = catalog
            .titles
            .keys()
            .map(|&video_id| TitleView {
                video_id,
                outcomes: model.title_impressions(video_id),
                prior_mean: model.title_prior(video_id),
                early_read: reads.get(&video_id).copied(),
            })
            .collect();
        titles.sort_by_key(|t| t.video_id);
        Ok(ModelView { info: learned.info, pick_policy: main_policy, buckets, titles })
    }
}

/// What `GET /v1/billboard/model` answers.
#[derive(Debug, Clone)]
pub struct ModelView {
    /// Version and learning times.
    pub info: ModelInfo,
    /// The policy whose pick probabilities are shown (the largest share).
    pub pick_policy: PolicyKind,
    /// Per context cell.
    pub buckets: Vec<BucketView>,
    /// Per catalog title: outcomes and prior.
    pub titles: Vec<TitleView>,
}

/// One title of the model view.
#[derive(Debug, Clone)]
pub struct TitleView {
    /// Title.
    pub video_id: i64,
    /// Outcomes applied, undiscounted.
    pub outcomes: u64,
    /// The prior its arms start from (own rate shrunk to its early read, genre or global).
    pub prior_mean: f64,
    /// Its early read from insights, when one was fetched.
    pub early_read: Option<EarlyRead>,
}

/// One context cell of the model view.
#[derive(Debug, Clone)]
pub struct BucketView {
    /// Country.
    pub country: String,
    /// Device.
    pub device: String,
    /// Daypart.
    pub daypart: Daypart,
    /// Its arms.
    pub arms: Vec<ArmView>,
}

/// One arm in one cell.
#[derive(Debug, Clone)]
pub struct ArmView {
    /// Title.
    pub video_id: i64,
    /// Artwork.
    pub artwork_id: String,
    /// Outcomes applied.
    pub impressions: u64,
    /// Played outcomes applied.
    pub plays: u64,
    /// Posterior mean take rate in the cell's bucket.
    pub posterior_mean: f64,
    /// LinUCB's predicted take rate in the cell.
    pub linear_mean: f64,
    /// Current probability of the pair for a pool request in this cell, when it is in the pool.
    pub pick_probability: Option<f64>,
}
