//! The HTTP side: shared endpoints, layers and per-route metrics.

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::ServerConfig;
use crate::readiness::Readiness;
use crate::telemetry;

/// A JSON error body `{"error": code, "message": text}` with a status, for handlers
/// that have nothing richer to say.
#[derive(Debug)]
pub struct AppError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `not_found`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

/// The service's router with `/livez`, `/readyz`, `/metrics` and the shared layers.
pub(super) fn router(
    service: &'static str,
    routes: Router,
    config: &ServerConfig,
    readiness: Readiness,
) -> Router {
    let shared = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(readiness)
        .route("/metrics", get(metrics));
    shared
        .merge(routes)
        .fallback(|| async {
            AppError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no such route".into() }
        })
        .layer(middleware::from_fn_with_state(service, record_metrics))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or(request.uri().path(), MatchedPath::as_str);
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!("http", method = %request.method(), route, request_id)
                }))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(RequestBodyLimitLayer::new(config.body_limit_bytes))
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.request_timeout)),
        )
        // Extractors enforce their own limit (2 MiB by default); make it the configured one.
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        // Outermost, so the layers' own answers (413, 408, 405) get the JSON shape too.
        .layer(middleware::from_fn_with_state(config.body_limit_bytes, json_errors))
}

/// Gives every error answer the one JSON shape `{"error": code, "message": text}`, also
/// those that layers and the router make as plain text or with an empty body (413 from
/// the body limit, 408 from the timeout, 405). An answer sent before the request body
/// was read (413) also says `connection: close`, since the connection cannot be reused.
async fn json_errors(State(body_limit): State<usize>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message =
        if text.is_empty() { status.canonical_reason().unwrap_or("error").to_lowercase() } else { text };
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "overloaded",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "client_error",
    };
    let mut body = serde_json::json!({ "error": code, "message": message });
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        body["limit_bytes"] = body_limit.into();
    }
    let mut answer = (status, axum::Json(body)).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        answer.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    }
    answer
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    if readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], telemetry::metrics_handle().render())
}

/// Counts requests and their latency by route template (never the raw path, whose ids
/// would make label sets unbounded).
async fn record_metrics(State(service): State<&'static str>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("nearline_http_requests_total", "service" => service, "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("nearline_http_request_duration_seconds", "service" => service, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}
