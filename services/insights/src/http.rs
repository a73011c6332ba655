//! The HTTP API (`/v1/titles...`), its JSON shapes and the static pages.
//!
//! Query strings are read as name/value pairs so that every problem, including an
//! unknown parameter, is answered in the service's own error shape naming the parameter.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse as _, Json, Response};
use axum::routing::get;
use nearline_runtime::auth::Authenticator;
use serde::Serialize;

use crate::error::ApiError;
use crate::launch::{self, Spread};
use crate::query::{self, Counts, Dimension, Filters, Granularity, Invalid, Metric, SeriesPoint, TimeRange};
use crate::service::{Insights, LaunchRead, Performance, TopTitles};
use crate::{dashboard, repository::Video};

/// The OpenAPI description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The service's HTTP routes: `/v1/*` behind `auth`, the dashboard and `/openapi.json` open.
pub fn router(insights: Insights, auth: Authenticator) -> Router {
    let api = Router::new()
        .route("/v1/titles", get(search))
        .route("/v1/titles/top", get(top))
        .route("/v1/titles/{video_id}/performance", get(performance))
        .route("/v1/titles/{video_id}/launch", get(launch_read))
        .with_state(insights)
        .layer(axum::middleware::from_fn_with_state(auth, Authenticator::layer));
    Router::new()
        .merge(api)
        .merge(dashboard::router())
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
}

/// The query string as name/value pairs, in order.
struct Params(Vec<(String, String)>);

impl Params {
    /// Fails on a parameter this endpoint does not take.
    fn only(self, known: &[&str]) -> Result<Self, Invalid> {
        match self.0.iter().find(|(name, _)| !known.contains(&name.as_str())) {
            Some((name, _)) => Err(Invalid::new(
                name.as_str(),
                format!("unknown parameter; expected one of {}", known.join(", ")),
            )),
            None => Ok(self),
        }
    }

    /// The last value of `name`.
    fn one(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (repeated parameters add to comma-separated lists).
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str, Invalid> {
        self.one(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| Invalid::new(name, "is required"))
    }

    fn time(&self, name: &str) -> Result<i64, Invalid> {
        query::parse_time(name, self.required(name)?)
    }

    /// A `limit`: absent means the default; given, it must be at least 1 (gRPC, which
    /// cannot tell absent from 0, takes 0 as the default instead).
    fn limit(&self, name: &str, default: u64) -> Result<u64, Invalid> {
        match self.number(name, default)? {
            0 => Err(Invalid::new(
                name,
                format!("must be at least 1; leave it out for the default ({default})"),
            )),
            n => Ok(n),
        }
    }

    fn number(&self, name: &str, default: u64) -> Result<u64, Invalid> {
        match self.one(name).map(str::trim) {
            None => Ok(default),
            Some("") => Err(Invalid::new(name, "is empty; give a number or leave it out")),
            Some(v) => {
                v.parse().map_err(|_| Invalid::new(name, format!("{v:?} is not a non-negative integer")))
            }
        }
    }

    fn filters(&self) -> Filters {
        let mut filters = Filters::default();
        for dimension in Dimension::ALL {
            for value in self.all(dimension.name()) {
                filters.add(dimension, value);
            }
        }
        filters
    }
}

fn video_id(raw: &str) -> Result<i64, Invalid> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Invalid::new("video_id", format!("{raw:?} is not a positive integer")))
}

fn range(insights: &Insights, params: &Params) -> Result<TimeRange, Invalid> {
    TimeRange::new(("from", params.time("from")?), ("to", params.time("to")?), insights.settings().rules)
}

/// Counts as they appear in every JSON body.
#[derive(Debug, Serialize)]
struct CountsBody {
    impressions: u64,
    plays: u64,
    take_rate: Option<f64>,
}

impl From<Counts> for CountsBody {
    fn from(c: Counts) -> Self {
        Self { impressions: c.impressions, plays: c.plays, take_rate: c.take_rate() }
    }
}

#[derive(Debug, Serialize)]
struct TotalsBody {
    #[serde(flatten)]
    counts: CountsBody,
    unattributed_plays: u64,
}

/// One point of a series; the counts are spelled out rather than flattened, since
/// serde's `flatten` goes through a slower map serializer and a series has thousands.
#[derive(Debug, Serialize)]
struct PointBody<'a> {
    start: &'a str,
    group: &'a query::Group,
    impressions: u64,
    plays: u64,
    take_rate: Option<f64>,
}

