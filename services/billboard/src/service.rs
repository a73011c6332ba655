//! The billboard service's state and its two decisions, shared by HTTP and gRPC.
//!
//! Decisions read two immutable snapshots, the catalog and the model, each swapped
//! whole when it changes, so a decision never waits for learning or a reload.
//! [`view`] is what the model endpoint shows of them.

mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use nearline_proto::events::v1 as events;
use nearline_runtime::Config;
use nearline_runtime::auth::Authenticator;
use nearline_storage::Database;

use crate::catalog::{self, Catalog, MAX_CANDIDATES};
use crate::error::{ApiError, FieldError};
use crate::policy::rng::{mix64, unit};
use crate::policy::{
    Arm, BucketFields, Context, Discount, EarlyRead, Model, Params, PolicyKind, Split, Statistics, pick,
    pick_pair, sticky_unit,
};
use crate::store::{self, ModelInfo};
use crate::{metrics, request_id};

pub use view::{ArmView, BucketView, ModelFilter, ModelView, TitleView};

/// A request context as clients send it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextInput {
    /// ISO 3166-1 alpha-2 country code.
    #[serde(default)]
    pub country: String,
    /// Device type token.
    #[serde(default)]
    pub device: String,
    /// Local hour of day, 0..=23.
    pub hour_of_day: Option<i64>,
}

/// `POST /v1/billboard`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillboardRequest {
    /// Who asks.
    #[serde(default)]
    pub member_id: String,
    /// Where and when.
    #[serde(default)]
    pub context: Option<ContextInput>,
    /// Titles to choose from; the pool when empty.
    #[serde(default)]
    pub candidates: Vec<i64>,
}

/// `POST /v1/artwork`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtworkRequest {
    /// Who asks.
    #[serde(default)]
    pub member_id: String,
    /// Where and when.
    #[serde(default)]
    pub context: Option<ContextInput>,
    /// The titles of the row, one artwork each.
    #[serde(default)]
    pub video_ids: Vec<i64>,
}

/// One decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The title.
    pub video_id: i64,
    /// Its artwork.
    pub artwork_id: String,
    /// Probability of exactly this pick.
    pub propensity: f64,
    /// Whether the pick was exploration.
    pub explored: bool,
    /// The serving policy.
    pub policy: PolicyKind,
    /// The model version decided from.
    pub model_version: String,
    /// The block to copy into the impression.
    pub explore: events::Explore,
}

/// A billboard decision.
#[derive(Debug, Clone, PartialEq)]
pub struct BillboardChoice {
    /// The request id the impression is logged with.
    pub request_id: String,
    /// The pick.
    pub choice: Choice,
    /// The candidate titles.
    pub candidates: Vec<i64>,
}

/// An artwork decision per title of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtworkChoices {
    /// The request id the row's impressions are logged with.
    pub request_id: String,
    /// One per title, in request order.
    pub choices: Vec<Choice>,
}

/// Settings derived from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Policy tunables.
    pub params: Params,
    /// Traffic split.
    pub split: Split,
    /// Artwork stickiness, ms.
    pub stickiness_ms: i64,
}

impl Settings {
    /// From a validated configuration.
    pub fn from_config(config: &Config) -> Self {
        let b = &config.billboard;
        let shares: Vec<(PolicyKind, f64)> = b
            .policy_mix
            .iter()
            .filter_map(|(name, share)| Some((PolicyKind::parse(name)?, *share)))
            .collect();
        let params = Params {
            discount: Discount::new(b.half_life.as_millis() as i64),
            bucket_fields: BucketFields::parse(b.bucket_fields.iter().map(String::as_str))
                .unwrap_or(BucketFields::ALL),
            prior_strength: b.prior_strength,
            ridge: 1.0,
            linucb_alpha: b.linucb_alpha,
            ucb_c: b.ucb_c,
            epsilon: b.epsilon,
            min_propensity: b.exploration_floor,
            new_title_impressions: b.new_title_impressions,
            new_title_floor: b.new_title_floor,
            thompson_draws: b.thompson_draws,
            ..Params::default()
        };
        Self { params, split: Split::new(&shares), stickiness_ms: b.artwork_stickiness.as_millis() as i64 }
    }
}

