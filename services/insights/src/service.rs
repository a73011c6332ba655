//! The queries themselves, shared by the HTTP and gRPC front ends: validated input in,
//! domain results out.

use std::sync::Arc;
use std::time::Duration;

use nearline_runtime::Config;

use crate::cache::{self, Cache};
use crate::error::ApiError;
use crate::launch::{self, HourComparison};
use crate::query::{self, Counts, PerformanceQuery, RangeRules, TopQuery};
use crate::repository::{Repository, Video};
use crate::results::{ResultCache, Series};

/// Most comparable launches an early read looks at (the most recent ones).
const MAX_COMPARABLES: usize = 100;

/// The configuration the queries depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Epoch alignment and maximum range.
    pub rules: RangeRules,
    /// `attribution.allowed_lateness` in ms.
    pub allowed_lateness_ms: i64,
    /// Attribution's consumer group, whose progress says what is complete.
    pub consumer_group: String,
    /// `insights.launch_lookback` in ms.
    pub launch_lookback_ms: i64,
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Settings {
    /// The settings of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            rules: RangeRules::new(config.attribution.epoch_len, config.insights.max_range),
            allowed_lateness_ms: ms(config.attribution.allowed_lateness),
            consumer_group: config.attribution.consumer_group.clone(),
            launch_lookback_ms: ms(config.insights.launch_lookback),
        }
    }
}

/// A title's performance over a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Performance {
    /// The title.
    pub video: Video,
    /// What was asked.
    pub query: PerformanceQuery,
    /// Counts before this time can no longer change.
    pub complete_until_ms: Option<i64>,
    /// Sum over the whole range and every group.
    pub totals: Counts,
    /// Plays whose impression was never seen.
    pub unattributed_plays: u64,
    /// Non-empty buckets, by start then group (shared with the result cache).
    pub series: Arc<Series>,
}

/// One ranked title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankedTitle {
    /// 1 for the first.
    pub rank: u32,
    /// The title's id.
    pub video_id: i64,
    /// Its name, when it is in the catalog.
    pub title: Option<String>,
    /// Its counts over the range.
    pub counts: Counts,
}

/// Top titles over a range.
#[derive(Debug, Clone, PartialEq)]
pub struct TopTitles {
    /// What was asked.
    pub query: TopQuery,
    /// Counts before this time can no longer change.
    pub complete_until_ms: Option<i64>,
    /// Best first.
    pub titles: Vec<RankedTitle>,
}

/// One hour of an early read.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchHour {
    /// Hours since launch.
    pub hour: u32,
    /// Start of the hour.
    pub start_ms: i64,
    /// The title's counts in that hour.
    pub counts: Counts,
    /// Comparable launches at the same age.
    pub comparison: HourComparison,
}

/// A title's early read against comparable launches.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchRead {
    /// The title.
    pub video: Video,
    /// Its launch time.
    pub launch_at_ms: i64,
    /// Counts before this time can no longer change.
    pub complete_until_ms: Option<i64>,
    /// The comparable launches, most recent first.
    pub comparables: Vec<i64>,
    /// Hours since launch that have started, up to the hours asked for.
    pub hours: Vec<LaunchHour>,
    /// Set when there are too few comparables.
    pub note: Option<String>,
}

/// The insights queries over one database.
#[derive(Debug, Clone)]
pub struct Insights {
    repository: Repository,
    settings: Settings,
    /// Top titles scan every title's cells in the range; a popular title's performance
    /// (on launch day every dashboard asks for the same one) aggregates thousands.
    /// Keyed by the query alone: a result carries the `complete_until` it was computed at.
    top_cache: Arc<Cache<TopQuery, TopTitles>>,
    /// With the roll-ups: results kept while their days' totals are unchanged (exact);
    /// reading cells only: for [`cache::OPEN_TTL`].
    results: Arc<ResultCache>,
    performance_cache: Arc<Cache<PerformanceQuery, Performance>>,
    /// Every query reads the title and the progress; both change rarely, so keeping them
    /// briefly halves the statements a performance query sends to the database.
    video_cache: Arc<Cache<i64, Video>>,
    progress_cache: Arc<Cache<(), Option<i64>>>,
}

