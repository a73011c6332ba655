//! The dashboard pages and their vendored static assets, compiled into the binary.
//!
//! The page is open (no token needed to load it); it calls the `/v1` API with the bearer
//! token given in its URL fragment (`/dashboard#token=...`), so with auth off it works
//! as is and with auth on the token never reaches server logs or referrers.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("dashboard/index.html");
const BILLBOARD: &str = include_str!("dashboard/billboard.html");
const COMMON_JS: &str = include_str!("dashboard/common.js");
const APP_JS: &str = include_str!("dashboard/app.js");
const BILLBOARD_JS: &str = include_str!("dashboard/billboard.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");
const UPLOT_JS: &str = include_str!("dashboard/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("dashboard/vendor/uPlot.min.css");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}

/// `/dashboard` (titles), `/dashboard/billboard` and `/dashboard/assets/*`. The
/// billboard page reads billboard through [`crate::billboard_proxy`].
pub(crate) fn router() -> Router {
    Router::new()
        .route("/dashboard", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        // The page's assets are relative to /dashboard, so the slash form redirects.
        .route("/dashboard/", get(|| async { axum::response::Redirect::permanent("/dashboard") }))
        .route("/dashboard/billboard", get(|| async { asset("text/html; charset=utf-8", BILLBOARD) }))
        .route(
            "/dashboard/assets/common.js",
            get(|| async { asset("text/javascript; charset=utf-8", COMMON_JS) }),
        )
        .route("/dashboard/assets/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route(
            "/dashboard/assets/billboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", BILLBOARD_JS) }),
        )
        .route("/dashboard/assets/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .route(
            "/dashboard/assets/uPlot.iife.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", UPLOT_JS) }),
        )
        .route(
            "/dashboard/assets/uPlot.min.css",
            get(|| async { asset("text/css; charset=utf-8", UPLOT_CSS) }),
        )
}
