//! The learning history: per serving policy, canvas and 30-minute epoch of impression
//! time, the outcomes the learner applied, their plays and how many were explored picks
//! (`billboard_history`), and `GET /v1/billboard/history`, which answers it with the
//! model version and the learning lag.
//!
//! The learner tallies only the outcomes it applies (the first per request and title)
//! and writes the tally in the transaction that saves the statistics and the offsets,
//! so every outcome is counted here exactly once, as it is in the statistics; the take
//! rate per policy over time is then a plain read, without a second consumer.
//!
//! The learning lag is measured in event time: how far the newest outcome learned from
//! trails the newest event attribution has read (the largest watermark of its consumer
//! group). Live, that event clock is the wall clock to within seconds; in a replay or
//! `nearline demo`'s simulated time it is the stream's own clock, so the lag stays
//! meaningful (outcomes trail impressions by the reward window and its grace).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Json;
use axum::routing::get;
use nearline_proto::events::v1 as pb;
use prost::Message as _;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::policy::Observation;
use crate::service::Billboard;
use crate::store::fetch_all;

/// Width of a history epoch: attribution's default epoch, so the chart lines up with
/// insights' counts.
pub const EPOCH_MS: i64 = 30 * 60_000;

/// What the history needs of an outcome beyond its observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The policy that served the impression.
    pub policy: String,
    /// Where it was shown (`billboard`, `row`, ...).
    pub canvas: String,
    /// Whether the pick was exploration.
    pub explored: bool,
}

/// The tag of an outcome record (decoded again: the observation keeps only what the
/// policies learn from).
pub fn tag(payload: &[u8]) -> Option<Tag> {
    let o = pb::Outcome::decode(payload).ok()?;
    let explore = o.explore.unwrap_or_default();
    Some(Tag { policy: explore.policy, canvas: o.canvas, explored: explore.explored })
}

/// Counts of one (policy, canvas, epoch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Outcomes applied.
    pub outcomes: i64,
    /// Of which played.
    pub plays: i64,
    /// Outcomes of explored picks.
    pub explored: i64,
    /// Of which played.
    pub explored_plays: i64,
}

/// The applied outcomes of one flush, by (policy, canvas, epoch).
#[derive(Debug, Default)]
pub struct Tally {
    /// The counts to add.
    pub rows: BTreeMap<(String, String, i64), Counts>,
}

impl Tally {
    /// Adds one applied outcome (`None`: an outcome without a tag, which is not tallied).
    pub fn add(&mut self, tag: Option<&Tag>, o: &Observation) {
        let Some(tag) = tag else { return };
        let epoch = o.time_ms.div_euclid(EPOCH_MS) * EPOCH_MS;
        let c = self.rows.entry((tag.policy.clone(), tag.canvas.clone(), epoch)).or_default();
        c.outcomes += 1;
        c.plays += i64::from(o.played);
        c.explored += i64::from(tag.explored);
        c.explored_plays += i64::from(tag.explored && o.played);
    }
}

/// Adds the tally's counts in the learner's transaction `$tx` (either backend).
macro_rules! save_tally {
    ($tx:ident, $tally:expr) => {
        for ((policy, canvas, epoch), c) in &$tally.rows {
            sqlx::query(
                "INSERT INTO billboard_history \
                 (policy, canvas, epoch_ms, outcomes, plays, explored, explored_plays) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (policy, canvas, epoch_ms) DO UPDATE SET \
                 outcomes = billboard_history.outcomes + excluded.outcomes, \
                 plays = billboard_history.plays + excluded.plays, \
                 explored = billboard_history.explored + excluded.explored, \
                 explored_plays = billboard_history.explored_plays + excluded.explored_plays",
            )
            .bind(policy)
            .bind(canvas)
            .bind(*epoch)
            .bind(c.outcomes)
            .bind(c.plays)
            .bind(c.explored)
            .bind(c.explored_plays)
            .execute(&mut *$tx)
            .await?;
        }
    };
}
pub(crate) use save_tally;

type Row = (String, String, i64, i64, i64, i64, i64);

