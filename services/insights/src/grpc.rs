//! The gRPC API (`nearline.insights.v1.InsightsService`), behind the bearer-token
//! interceptor, with the same validation and answers as HTTP.

use nearline_proto::insights::v1 as pb;
use nearline_proto::insights::v1::insights_service_server::{InsightsService, InsightsServiceServer};
use nearline_runtime::auth::Authenticator;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::launch::Spread;
use crate::query::{self, Counts, Dimension, Filters, Granularity, Metric, TimeRange};
use crate::service::Insights;

/// Largest request message accepted; queries are small.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The service with its interceptor, ready for `tonic::service::Routes`.
pub fn service(
    insights: Insights,
    auth: &Authenticator,
) -> InterceptedService<InsightsServiceServer<Grpc>, impl tonic::service::Interceptor + Clone + use<>> {
    let server = InsightsServiceServer::new(Grpc { insights }).max_decoding_message_size(MAX_MESSAGE_BYTES);
    InterceptedService::new(server, auth.interceptor())
}

/// The gRPC front end over [`Insights`].
#[derive(Debug, Clone)]
pub struct Grpc {
    insights: Insights,
}

fn counts(c: Counts) -> pb::Counts {
    pb::Counts { impressions: c.impressions, plays: c.plays, take_rate: c.take_rate() }
}

fn filters(f: Option<pb::Filters>) -> Filters {
    let f = f.unwrap_or_default();
    let mut filters = Filters::default();
    for (dimension, values) in [
        (Dimension::Country, f.country),
        (Dimension::Device, f.device),
        (Dimension::Canvas, f.canvas),
        (Dimension::Region, f.region),
    ] {
        for value in values {
            filters.add(dimension, &value);
        }
    }
    filters
}

fn video_id(id: i64) -> Result<i64, ApiError> {
    if id > 0 {
        Ok(id)
    } else {
        Err(query::Invalid::new("video_id", format!("{id} is not a positive integer")).into())
    }
}

fn range(insights: &Insights, from_ms: i64, to_ms: i64) -> Result<TimeRange, ApiError> {
    Ok(TimeRange::new(("from_ms", from_ms), ("to_ms", to_ms), insights.settings().rules)?)
}

fn spread(s: Option<Spread>) -> Option<pb::Spread> {
    s.map(|s| pb::Spread { median: s.median, p25: s.p25, p75: s.p75, titles: s.titles as u32 })
}

#[tonic::async_trait]
impl InsightsService for Grpc {
    async fn get_title_performance(
        &self,
        request: Request<pb::TitlePerformanceRequest>,
    ) -> Result<Response<pb::TitlePerformanceResponse>, Status> {
        let r = request.into_inner();
        let query = query::PerformanceQuery {
            video_id: video_id(r.video_id)?,
            range: range(&self.insights, r.from_ms, r.to_ms)?,
            granularity: Granularity::parse("granularity", &r.granularity).map_err(ApiError::from)?,
            group_by: query::parse_group_by("group_by", r.group_by.iter().map(String::as_str))
                .map_err(ApiError::from)?,
            filters: filters(r.filters),
        };
        let p = self.insights.performance(query).await?;
        Ok(Response::new(pb::TitlePerformanceResponse {
            video_id: p.video.video_id,
            title: p.video.title.clone(),
            complete_until_ms: p.complete_until_ms,
            totals: Some(counts(p.totals)),
            unattributed_plays: p.unattributed_plays,
            series: p
                .series
                .points
                .iter()
                .map(|s| pb::SeriesPoint {
                    start_ms: s.start_ms,
                    group: s.group.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    counts: Some(counts(s.counts)),
                })
                .collect(),
            from_ms: p.query.range.from_ms,
            to_ms: p.query.range.to_ms,
            granularity: p.query.granularity.name().to_string(),
        }))
    }

    async fn get_top_titles(
        &self,
        request: Request<pb::TopTitlesRequest>,
    ) -> Result<Response<pb::TopTitlesResponse>, Status> {
        let r = request.into_inner();
        let query = query::TopQuery {
            range: range(&self.insights, r.from_ms, r.to_ms)?,
            metric: Metric::parse("metric", &r.metric).map_err(ApiError::from)?,
            limit: query::top_limit("limit", u64::from(r.limit)).map_err(ApiError::from)?,
            min_impressions: r.min_impressions,
            filters: filters(r.filters),
        };
        let top = self.insights.top(query).await?;
        Ok(Response::new(pb::TopTitlesResponse {
            complete_until_ms: top.complete_until_ms,
            metric: top.query.metric.name().to_string(),
            titles: top
                .titles
                .into_iter()
                .map(|t| pb::TopTitle {
                    video_id: t.video_id,
                    title: t.title.unwrap_or_default(),
                    counts: Some(counts(t.counts)),
                    rank: t.rank,
                })
                .collect(),
        }))
    }

    async fn get_launch_read(
        &self,
        request: Request<pb::LaunchReadRequest>,
    ) -> Result<Response<pb::LaunchReadResponse>, Status> {
        let r = request.into_inner();
        let hours = crate::http::launch_hours("hours", u64::from(r.hours)).map_err(ApiError::from)?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let read = self.insights.launch(video_id(r.video_id)?, hours, now_ms).await?;
        Ok(Response::new(pb::LaunchReadResponse {
            video_id: read.video.video_id,
            title: read.video.title,
            launch_at_ms: read.launch_at_ms,
            comparable_titles: read.comparables.len() as u32,
            comparable_video_ids: read.comparables,
            note: read.note.unwrap_or_default(),
            complete_until_ms: read.complete_until_ms,
            hours: read
                .hours
                .into_iter()
                .map(|h| {
                    let rate = h.comparison.take_rate;
                    pb::LaunchHour {
                        hour: h.hour,
                        start_ms: h.start_ms,
                        counts: Some(counts(h.counts)),
                        comparable_median: rate.map(|s| s.median),
                        comparable_p25: rate.map(|s| s.p25),
                        comparable_p75: rate.map(|s| s.p75),
                        comparable_impressions: spread(h.comparison.impressions),
                        comparable_plays: spread(h.comparison.plays),
                        comparable_take_rate: spread(rate),
                    }
                })
                .collect(),
        }))
    }

    async fn search_titles(
        &self,
        request: Request<pb::SearchTitlesRequest>,
    ) -> Result<Response<pb::SearchTitlesResponse>, Status> {
        let r = request.into_inner();
        let limit = query::search_limit("limit", u64::from(r.limit)).map_err(ApiError::from)?;
        let titles = self.insights.search(r.search.trim(), limit).await?;
        Ok(Response::new(pb::SearchTitlesResponse {
            titles: titles
                .into_iter()
                .map(|v| pb::Title {
                    video_id: v.video_id,
                    title: v.title,
                    kind: v.kind,
                    genres: v.genres,
                    launch_at_ms: v.launch_at_ms,
                })
                .collect(),
        }))
    }
}
