//! The HTTP API: `POST /v1/events`, the catalog under `/v1/videos/{id}`, and the
//! OpenAPI document.
//!
//! A publish request is read only after its body has room in the budget (429 when
//! not), is decompressed within the body limit (413 past it, so a small gzip bomb
//! cannot inflate into unbounded memory), decoded, validated in full and published.

use std::io::Read as _;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, middleware};
use nearline_runtime::auth::Authenticator;

use crate::Ingest;
use crate::catalog::{self, Video};
use crate::error::ApiError;
use crate::event::Format;

/// The service's own routes: `/v1/*` behind the authenticator, `/openapi.json` open.
pub(crate) fn router(ingest: Ingest, auth: Authenticator) -> Router {
    let v1 = Router::new()
        .route("/v1/events", post(post_events))
        .route("/v1/videos/{id}", get(get_video).put(put_video))
        .with_state(ingest)
        .route_layer(middleware::from_fn_with_state(auth, Authenticator::layer));
    Router::new().route("/openapi.json", get(openapi)).merge(v1)
}

async fn openapi() -> Response {
    let document = crate::openapi::served(chrono::Utc::now().timestamp_millis());
    ([(header::CONTENT_TYPE, "application/json")], document).into_response()
}

#[derive(serde::Serialize)]
struct Accepted {
    accepted: usize,
}

async fn post_events(
    State(ingest): State<Ingest>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    let result = publish_body(&ingest, &headers, body).await;
    if let Err(error) = &result {
        crate::metrics::request_rejected(error.reason());
    }
    result.map(|accepted| Json(Accepted { accepted }))
}

async fn publish_body(ingest: &Ingest, headers: &HeaderMap, body: Body) -> Result<usize, ApiError> {
    let format = format(headers)?;
    let gzip = gzip(headers)?;
    let limit = ingest.body_limit();
    // Room for the body as sent and, when compressed, for what it may inflate to.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(limit, |length| length.min(limit));
    let _room = ingest.publisher().reserve_body(if gzip { declared + limit } else { declared })?;
    let raw = read_body(body, limit).await?;
    let bytes = if gzip { gunzip(&raw, limit)? } else { raw };
    ingest.accept_body(format, &bytes).await
}

/// The body format named by `Content-Type` (parameters such as `charset` ignored).
fn format(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(
            "Content-Type is required: application/json, application/x-ndjson or application/x-protobuf"
                .into(),
        ));
    };
    let text = value.to_str().unwrap_or_default();
    let media = text.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Ok(Format::Json),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(Format::Ndjson),
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {text:?} is not accepted: use application/json, application/x-ndjson or application/x-protobuf"
        ))),
    }
}

/// Whether the body is gzip-compressed (`Content-Encoding: gzip`); other codings are refused.
fn gzip(headers: &HeaderMap) -> Result<bool, ApiError> {
    match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or_default().trim().to_ascii_lowercase())
    {
        None => Ok(false),
        Some(coding) if coding.is_empty() || coding == "identity" => Ok(false),
        Some(coding) if coding == "gzip" || coding == "x-gzip" => Ok(true),
        Some(coding) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {coding:?} is not accepted: use gzip or none"
        ))),
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let too_large =
            std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| e.source())
                .any(|e| e.is::<http_body_util::LengthLimitError>());
        if too_large { ApiError::BodyTooLarge { limit } } else { ApiError::Body(error.to_string()) }
    })
}

/// Inflates a gzip body, refusing to produce more than `limit` bytes.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    let mut decoder = flate2::read::GzDecoder::new(compressed).take(limit as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|e| ApiError::Malformed {
        position: format!("gzip stream byte {}", out.len()),
        reason: format!("not a valid gzip stream: {e}"),
    })?;
    if out.len() > limit {
        return Err(ApiError::BodyTooLarge { limit });
    }
    Ok(Bytes::from(out))
}

async fn put_video(
    State(ingest): State<Ingest>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let video_id = catalog::parse_video_id(&id)?;
    // Only JSON here: `format` would list the event formats, which a video is never in.
    if !matches!(format(&headers), Ok(Format::Json)) {
        let sent = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("none");
        return Err(ApiError::UnsupportedMediaType(format!(
            "a video is sent as application/json (Content-Type: {sent:?})"
        )));
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::Malformed {
        position: format!("line {} column {}", e.line(), e.column()),
        reason: e.to_string(),
    })?;
    let video = Video::from_json(video_id, value).map_err(ApiError::InvalidVideo)?;
    ingest.catalog().upsert(&video).await?;
    Ok(Json(video.to_json()))
}

async fn get_video(State(ingest): State<Ingest>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let video_id = catalog::parse_video_id(&id)?;
    match ingest.catalog().get(video_id).await? {
        Some(video) => Ok((StatusCode::OK, Json(video.to_json())).into_response()),
        None => Err(ApiError::VideoNotFound(video_id)),
    }
}
