//! The dashboard's billboard page reads billboard's model and learning history through
//! insights, so the page stays same-origin: no CORS on billboard, one URL to open, and
//! one token in the page's fragment for both services.
//!
//! `GET /dashboard/api/billboard/{model,history}` forward the query string and the
//! `Authorization` header to `insights.billboard_url` and answer billboard's status and
//! body as they are: billboard authenticates and validates, insights only relays. Only
//! those two read endpoints are relayed; decisions and catalog writes are not reachable
//! through insights.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// What billboard relays are allowed, by the last path segment.
const RELAYED: [&str; 2] = ["model", "history"];

#[derive(Clone)]
struct Relay {
    base: String,
    client: reqwest::Client,
}

/// The relay routes to billboard at `billboard_url` (`http://host:port`).
pub(crate) fn router(billboard_url: &str, timeout: Duration) -> Router {
    let client = reqwest::Client::builder().timeout(timeout).build().expect("a plain HTTP client builds");
    Router::new()
        .route("/dashboard/api/billboard/{endpoint}", get(relay))
        .with_state(Relay { base: billboard_url.trim_end_matches('/').to_string(), client })
}

async fn relay(
    State(relay): State<Relay>,
    Path(endpoint): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !RELAYED.contains(&endpoint.as_str()) {
        let message = format!("no billboard endpoint {endpoint:?} here; relayed: {}", RELAYED.join(", "));
        return (StatusCode::NOT_FOUND, axum::Json(json!({"error": "not_found", "message": message})))
            .into_response();
    }
    let mut url = format!("{}/v1/billboard/{endpoint}", relay.base);
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(&query);
    }
    let mut request = relay.client.get(&url);
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        request = request.header(header::AUTHORIZATION, auth);
    }
    let answer = async {
        let response = request.send().await?;
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        Ok::<_, reqwest::Error>((status, content_type, response.bytes().await?))
    };
    match answer.await {
        Ok((status, content_type, body)) => {
            let mut response = (status, body).into_response();
            if let Some(content_type) = content_type {
                response.headers_mut().insert(header::CONTENT_TYPE, content_type);
            }
            response
        }
        Err(error) => {
            tracing::warn!(%error, %url, "billboard relay failed");
            let message = format!(
                "billboard at {} did not answer ({error}); is it running, and is insights.billboard_url right?",
                relay.base
            );
            (StatusCode::BAD_GATEWAY, axum::Json(json!({"error": "bad_gateway", "message": message})))
                .into_response()
        }
    }
}
