//! The HTTP API: decisions, the pool, the model view and `/openapi.json`.

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::Json;
use axum::routing::{get, post};
use nearline_runtime::auth::Authenticator;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::service::{ArtworkRequest, Billboard, BillboardRequest, Choice, ModelFilter, ModelView};

/// The OpenAPI description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The service's HTTP routes: `/v1/*` behind `auth`, `/openapi.json` open.
pub fn router(billboard: Billboard, auth: Authenticator) -> Router {
    let api = Router::new()
        .route("/v1/billboard", post(choose_billboard))
        .route("/v1/artwork", post(choose_artwork))
        .route("/v1/billboard/pool", get(get_pool).put(put_pool))
        .route("/v1/billboard/model", get(model))
        .with_state(billboard)
        .layer(axum::middleware::from_fn_with_state(auth, Authenticator::layer));
    Router::new()
        .merge(api)
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(|e| ApiError::Malformed(e.body_text()))
}

/// The JSON of an `explore` block, exactly as ingest takes it in an impression.
pub fn explore_json(e: &nearline_proto::events::v1::Explore) -> Value {
    json!({
        "policy": e.policy,
        "model_version": e.model_version,
        "propensity": e.propensity,
        "explored": e.explored,
        "candidates": e.candidates,
        "candidate_artworks": e.candidate_artworks.iter()
            .map(|c| json!({"video_id": c.video_id, "artwork_ids": c.artwork_ids}))
            .collect::<Vec<_>>(),
        "context": e.context.as_ref().map(|c| json!({
            "country": c.country,
            "device": c.device,
            "hour_of_day": c.hour_of_day,
        })),
    })
}

fn choice_json(c: &Choice) -> serde_json::Map<String, Value> {
    let Value::Object(map) = json!({
        "video_id": c.video_id,
        "artwork_id": c.artwork_id,
        "propensity": c.propensity,
        "explored": c.explored,
        "policy": c.policy.as_str(),
        "model_version": c.model_version,
        "explore": explore_json(&c.explore),
    }) else {
        unreachable!("json! of an object literal is an object")
    };
    map
}

async fn choose_billboard(
    State(billboard): State<Billboard>,
    request: Result<Json<BillboardRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let decision = billboard.choose_billboard(&body(request)?)?;
    let mut map = choice_json(&decision.choice);
    map.insert("request_id".into(), decision.request_id.into());
    map.insert("candidates".into(), json!(decision.candidates));
    Ok(Json(Value::Object(map)))
}

async fn choose_artwork(
    State(billboard): State<Billboard>,
    request: Result<Json<ArtworkRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let decision = billboard.choose_artwork(&body(request)?)?;
    let choices: Vec<Value> = decision.choices.iter().map(|c| Value::Object(choice_json(c))).collect();
    Ok(Json(json!({"request_id": decision.request_id, "choices": choices})))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolBody {
    video_ids: Vec<i64>,
}

async fn get_pool(State(billboard): State<Billboard>) -> Json<Value> {
    Json(json!({"video_ids": billboard.catalog().pool}))
}

async fn put_pool(
    State(billboard): State<Billboard>,
    request: Result<Json<PoolBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let pool = body(request)?;
    billboard.put_pool(&pool.video_ids).await?;
    Ok(Json(json!({"video_ids": billboard.catalog().pool})))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelQuery {
    country: Option<String>,
    device: Option<String>,
}

async fn model(
    State(billboard): State<Billboard>,
    query: Result<Query<ModelQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::Malformed(e.body_text()))?;
    let view = billboard.model_view(&ModelFilter { country: q.country, device: q.device })?;
    Ok(Json(model_json(&view)))
}

fn time(ms: i64) -> Value {
    if ms <= 0 {
        return Value::Null;
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or(Value::Null, |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into())
}

fn model_json(view: &ModelView) -> Value {
    let buckets: Vec<Value> = view
        .buckets
        .iter()
        .map(|b| {
            let arms: Vec<Value> = b
                .arms
                .iter()
                .map(|a| {
                    json!({
                        "video_id": a.video_id,
                        "artwork_id": a.artwork_id,
                        "impressions": a.impressions,
                        "plays": a.plays,
                        "posterior_mean": a.posterior_mean,
                        "linear_mean": a.linear_mean,
                        "pick_probability": a.pick_probability,
                    })
                })
                .collect();
            json!({"country": b.country, "device": b.device, "daypart": b.daypart.as_str(), "arms": arms})
        })
        .collect();
    json!({
        "model_version": view.info.version.to_string(),
        "learned_at": time(view.info.learned_at_ms),
        "last_outcome_event_time": time(view.info.last_event_ms),
        "pick_probability_policy": view.pick_policy.as_str(),
        "buckets": buckets,
        "titles": view.titles.iter().map(|t| json!({
            "video_id": t.video_id,
            "outcomes": t.outcomes,
            "prior_mean": t.prior_mean,
            "early_read": t.early_read.map(|r| json!({"impressions": r.impressions, "plays": r.plays})),
        })).collect::<Vec<_>>(),
    })
}