/// A performance body without its series, which is spliced in after it.
#[derive(Debug, Serialize)]
struct PerformanceHead<'a> {
    video_id: i64,
    title: &'a str,
    from: String,
    to: String,
    granularity: &'static str,
    complete_until: Option<String>,
    totals: TotalsBody,
}

/// The JSON array of `points`, each start time formatted once per bucket (the points
/// of a bucket share it), into a buffer sized for it up front (~110 bytes a point;
/// growing by doubling copies a busy title's half megabyte several times over).
fn points_json(points: &[SeriesPoint]) -> Vec<u8> {
    let mut starts: Vec<(i64, String)> = Vec::new();
    for point in points {
        if starts.last().is_none_or(|(at, _)| *at != point.start_ms) {
            starts.push((point.start_ms, query::format_time(point.start_ms)));
        }
    }
    let mut bucket = 0;
    let body: Vec<PointBody<'_>> = points
        .iter()
        .map(|s| {
            while starts[bucket].0 != s.start_ms {
                bucket += 1;
            }
            PointBody {
                start: &starts[bucket].1,
                group: &s.group,
                impressions: s.counts.impressions,
                plays: s.counts.plays,
                take_rate: s.counts.take_rate(),
            }
        })
        .collect();
    let mut json = Vec::with_capacity(2 + 128 * body.len());
    serde_json::to_writer(&mut json, &body).expect("strings, numbers and string-keyed maps serialize");
    json
}

/// The JSON body of `p`: its head, then its series as encoded once per result.
fn performance_json(p: &Performance) -> Vec<u8> {
    let head = PerformanceHead {
        video_id: p.video.video_id,
        title: &p.video.title,
        from: query::format_time(p.query.range.from_ms),
        to: query::format_time(p.query.range.to_ms),
        granularity: p.query.granularity.name(),
        complete_until: p.complete_until_ms.map(query::format_time),
        totals: TotalsBody { counts: p.totals.into(), unattributed_plays: p.unattributed_plays },
    };
    let series = p.series.json(points_json);
    let mut json = Vec::with_capacity(512 + series.len());
    serde_json::to_writer(&mut json, &head).expect("strings and numbers serialize");
    // `{...}` becomes `{..., "series": [...]}`.
    json.pop();
    json.extend_from_slice(b",\"series\":");
    json.extend_from_slice(series);
    json.push(b'}');
    json
}

async fn performance(
    State(insights): State<Insights>,
    Path(raw_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let params = Params(params).only(&[
        "from",
        "to",
        "granularity",
        "group_by",
        "country",
        "device",
        "canvas",
        "region",
    ])?;
    let query = query::PerformanceQuery {
        video_id: video_id(&raw_id)?,
        range: range(&insights, &params)?,
        granularity: Granularity::parse("granularity", params.one("granularity").unwrap_or_default())?,
        group_by: query::parse_group_by("group_by", params.all("group_by"))?,
        filters: params.filters(),
    };
    let performance = insights.performance(query).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], performance_json(&performance)).into_response())
}

#[derive(Debug, Serialize)]
struct RankedBody {
    rank: u32,
    video_id: i64,
    title: Option<String>,
    #[serde(flatten)]
    counts: CountsBody,
}

#[derive(Debug, Serialize)]
struct TopBody {
    from: String,
    to: String,
    metric: &'static str,
    min_impressions: u64,
    complete_until: Option<String>,
    titles: Vec<RankedBody>,
}

impl From<TopTitles> for TopBody {
    fn from(t: TopTitles) -> Self {
        Self {
            from: query::format_time(t.query.range.from_ms),
            to: query::format_time(t.query.range.to_ms),
            metric: t.query.metric.name(),
            min_impressions: t.query.min_impressions,
            complete_until: t.complete_until_ms.map(query::format_time),
            titles: t
                .titles
                .into_iter()
                .map(|r| RankedBody {
                    rank: r.rank,
                    video_id: r.video_id,
                    title: r.title,
                    counts: r.counts.into(),
                })
                .collect(),
        }
    }
}

