//! Cold-start priors from insights: each new title's launch early read
//! (`nearline.insights.v1.InsightsService/GetLaunchRead`, its first 24 hours on every
//! canvas), fetched over gRPC from `billboard.insights_url` and handed to the model as
//! the title's prior (see `Model::title_prior`, which bounds its weight).
//!
//! Nothing here is on a decision's path: reads are fetched by a background task every
//! `billboard.catalog_refresh`, a failure is logged and retried with a backoff, and
//! until a read arrives the title's prior is its genre's and kind's mean (or global).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nearline_proto::insights::v1 as pb;
use nearline_proto::insights::v1::insights_service_client::InsightsServiceClient;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::policy::EarlyRead;
use crate::service::Billboard;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a title that is still new has its read fetched again (it grows).
const REFETCH: Duration = Duration::from_secs(5 * 60);
/// The longest wait before retrying a failed title.
const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// Where to read early reads from.
#[derive(Debug, Clone)]
pub struct PriorsConfig {
    /// `http://host:port` of insights' gRPC API.
    pub url: String,
    /// Bearer token, when insights asks for one.
    pub token: Option<String>,
    /// How often new titles are looked at.
    pub every: Duration,
}

/// Per title: when to ask again, and how many calls failed in a row.
#[derive(Debug, Clone, Copy)]
struct Due {
    at: Instant,
    failures: u32,
}

/// Fetches early reads until `shutdown`.
pub async fn run(billboard: Billboard, config: PriorsConfig, shutdown: CancellationToken) {
    let endpoint = match Endpoint::from_shared(config.url.clone()) {
        Ok(e) => e.connect_timeout(CALL_TIMEOUT).timeout(CALL_TIMEOUT),
        Err(error) => {
            tracing::warn!(%error, url = %config.url, "billboard.insights_url is not a URI; no early-read priors");
            return;
        }
    };
    // Lazy: insights being down at start is just a first failed fetch.
    let mut client = InsightsServiceClient::new(endpoint.connect_lazy());
    let mut due: HashMap<i64, Due> = HashMap::new();
    loop {
        fetch_due(&billboard, &mut client, config.token.as_deref(), config.every, &mut due).await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(config.every) => {}
        }
    }
}

/// One round: every new title whose read is due is fetched; the model is rebuilt once
/// if any read changed.
async fn fetch_due(
    billboard: &Billboard,
    client: &mut InsightsServiceClient<Channel>,
    token: Option<&str>,
    every: Duration,
    due: &mut HashMap<i64, Due>,
) {
    let now = Instant::now();
    let model = billboard.model();
    let new_below = model.params().new_title_impressions;
    let mut titles: Vec<i64> = billboard
        .catalog()
        .titles
        .keys()
        .copied()
        .filter(|id| model.title_impressions(*id) < new_below)
        .filter(|id| due.get(id).is_none_or(|d| d.at <= now))
        .collect();
    titles.sort_unstable();
    let mut changed = false;
    for video_id in titles {
        let failures = due.get(&video_id).map_or(0, |d| d.failures);
        let result = fetch(client, token, video_id).await;
        let (next, round) = schedule(now, every, failures, result.as_ref().map(drop));
        match &result {
            Ok(read) => changed |= billboard.set_early_read(video_id, *read),
            Err(status) if next.failures == 0 => {
                // Insights does not know the title or its launch: nothing to read yet.
                tracing::debug!(video_id, message = status.message(), "no early read");
            }
            Err(status) => tracing::warn!(
                video_id,
                code = ?status.code(),
                message = status.message(),
                "fetching the early read from insights failed; retrying in {:?}",
                next.at - now
            ),
        }
        due.insert(video_id, next);
        if round == Round::Stop {
            break;
        }
    }
    if changed {
        billboard.rebuild_after_priors();
    }
}

/// Whether a round goes on to the next title after one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    Continue,
    /// Insights is down or slow: the other titles wait for the next round.
    Stop,
}