/// Performance results kept reading cells only: each holds up to a few thousand buckets.
const PERFORMANCE_ENTRIES: usize = 256;
/// How long a title's catalog entry is reused (a rename shows within this).
const VIDEO_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// How long the smallest watermark is reused: well inside one attribution batch, and a
/// stale value only makes `complete_until` more conservative.
const PROGRESS_TTL: std::time::Duration = std::time::Duration::from_millis(250);

impl Insights {
    /// Queries `repository` under `settings`.
    pub fn new(repository: Repository, settings: Settings) -> Self {
        Self {
            repository,
            settings,
            top_cache: Arc::default(),
            results: Arc::default(),
            performance_cache: Arc::new(Cache::with_capacity(PERFORMANCE_ENTRIES)),
            video_cache: Arc::default(),
            progress_cache: Arc::default(),
        }
    }

    /// The configuration in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The title (an unknown one is not cached, so it is found as soon as it is added).
    async fn video(&self, video_id: i64) -> Result<Video, ApiError> {
        let video = self
            .video_cache
            .get_or_try(video_id, VIDEO_TTL, || async {
                self.repository.video(video_id).await?.ok_or(ApiError::NotFound(video_id))
            })
            .await?;
        Ok(Video::clone(&video))
    }

    /// The time before which counts can no longer change: the smallest watermark over
    /// every partition and topic minus the allowed lateness; `None` before attribution
    /// reports progress on every topic partition.
    pub async fn complete_until(&self) -> Result<Option<i64>, ApiError> {
        let (group, lateness) = (&self.settings.consumer_group, self.settings.allowed_lateness_ms);
        let until = self
            .progress_cache
            .get_or_try((), PROGRESS_TTL, || async {
                Ok::<_, ApiError>(self.repository.complete_until(group, lateness).await?)
            })
            .await?;
        Ok(*until)
    }

    /// A title's counts over a range, bucketed and grouped (cached, see [`crate::results`];
    /// shared, not copied, since a busy title's result holds thousands of points).
    pub async fn performance(&self, query: PerformanceQuery) -> Result<Arc<Performance>, ApiError> {
        let (video_id, range) = (query.video_id, query.range);
        // Unattributed plays are read every time: they are not under the day totals.
        let (complete_until_ms, video, stamps, unattributed_plays) = tokio::try_join!(
            self.complete_until(),
            self.video(video_id),
            async { Ok::<_, ApiError>(self.repository.stamps(video_id, range).await?) },
            async { Ok(self.repository.unattributed(video_id, range, &query.filters).await?) },
        )?;
        let Some(stamps) = stamps else {
            // Cells only: the baseline, kept briefly instead.
            let performance = self
                .performance_cache
                .get_or_try(query.clone(), cache::OPEN_TTL, || async {
                    let series = self.series(&query).await?;
                    Ok::<_, ApiError>(Performance {
                        video,
                        query,
                        complete_until_ms,
                        totals: series.totals,
                        unattributed_plays,
                        series,
                    })
                })
                .await?;
            return Ok(performance);
        };
        let series = match self.results.get(&query, &stamps) {
            Some(series) => series,
            None => {
                let series = self.series(&query).await?;
                self.results.put(query.clone(), stamps, series.clone());
                series
            }
        };
        Ok(Arc::new(Performance {
            video,
            query,
            complete_until_ms,
            totals: series.totals,
            unattributed_plays,
            series,
        }))
    }

    async fn series(&self, query: &PerformanceQuery) -> Result<Arc<Series>, ApiError> {
        let bucket_ms = query.granularity.bucket_ms(self.settings.rules.epoch_ms);
        let rows = self.repository.performance(query, bucket_ms).await?;
        let (points, totals) = query::build_series(rows, &query.group_by);
        Ok(Arc::new(Series::new(points, totals)))
    }