async fn top(
    State(insights): State<Insights>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<TopBody>, ApiError> {
    let params = Params(params).only(&[
        "from",
        "to",
        "metric",
        "limit",
        "min_impressions",
        "country",
        "device",
        "canvas",
        "region",
    ])?;
    let query = query::TopQuery {
        range: range(&insights, &params)?,
        metric: Metric::parse("metric", params.one("metric").unwrap_or_default())?,
        limit: query::top_limit("limit", params.limit("limit", 10)?)?,
        min_impressions: params.number("min_impressions", 0)?,
        filters: params.filters(),
    };
    Ok(Json(insights.top(query).await?.into()))
}

#[derive(Debug, Serialize)]
struct TitleBody {
    video_id: i64,
    title: String,
    kind: String,
    genres: Vec<String>,
    launch_at: Option<String>,
}

impl From<Video> for TitleBody {
    fn from(v: Video) -> Self {
        Self {
            video_id: v.video_id,
            title: v.title,
            kind: v.kind,
            genres: v.genres,
            launch_at: v.launch_at_ms.map(query::format_time),
        }
    }
}

#[derive(Debug, Serialize)]
struct SearchBody {
    titles: Vec<TitleBody>,
}

async fn search(
    State(insights): State<Insights>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<SearchBody>, ApiError> {
    let params = Params(params).only(&["search", "limit"])?;
    let limit = query::search_limit("limit", params.limit("limit", 20)?)?;
    let titles = insights.search(params.one("search").unwrap_or_default().trim(), limit).await?;
    Ok(Json(SearchBody { titles: titles.into_iter().map(Into::into).collect() }))
}

#[derive(Debug, Serialize)]
struct ComparisonBody {
    impressions: Option<SpreadBody>,
    plays: Option<SpreadBody>,
    take_rate: Option<SpreadBody>,
}

#[derive(Debug, Serialize)]
struct SpreadBody {
    median: f64,
    p25: f64,
    p75: f64,
    titles: usize,
}

impl From<Spread> for SpreadBody {
    fn from(s: Spread) -> Self {
        Self { median: s.median, p25: s.p25, p75: s.p75, titles: s.titles }
    }
}

#[derive(Debug, Serialize)]
struct HourBody {
    hour: u32,
    start: String,
    #[serde(flatten)]
    counts: CountsBody,
    comparables: ComparisonBody,
}

#[derive(Debug, Serialize)]
struct LaunchBody {
    video_id: i64,
    title: String,
    launch_at: String,
    complete_until: Option<String>,
    comparable_titles: usize,
    comparable_video_ids: Vec<i64>,
    note: Option<String>,
    hours: Vec<HourBody>,
}

impl From<LaunchRead> for LaunchBody {
    fn from(l: LaunchRead) -> Self {
        Self {
            video_id: l.video.video_id,
            title: l.video.title,
            launch_at: query::format_time(l.launch_at_ms),
            complete_until: l.complete_until_ms.map(query::format_time),
            comparable_titles: l.comparables.len(),
            comparable_video_ids: l.comparables,
            note: l.note,
            hours: l
                .hours
                .into_iter()
                .map(|h| HourBody {
                    hour: h.hour,
                    start: query::format_time(h.start_ms),
                    counts: h.counts.into(),
                    comparables: ComparisonBody {
                        impressions: h.comparison.impressions.map(Into::into),
                        plays: h.comparison.plays.map(Into::into),
                        take_rate: h.comparison.take_rate.map(Into::into),
                    },
                })
                .collect(),
        }
    }
}

/// Validates the `hours` of an early read; 0 or absent means the default.
pub(crate) fn launch_hours(param: &str, hours: u64) -> Result<u32, Invalid> {
    match hours {
        0 => Ok(launch::DEFAULT_HOURS),
        n if n <= u64::from(launch::MAX_HOURS) => Ok(n as u32),
        n => Err(Invalid::new(param, format!("{n} is more than the maximum of {}", launch::MAX_HOURS))),
    }
}

async fn launch_read(
    State(insights): State<Insights>,
    Path(raw_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<LaunchBody>, ApiError> {
    let params = Params(params).only(&["hours"])?;
    let hours = launch_hours("hours", params.number("hours", u64::from(launch::DEFAULT_HOURS))?)?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    Ok(Json(insights.launch(video_id(&raw_id)?, hours, now_ms).await?.into()))
}