/// The service's state; cheap to clone.
#[derive(Debug, Clone)]
pub struct Billboard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    database: Database,
    auth: Authenticator,
    catalog: RwLock<Arc<Catalog>>,
    model: RwLock<Arc<Model>>,
    learned: Mutex<Learned>,
    /// Early reads from insights, by title (see [`crate::priors`]).
    early_reads: Mutex<HashMap<i64, EarlyRead>>,
}

/// What the learner owns; behind one lock so the model is rebuilt from a consistent
/// pair of statistics and catalog.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    pub(crate) stats: Statistics,
    pub(crate) info: ModelInfo,
}

impl Billboard {
    /// Loads the catalog and the learned state and builds the first model.
    pub async fn open(
        config: &Config,
        database: Database,
        group: &str,
        topic: &str,
    ) -> Result<Self, ApiError> {
        metrics::describe();
        let settings = Settings::from_config(config);
        let catalog = Catalog::load(&database).await.map_err(ApiError::Database)?;
        let state = store::load(&database, group, topic).await.map_err(ApiError::Database)?;
        let model =
            Model::build(settings.params, state.info.version, &state.stats, Arc::new(catalog.facts()));
        metrics::model(
            state.info.version,
            state.stats.arms().count(),
            state.stats.sorted().len(),
            state.info.last_event_ms,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                database,
                auth: Authenticator::new(&config.auth),
                catalog: RwLock::new(Arc::new(catalog)),
                model: RwLock::new(Arc::new(model)),
                learned: Mutex::new(Learned { stats: state.stats, info: state.info }),
                early_reads: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub(crate) fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    pub(crate) fn database(&self) -> &Database {
        &self.inner.database
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.catalog.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The current model.
    pub fn model(&self) -> Arc<Model> {
        self.inner.model.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The learned statistics and model info (for the learner and the model endpoint).
    pub(crate) fn learned(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.inner.learned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The catalog's facts with the early reads from insights.
    fn facts(&self) -> HashMap<i64, crate::policy::TitleFacts> {
        let mut facts = self.catalog().facts();
        let reads = self.inner.early_reads.lock().unwrap_or_else(|e| e.into_inner());
        for (id, read) in reads.iter() {
            if let Some(f) = facts.get_mut(id) {
                f.early_read = Some(*read);
            }
        }
        facts
    }

    /// Records a title's early read; whether it changed.
    pub(crate) fn set_early_read(&self, video_id: i64, read: Option<EarlyRead>) -> bool {
        let mut reads = self.inner.early_reads.lock().unwrap_or_else(|e| e.into_inner());
        let previous = match read {
            Some(read) => reads.insert(video_id, read),
            None => reads.remove(&video_id),
        };
        previous != read
    }

    /// Rebuilds the model after early reads changed.
    pub(crate) fn rebuild_after_priors(&self) {
        let learned = self.learned();
        self.rebuild_model(&learned, &std::collections::HashSet::new());
    }

    /// Rebuilds the model after `touched` arms changed (or the catalog did).
    pub(crate) fn rebuild_model(&self, learned: &Learned, touched: &std::collections::HashSet<Arm>) {
        let previous = self.model();
        let facts = Arc::new(self.facts());
        let model = Model::rebuild(
            Some(&previous),
            self.inner.settings.params,
            learned.info.version,
            &learned.stats,
            facts,
            touched,
        );
        metrics::model(
            learned.info.version,
            learned.stats.arms().count(),
            model_cells(&learned.stats),
            learned.info.last_event_ms,
        );
        *self.inner.model.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(model);
    }

    /// Replaces the learned state with `state` as saved (a learner taking over, or an
    /// instance following the learner) and rebuilds the whole model from it.
    pub(crate) fn install(&self, state: store::State) {
        let mut learned = self.learned();
        learned.stats = state.stats;
        learned.info = state.info;
        let model = Model::build(
            self.inner.settings.params,
            learned.info.version,
            &learned.stats,
            Arc::new(self.catalog().facts()),
        );
        metrics::model(
            learned.info.version,
            learned.stats.arms().count(),
            model_cells(&learned.stats),
            learned.info.last_event_ms,
        );
        *self.inner.model.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(model);
    }

    /// Reloads the catalog; rebuilds the model when it changed.
    pub async fn reload_catalog(&self) -> Result<(), sqlx::Error> {
        let catalog = Catalog::load(&self.inner.database).await?;
        if *self.catalog() != catalog {
            *self.inner.catalog.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(catalog);
            let learned = self.learned();
            self.rebuild_model(&learned, &std::collections::HashSet::new());
        }
        Ok(())
    }

    /// Replaces the pool, then reloads the catalog.
    pub async fn put_pool(&self, video_ids: &[i64]) -> Result<(), ApiError> {
        self.reload_catalog().await.map_err(ApiError::Database)?;
        catalog::put_pool(&self.inner.database, &self.catalog(), video_ids).await?;
        self.reload_catalog().await.map_err(ApiError::Database)
    }

    /// Chooses the billboard (title, artwork) pair.
    pub fn choose_billboard(&self, request: &BillboardRequest) -> Result<BillboardChoice, ApiError> {
        let start = Instant::now();
        let context = check_request(&request.member_id, request.context.as_ref())?;
        let catalog = self.catalog();
        let (field, ids) = if request.candidates.is_empty() {
            if catalog.pool.is_empty() {
                return Err(ApiError::field(
                    "candidates",
                    "no candidates given and the billboard pool is empty (PUT /v1/billboard/pool)",
                ));
            }
            ("pool", catalog.pool.clone())
        } else {
            ("candidates", check_count("candidates", &request.candidates)?.to_vec())
        };
        let arms = catalog.arms(field, &ids)?;
        let model = self.model();
        let policy = self.inner.settings.split.policy(&request.member_id);
        let probabilities = model.probabilities(policy, &context.cell(), &arms);
        let random = uuid::Uuid::new_v4().as_u128();
        let request_id = request_id::mint(random);
        let now = chrono::Utc::now().timestamp_millis();
        let stickiness = self.inner.settings.stickiness_ms;
        let decision =
            pick_pair(&probabilities, &arms, unit(mix64(random as u64 ^ (random >> 64) as u64)), |video| {
                sticky_unit(&request.member_id, video, now, stickiness)
            });
        let arm = &arms[decision.index];
        let seen = Seen { candidates: ids.clone(), artworks: candidate_artworks(&arms), context: &context };
        let choice = choice(arm, decision.propensity, decision.explored, policy, &model, seen);
        metrics::decision("billboard", policy.as_str(), decision.explored);
        metrics::latency("billboard", start.elapsed());
        Ok(BillboardChoice { request_id, choice, candidates: ids })
    }

    /// Chooses one artwork for each title of a row.
    pub fn choose_artwork(&self, request: &ArtworkRequest) -> Result<ArtworkChoices, ApiError> {
        let start = Instant::now();
        let context = check_request(&request.member_id, request.context.as_ref())?;
        if request.video_ids.is_empty() {
            return Err(ApiError::field("video_ids", "must hold at least one title"));
        }
        let ids = check_count("video_ids", &request.video_ids)?;
        let catalog = self.catalog();
        // Validates every title at once, so one answer names every bad field.
        catalog.arms("video_ids", ids)?;
        let model = self.model();
        let policy = self.inner.settings.split.policy(&request.member_id);
        let cell = context.cell();
        let request_id = request_id::mint(uuid::Uuid::new_v4().as_u128());
        let now = chrono::Utc::now().timestamp_millis();
        let choices = ids
            .iter()
            .map(|id| {
                let arms = catalog.arms("video_ids", std::slice::from_ref(id)).unwrap_or_default();
                let probabilities = model.probabilities(policy, &cell, &arms);
                let d = pick(
                    &probabilities,
                    sticky_unit(&request.member_id, *id, now, self.inner.settings.stickiness_ms),
                );
                metrics::decision("artwork", policy.as_str(), d.explored);
                let seen =
                    Seen { candidates: vec![*id], artworks: candidate_artworks(&arms), context: &context };
                choice(&arms[d.index], d.propensity, d.explored, policy, &model, seen)
            })
            .collect();
        metrics::latency("artwork", start.elapsed());
        Ok(ArtworkChoices { request_id, choices })
    }
}

fn model_cells(stats: &Statistics) -> usize {
    stats.arms().map(|(_, cells)| cells.len()).sum()
}

/// What the policy saw, for the `explore` block: enough to replay the decision offline.
struct Seen<'a> {
    candidates: Vec<i64>,
    artworks: Vec<events::CandidateArtworks>,
    context: &'a Context,
}

/// The artworks of each title of `arms` (adjacent per title), in the order the policy
/// saw them.
fn candidate_artworks(arms: &[Arm]) -> Vec<events::CandidateArtworks> {
    let mut out: Vec<events::CandidateArtworks> = Vec::new();
    for arm in arms {
        match out.last_mut() {
            Some(last) if last.video_id == arm.video_id => last.artwork_ids.push(arm.artwork_id.to_string()),
            _ => out.push(events::CandidateArtworks {
                video_id: arm.video_id,
                artwork_ids: vec![arm.artwork_id.to_string()],
            }),
        }
    }
    out
}

fn choice(
    arm: &Arm,
    propensity: f64,
    explored: bool,
    policy: PolicyKind,
    model: &Model,
    seen: Seen<'_>,
) -> Choice {
    let model_version = model.version().to_string();
    Choice {
        video_id: arm.video_id,
        artwork_id: arm.artwork_id.to_string(),
        propensity,
        explored,
        policy,
        model_version: model_version.clone(),
        explore: events::Explore {
            policy: policy.as_str().to_string(),
            model_version,
            propensity,
            explored,
            candidates: seen.candidates,
            candidate_artworks: seen.artworks,
            context: Some(events::ExploreContext {
                country: seen.context.country.to_string(),
                device: seen.context.device.to_string(),
                hour_of_day: seen.context.hour_of_day,
            }),
        },
    }
}

fn check_count<'a>(field: &str, ids: &'a [i64]) -> Result<&'a [i64], ApiError> {
    if ids.len() > MAX_CANDIDATES {
        return Err(ApiError::field(
            field,
            format!("holds {} titles; at most {MAX_CANDIDATES} are accepted", ids.len()),
        ));
    }
    Ok(ids)
}

/// Checks the member and context, with every problem.
fn check_request(member_id: &str, context: Option<&ContextInput>) -> Result<Context, ApiError> {
    let mut problems = Vec::new();
    if let Err(reason) = nearline_ingest::validate::id(member_id) {
        problems.push(FieldError::new("member_id", reason));
    }
    let Some(context) = context else {
        problems.push(FieldError::new("context", "is required: {\"country\", \"device\", \"hour_of_day\"}"));
        return Err(ApiError::Invalid(problems));
    };
    if !nearline_ingest::validate::is_country(&context.country) {
        problems.push(FieldError::new(
            "context.country",
            format!("must be an ISO 3166-1 alpha-2 code in upper case (e.g. US), got {:?}", context.country),
        ));
    }
    if let Err(reason) = nearline_ingest::validate::token(&context.device) {
        problems.push(FieldError::new("context.device", reason));
    }
    let hour = match context.hour_of_day {
        Some(h @ 0..=23) => h as u32,
        Some(h) => {
            problems.push(FieldError::new("context.hour_of_day", format!("must be 0..=23, got {h}")));
            0
        }
        None => {
            problems.push(FieldError::new("context.hour_of_day", "is required (local hour, 0..=23)"));
            0
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::Invalid(problems));
    }
    Ok(Context {
        country: context.country.as_str().into(),
        device: context.device.as_str().into(),
        hour_of_day: hour,
    })
}