    /// Titles ranked by a metric over a range (cached, see [`cache`]).
    pub async fn top(&self, query: TopQuery) -> Result<TopTitles, ApiError> {
        let complete_until_ms = self.complete_until().await?;
        let ttl = cache::ttl(query.range.to_ms, complete_until_ms);
        let top = self
            .top_cache
            .get_or_try(query.clone(), ttl, || self.top_uncached(query, complete_until_ms))
            .await?;
        Ok(TopTitles::clone(&top))
    }

    async fn top_uncached(
        &self,
        query: TopQuery,
        complete_until_ms: Option<i64>,
    ) -> Result<TopTitles, ApiError> {
        let all = self.repository.title_counts(query.range, &query.filters).await?;
        let ranked = query::rank(all, query.metric, query.min_impressions, query.limit);
        let ids: Vec<i64> = ranked.iter().map(|t| t.video_id).collect();
        let mut names = self.repository.titles(&ids).await?;
        let titles = ranked
            .into_iter()
            .zip(1..)
            .map(|(t, rank)| RankedTitle {
                rank,
                video_id: t.video_id,
                title: names.remove(&t.video_id),
                counts: t.counts,
            })
            .collect();
        Ok(TopTitles { query, complete_until_ms, titles })
    }

    /// Titles whose name contains `search`.
    pub async fn search(&self, search: &str, limit: usize) -> Result<Vec<Video>, ApiError> {
        Ok(self.repository.search(search, limit).await?)
    }

    /// The early read of a title over its first `hours` hours, at `now_ms`.
    pub async fn launch(&self, video_id: i64, hours: u32, now_ms: i64) -> Result<LaunchRead, ApiError> {
        let epoch_ms = self.settings.rules.epoch_ms;
        let video = self.video(video_id).await?;
        let launch_at_ms = video.launch_at_ms.ok_or(ApiError::NotLaunched(video_id))?;
        let me = as_launch(&video, launch_at_ms);
        let lookback = self.settings.launch_lookback_ms;
        let candidates = self
            .repository
            .launches(&video.kind, launch_at_ms.saturating_sub(lookback), launch_at_ms, MAX_COMPARABLES * 10)
            .await?;
        let comparables: Vec<launch::Launch> = candidates
            .iter()
            .filter_map(|c| c.launch_at_ms.map(|at| as_launch(c, at)))
            .filter(|c| launch::is_comparable(&me, c, lookback))
            .take(MAX_COMPARABLES)
            .collect();

        let read = |l: &launch::Launch| {
            let zero = launch::age_zero_ms(l.launch_at_ms, epoch_ms);
            let end = zero.saturating_add(i64::from(hours) * 3_600_000);
            let video_id = l.video_id;
            async move {
                let epochs = self.repository.epochs(video_id, zero, end).await?;
                Ok::<_, ApiError>((
                    launch::hourly(&epochs, zero, hours),
                    launch::reached_hours(zero, now_ms, hours),
                ))
            }
        };
        let (mine, complete_until_ms) = tokio::try_join!(read(&me), self.complete_until())?;
        let mut theirs = Vec::with_capacity(comparables.len());
        for comparable in &comparables {
            theirs.push(read(comparable).await?);
        }

        let zero = launch::age_zero_ms(launch_at_ms, epoch_ms);
        let (by_hour, reached) = mine;
        let hours = (0..reached)
            .map(|hour| LaunchHour {
                hour,
                start_ms: zero + i64::from(hour) * 3_600_000,
                counts: by_hour.get(&hour).copied().unwrap_or_default(),
                comparison: launch::compare_hour(hour, &theirs),
            })
            .collect();
        Ok(LaunchRead {
            note: launch::too_few_note(comparables.len()),
            comparables: comparables.iter().map(|c| c.video_id).collect(),
            video,
            launch_at_ms,
            complete_until_ms,
            hours,
        })
    }
}

fn as_launch(video: &Video, launch_at_ms: i64) -> launch::Launch {
    launch::Launch {
        video_id: video.video_id,
        kind: video.kind.clone(),
        genres: video.genres.clone(),
        launch_at_ms,
    }
}