/// When a title is asked again after a call at `now` that answered `result`, with
/// `failures` failed calls before it: a read (or no launch to read) is refetched after
/// [`REFETCH`] while the title is new; a failure is retried after `every` doubled per
/// failure in a row, at most [`MAX_BACKOFF`].
fn schedule(
    now: Instant,
    every: Duration,
    failures: u32,
    result: Result<(), &tonic::Status>,
) -> (Due, Round) {
    let status = match result {
        Ok(()) => return (Due { at: now + REFETCH, failures: 0 }, Round::Continue),
        Err(status) => status,
    };
    if matches!(status.code(), tonic::Code::NotFound | tonic::Code::FailedPrecondition) {
        return (Due { at: now + REFETCH, failures: 0 }, Round::Continue);
    }
    let failures = failures.saturating_add(1);
    let backoff = every.saturating_mul(1 << failures.min(16)).min(MAX_BACKOFF);
    let round = if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) {
        Round::Stop
    } else {
        Round::Continue
    };
    (Due { at: now + backoff, failures }, round)
}

async fn fetch(
    client: &mut InsightsServiceClient<Channel>,
    token: Option<&str>,
    video_id: i64,
) -> Result<Option<EarlyRead>, tonic::Status> {
    let mut request = tonic::Request::new(pb::LaunchReadRequest { video_id, hours: 0 });
    request.set_timeout(CALL_TIMEOUT);
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| tonic::Status::invalid_argument("the auth token is not a valid header value"))?;
        request.metadata_mut().insert("authorization", value);
    }
    let read = client.get_launch_read(request).await?.into_inner();
    Ok(early_read(&read))
}

/// The read's totals over its hours; `None` before it has any impression.
pub fn early_read(read: &pb::LaunchReadResponse) -> Option<EarlyRead> {
    let (impressions, plays) = read
        .hours
        .iter()
        .filter_map(|h| h.counts.as_ref())
        .fold((0u64, 0u64), |(i, p), c| (i.saturating_add(c.impressions), p.saturating_add(c.plays)));
    (impressions > 0).then_some(EarlyRead { impressions, plays })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_early_read_sums_its_hours() {
        let hour = |impressions, plays| pb::LaunchHour {
            counts: Some(pb::Counts { impressions, plays, take_rate: None }),
            ..Default::default()
        };
        let read = pb::LaunchReadResponse {
            hours: vec![hour(10, 2), hour(30, 9), pb::LaunchHour::default()],
            ..Default::default()
        };
        assert_eq!(early_read(&read), Some(EarlyRead { impressions: 40, plays: 11 }));
        assert_eq!(early_read(&pb::LaunchReadResponse::default()), None);
    }

    /// Insights unavailable for a while, then answering: each failure doubles the wait
    /// (capped), stops the round, and the first answer resets the count.
    #[test]
    fn a_failed_fetch_is_retried_with_a_doubling_backoff_until_insights_answers() {
        let now = Instant::now();
        let every = Duration::from_secs(5);
        let down = tonic::Status::unavailable("connection refused");
        let mut failures = 0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let (due, round) = schedule(now, every, failures, Err(&down));
            assert_eq!(round, Round::Stop, "the other titles wait for the next round");
            assert_eq!(due.failures, failures + 1);
            waits.push((due.at - now).as_secs());
            failures = due.failures;
        }
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300, 300]);

        let (due, round) = schedule(now, every, failures, Ok(()));
        assert_eq!((due.failures, due.at - now, round), (0, REFETCH, Round::Continue));

        // A title insights does not know is no failure: asked again like a read one.
        let (due, round) = schedule(now, every, 3, Err(&tonic::Status::not_found("no such title")));
        assert_eq!((due.failures, due.at - now, round), (0, REFETCH, Round::Continue));
        // Another error backs off but lets the round go on to the next title.
        let (due, round) = schedule(now, every, 0, Err(&tonic::Status::internal("boom")));
        assert_eq!((due.failures, due.at - now, round), (1, every * 2, Round::Continue));
    }
}