/// Every stored row, optionally of one canvas, by policy, canvas and epoch.
pub async fn load(
    billboard: &Billboard,
    canvas: Option<&str>,
) -> Result<Vec<(String, String, i64, Counts)>, sqlx::Error> {
    let rows: Vec<Row> = fetch_all!(
        billboard.database(),
        Row,
        "SELECT policy, canvas, epoch_ms, outcomes, plays, explored, explored_plays FROM billboard_history \
         WHERE ($1 = '' OR canvas = $1) ORDER BY policy, canvas, epoch_ms",
        canvas.unwrap_or("")
    )?;
    Ok(rows
        .into_iter()
        .map(|(p, c, e, outcomes, plays, explored, explored_plays)| {
            (p, c, e, Counts { outcomes, plays, explored, explored_plays })
        })
        .collect())
}

/// The newest event time attribution's consumer group `group` has read (its largest
/// topic-partition watermark), if any.
pub async fn event_clock(billboard: &Billboard, group: &str) -> Result<Option<i64>, sqlx::Error> {
    let max: Vec<(Option<i64>,)> = fetch_all!(
        billboard.database(),
        (Option<i64>,),
        "SELECT MAX(watermark_ms) FROM partition_progress WHERE consumer_group = $1 AND watermark_ms > $2",
        group,
        nearline_storage::progress::NO_WATERMARK
    )?;
    Ok(max.into_iter().next().and_then(|(m,)| m))
}

#[derive(Clone)]
struct HistoryState {
    billboard: Billboard,
    attribution_group: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    canvas: Option<String>,
}

/// `GET /v1/billboard/history`, behind the service's authenticator; `attribution_group`
/// is the consumer group whose watermarks make the event clock.
pub fn router(billboard: Billboard, attribution_group: String) -> Router {
    let auth = billboard.auth().clone();
    Router::new()
        .route("/v1/billboard/history", get(history))
        .with_state(HistoryState { billboard, attribution_group })
        .layer(axum::middleware::from_fn_with_state(auth, nearline_runtime::auth::Authenticator::layer))
}

fn time(ms: i64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or(Value::Null, |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into())
}

fn rate(plays: i64, outcomes: i64) -> Value {
    if outcomes > 0 { json!(plays as f64 / outcomes as f64) } else { Value::Null }
}

async fn history(
    State(state): State<HistoryState>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let canvas = q.canvas.as_deref().filter(|c| !c.is_empty());
    let rows = load(&state.billboard, canvas).await.map_err(ApiError::Database)?;
    let clock = event_clock(&state.billboard, &state.attribution_group).await.map_err(ApiError::Database)?;
    let info = state.billboard.learned().info;
    let mut totals: BTreeMap<(String, String), Counts> = BTreeMap::new();
    let series: Vec<Value> = rows
        .iter()
        .map(|(policy, canvas, epoch, c)| {
            let t = totals.entry((policy.clone(), canvas.clone())).or_default();
            t.outcomes += c.outcomes;
            t.plays += c.plays;
            t.explored += c.explored;
            t.explored_plays += c.explored_plays;
            json!({
                "policy": policy,
                "canvas": canvas,
                "epoch_start": time(*epoch),
                "outcomes": c.outcomes,
                "plays": c.plays,
                "take_rate": rate(c.plays, c.outcomes),
                "explored": c.explored,
                "explored_plays": c.explored_plays,
            })
        })
        .collect();
    let totals: Vec<Value> = totals
        .iter()
        .map(|((policy, canvas), c)| {
            json!({
                "policy": policy,
                "canvas": canvas,
                "outcomes": c.outcomes,
                "plays": c.plays,
                "take_rate": rate(c.plays, c.outcomes),
                "explored": c.explored,
                "explored_share": rate(c.explored, c.outcomes),
            })
        })
        .collect();
    let lag = match (clock, info.last_event_ms) {
        (Some(clock), last) if last > 0 => json!(((clock - last).max(0)) as f64 / 1000.0),
        _ => Value::Null,
    };
    Ok(Json(json!({
        "epoch_minutes": EPOCH_MS / 60_000,
        "model_version": info.version.to_string(),
        "learned_at": if info.learned_at_ms > 0 { time(info.learned_at_ms) } else { Value::Null },
        "last_outcome_event_time": if info.last_event_ms > 0 { time(info.last_event_ms) } else { Value::Null },
        "event_clock": clock.map_or(Value::Null, time),
        "learning_lag_seconds": lag,
        "totals": totals,
        "series": series,
    })))
}
