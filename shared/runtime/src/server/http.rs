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
