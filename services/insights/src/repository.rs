//! Reading the catalog, cell counts and stream progress from Postgres or SQLite.
//!
//! Every statement is a fixed text with bound parameters: the group-by dimensions are
//! chosen by boolean binds (`CASE WHEN $g THEN country ELSE '' END`), filters by bound
//! lists (a Postgres array, a JSON array on SQLite), so nothing a client sends becomes
//! SQL. Both backends return the same rows; ordering is done in Rust so that collation
//! differences cannot change answers.

mod sql;

use std::collections::HashMap;
use std::sync::Arc;

use nearline_storage::Database;
use nearline_storage::rollups::{DAY_MS, Dims};

use crate::days::{DayCache, Shape};
use crate::planner;
use crate::query::{Counts, Dimension, Filters, GroupedRow, PerformanceQuery, TimeRange, TitleCounts};
use crate::results::Stamps;

/// A catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Video {
    /// The title's id.
    pub video_id: i64,
    /// Its name.
    pub title: String,
    /// `movie` or `series`.
    pub kind: String,
    /// Genre names.
    pub genres: Vec<String>,
    /// Launch time, ms since the Unix epoch, when known.
    pub launch_at_ms: Option<i64>,
}

type VideoRow = (i64, String, String, String, Option<i64>);

fn video(row: VideoRow) -> Video {
    let (video_id, title, kind, genres, launch_at_ms) = row;
    // The catalog stores genres as a JSON array; a malformed value means no genres.
    let genres = serde_json::from_str(&genres).unwrap_or_default();
    Video { video_id, title, kind, genres, launch_at_ms }
}

fn counts(impressions: i64, plays: i64) -> Counts {
    Counts { impressions: impressions.max(0).unsigned_abs(), plays: plays.max(0).unsigned_abs() }
}

/// The dimensions a query groups or filters by: those its roll-ups must keep.
fn needed(group_by: impl IntoIterator<Item = Dimension>, filters: &Filters) -> Dims {
    let filtered = Dimension::ALL.into_iter().filter(|d| !filters.values(*d).is_empty());
    group_by.into_iter().chain(filtered).fold(Dims::NONE, |all, d| {
        all.union(match d {
            Dimension::Country => Dims::COUNTRY,
            Dimension::Device => Dims::DEVICE,
            Dimension::Canvas => Dims::CANVAS,
            Dimension::Region => Dims::REGION,
        })
    })
}

/// JSON array text of a filter list, for SQLite's `json_each`.
fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).expect("a list of strings serializes")
}

/// Read access to the counts of either backend.
#[derive(Debug, Clone)]
pub struct Repository {
    database: Database,
    /// Whether queries read the roll-ups where they fit (the default) or only cells.
    rollups: bool,
    /// Whole days of fine series (with the roll-ups only).
    days: Option<Arc<DayCache>>,
}

impl Repository {
    /// Reads from `database`.
    pub fn new(database: Database) -> Self {
        Self { database, rollups: true, days: Some(Arc::default()) }
    }

    /// Reads from `database` with the roll-ups but without caching days: what the day
    /// cache must agree with (tests).
    pub fn uncached(database: Database) -> Self {
        Self { database, rollups: true, days: None }
    }

    /// Reads from `database`, answering every query from the cells alone: what the
    /// roll-ups must agree with (tests) and the baseline they are measured against.
    pub fn cells_only(database: Database) -> Self {
        Self { database, rollups: false, days: None }
    }

    /// The catalog entry of `video_id`, if any.
    pub async fn video(&self, video_id: i64) -> sqlx::Result<Option<Video>> {
        let row: Option<VideoRow> = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_as(sql::pg::VIDEO).bind(video_id).fetch_optional(pool).await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_as(sql::sqlite::VIDEO).bind(video_id).fetch_optional(pool).await?
            }
        };
        Ok(row.map(video))
    }

    /// Titles whose name contains `search` (case-insensitive), at most `limit`, by name.
    pub async fn search(&self, search: &str, limit: usize) -> sqlx::Result<Vec<Video>> {
        let escaped = search.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<VideoRow> = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_as(sql::pg::SEARCH).bind(pattern).bind(limit).fetch_all(pool).await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_as(sql::sqlite::SEARCH).bind(pattern).bind(limit).fetch_all(pool).await?
            }
        };
        let mut videos: Vec<Video> = rows.into_iter().map(video).collect();
        videos.sort_by(|a, b| {
            a.title.to_lowercase().cmp(&b.title.to_lowercase()).then(a.video_id.cmp(&b.video_id))
        });
        Ok(videos)
    }

    /// Names of the given titles (those in the catalog).
    pub async fn titles(&self, ids: &[i64]) -> sqlx::Result<HashMap<i64, String>> {
        let rows: Vec<(i64, String)> = match &self.database {
            Database::Postgres(pool) => sqlx::query_as(sql::pg::TITLES).bind(ids).fetch_all(pool).await?,
            Database::Sqlite(pool) => {
                let ids = serde_json::to_string(ids).expect("a list of integers serializes");
                sqlx::query_as(sql::sqlite::TITLES).bind(ids).fetch_all(pool).await?
            }
        };
        Ok(rows.into_iter().collect())
    }

    /// Launched titles of `kind` with a launch time in `[from_ms, to_ms)`, newest first.
    pub async fn launches(
        &self,
        kind: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> sqlx::Result<Vec<Video>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<VideoRow> = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_as(sql::pg::LAUNCHES)
                    .bind(kind)
                    .bind(from_ms)
                    .bind(to_ms)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_as(sql::sqlite::LAUNCHES)
                    .bind(kind)
                    .bind(from_ms)
                    .bind(to_ms)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows.into_iter().map(video).collect())
    }

    /// The time before which counts can no longer change (see
    /// [`nearline_storage::progress`], the definition attribution's `GetProgress` uses).
    pub async fn complete_until(
        &self,
        consumer_group: &str,
        allowed_lateness_ms: i64,
    ) -> sqlx::Result<Option<i64>> {
        nearline_storage::progress::complete_until(&self.database, consumer_group, allowed_lateness_ms).await
    }

    /// The title's counts in `query`'s range, summed per bucket and per grouped
    /// dimension (the others empty), filtered; unordered. Rows of a whole day of a series
    /// finer than a day come from the [`DayCache`] while that day's totals are unchanged.
    pub async fn performance(
        &self,
        query: &PerformanceQuery,
        bucket_ms: i64,
    ) -> sqlx::Result<Vec<GroupedRow>> {
        let (from_ms, to_ms) = (query.range.from_ms, query.range.to_ms);
        let first_day = from_ms.div_euclid(DAY_MS) * DAY_MS + if from_ms % DAY_MS == 0 { 0 } else { DAY_MS };
        let end_day = to_ms.div_euclid(DAY_MS) * DAY_MS;
        let cache = self.days.as_ref().filter(|_| bucket_ms < DAY_MS && DAY_MS % bucket_ms == 0);
        let Some(cache) = cache.filter(|_| first_day < end_day) else {
            return self.performance_rows(query, from_ms, to_ms, bucket_ms).await;
        };
        // Totals first, rows after: see `days` for why that order keeps the cache exact.
        let totals = self.day_totals(query.video_id, first_day, end_day).await?;
        let shape = Shape {
            video_id: query.video_id,
            bucket_ms,
            group_by: query.group_by.clone(),
            filters: query.filters.clone(),
        };
        let mut rows = Vec::new();
        let mut missed = Vec::new();
        for day in (first_day..end_day).step_by(DAY_MS as usize) {
            let stamp = totals.get(&day).copied().unwrap_or_default();
            if stamp.is_empty() {
                continue; // no counts that day at all
            }
            match cache.get(&shape, day, stamp) {
                Some(cached) => rows.extend(cached.iter().cloned()),
                None => missed.push((day, stamp)),
            }
        }
        // The partial days at the edges, then the missed days in runs of adjacent ones.
        let mut runs: Vec<(i64, i64)> = Vec::new();
        for &(day, _) in &missed {
            match runs.last_mut() {
                Some(last) if last.1 == day => last.1 = day + DAY_MS,
                _ => runs.push((day, day + DAY_MS)),
            }
        }
        let ranges: Vec<(i64, i64)> = [(from_ms, first_day), (end_day, to_ms)]
            .into_iter()
            .chain(runs)
            .filter(|(from, to)| from < to)
            .collect();
        let reads = ranges.iter().map(|&(from, to)| self.performance_rows(query, from, to, bucket_ms));
        let read = futures::future::try_join_all(reads).await?;
        let mut by_day: HashMap<i64, Vec<GroupedRow>> =
            missed.iter().map(|&(day, _)| (day, Vec::new())).collect();
        for (&(from, to), range_rows) in ranges.iter().zip(read) {
            for row in range_rows {
                match by_day.get_mut(&(row.start_ms.div_euclid(DAY_MS) * DAY_MS)) {
                    Some(day) if from >= first_day && to <= end_day => day.push(row),
                    _ => rows.push(row),
                }
            }
        }
        for (day, stamp) in missed {
            let day_rows = by_day.remove(&day).unwrap_or_default();
            rows.extend(day_rows.iter().cloned());
            cache.put(&shape, day, stamp, day_rows);
        }
        Ok(rows)
    }

    /// The title's totals of every day `range` touches (days with counts, by start), what
    /// a result over `range` is valid under (see [`crate::results`]); `None` when this
    /// repository reads cells only.
    pub async fn stamps(&self, video_id: i64, range: TimeRange) -> sqlx::Result<Option<Stamps>> {
        if !self.rollups {
            return Ok(None);
        }
        let from = range.from_ms.div_euclid(DAY_MS) * DAY_MS;
        let mut stamps: Stamps = self.day_totals(video_id, from, range.to_ms).await?.into_iter().collect();
        stamps.sort_unstable_by_key(|(day, _)| *day);
        Ok(Some(stamps))
    }

    /// The title's totals per day starting in `[from_ms, to_ms)` (days with counts only).
    async fn day_totals(
        &self,
        video_id: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> sqlx::Result<HashMap<i64, Counts>> {
        let rows: Vec<(i64, i64, i64)> = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_as(sql::pg::DAY_TOTALS)
                    .bind(video_id)
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_all(pool)
                    .await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_as(sql::sqlite::DAY_TOTALS)
                    .bind(video_id)
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows.into_iter().map(|(day, impressions, plays)| (day, counts(impressions, plays))).collect())
    }

    /// [`Self::performance`] over `[from_ms, to_ms)`, from the database: the planned
    /// parts are read at once, each on its own connection, so an unaligned range costs
    /// about one statement's time rather than the sum of up to five.
    async fn performance_rows(
        &self,
        query: &PerformanceQuery,
        from_ms: i64,
        to_ms: i64,
        bucket_ms: i64,
    ) -> sqlx::Result<Vec<GroupedRow>> {
        let needed = needed(query.group_by.iter().copied(), &query.filters);
        let parts = self.plan(from_ms, to_ms, Some(bucket_ms), needed);
        let reads = parts.into_iter().map(|part| self.part_rows(query, part, bucket_ms));
        // Rows of different parts for the same bucket and group are merged downstream.
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// One planned part of a performance query.
    async fn part_rows(
        &self,
        query: &PerformanceQuery,
        part: planner::Part,
        bucket_ms: i64,
    ) -> sqlx::Result<Vec<GroupedRow>> {
        let grouped = |d: Dimension| query.group_by.contains(&d);
        let f = &query.filters;
        type Row = (i64, String, String, String, String, i64, i64);
        let rows: Vec<Row> = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_as::<_, Row>(sql::PG.performance(part.source))
                    .bind(query.video_id)
                    .bind(part.from_ms)
                    .bind(part.to_ms)
                    .bind(bucket_ms)
                    .bind(grouped(Dimension::Country))
                    .bind(grouped(Dimension::Device))
                    .bind(grouped(Dimension::Canvas))
                    .bind(grouped(Dimension::Region))
                    .bind(&f.country)
                    .bind(&f.device)
                    .bind(&f.canvas)
                    .bind(&f.region)
                    .fetch_all(pool)
                    .await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_as::<_, Row>(sql::SQLITE.performance(part.source))
                    .bind(query.video_id)
                    .bind(part.from_ms)
                    .bind(part.to_ms)
                    .bind(bucket_ms)
                    .bind(grouped(Dimension::Country))
                    .bind(grouped(Dimension::Device))
                    .bind(grouped(Dimension::Canvas))
                    .bind(grouped(Dimension::Region))
                    .bind(json_list(&f.country))
                    .bind(json_list(&f.device))
                    .bind(json_list(&f.canvas))
                    .bind(json_list(&f.region))
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(start_ms, country, device, canvas, region, impressions, plays)| GroupedRow {
                start_ms,
                dims: [country, device, canvas, region],
                counts: counts(impressions, plays),
            })
            .collect())
    }

    /// Unattributed plays of the title in `range` (country, device and region filters
    /// apply, the play's own; such plays have no canvas).
    pub async fn unattributed(
        &self,
        video_id: i64,
        range: TimeRange,
        filters: &Filters,
    ) -> sqlx::Result<u64> {
        let plays: i64 = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_scalar(sql::pg::UNATTRIBUTED)
                    .bind(video_id)
                    .bind(range.from_ms)
                    .bind(range.to_ms)
                    .bind(&filters.country)
                    .bind(&filters.device)
                    .bind(&filters.region)
                    .fetch_one(pool)
                    .await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_scalar(sql::sqlite::UNATTRIBUTED)
                    .bind(video_id)
                    .bind(range.from_ms)
                    .bind(range.to_ms)
                    .bind(json_list(&filters.country))
                    .bind(json_list(&filters.device))
                    .bind(json_list(&filters.region))
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(plays.max(0).unsigned_abs())
    }

    /// Every title's counts in `range`, filtered; unordered.
    pub async fn title_counts(&self, range: TimeRange, filters: &Filters) -> sqlx::Result<Vec<TitleCounts>> {
        let mut by_title: HashMap<i64, (i64, i64)> = HashMap::new();
        for part in self.plan(range.from_ms, range.to_ms, None, needed([], filters)) {
            let rows: Vec<(i64, i64, i64)> = match &self.database {
                Database::Postgres(pool) => {
                    sqlx::query_as(sql::PG.top(part.source))
                        .bind(part.from_ms)
                        .bind(part.to_ms)
                        .bind(&filters.country)
                        .bind(&filters.device)
                        .bind(&filters.canvas)
                        .bind(&filters.region)
                        .fetch_all(pool)
                        .await?
                }
                Database::Sqlite(pool) => {
                    sqlx::query_as(sql::SQLITE.top(part.source))
                        .bind(part.from_ms)
                        .bind(part.to_ms)
                        .bind(json_list(&filters.country))
                        .bind(json_list(&filters.device))
                        .bind(json_list(&filters.canvas))
                        .bind(json_list(&filters.region))
                        .fetch_all(pool)
                        .await?
                }
            };
            for (video_id, impressions, plays) in rows {
                let sum = by_title.entry(video_id).or_default();
                *sum = (sum.0 + impressions, sum.1 + plays);
            }
        }
        Ok(by_title
            .into_iter()
            .map(|(video_id, (impressions, plays))| TitleCounts {
                video_id,
                counts: counts(impressions, plays),
            })
            .collect())
    }

    /// The parts of `[from_ms, to_ms)` and their tables: roll-ups where they fit, unless
    /// this repository reads cells only.
    fn plan(&self, from_ms: i64, to_ms: i64, bucket_ms: Option<i64>, needed: Dims) -> Vec<planner::Part> {
        if self.rollups {
            planner::plan(from_ms, to_ms, bucket_ms, needed)
        } else {
            vec![planner::Part { source: planner::Source::Cells, from_ms, to_ms }]
        }
    }

    /// The title's counts per epoch in `[from_ms, to_ms)`, all cells summed.
    pub async fn epochs(&self, video_id: i64, from_ms: i64, to_ms: i64) -> sqlx::Result<Vec<(i64, Counts)>> {
        let rows: Vec<(i64, i64, i64)> = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_as(sql::pg::EPOCHS)
                    .bind(video_id)
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_all(pool)
                    .await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_as(sql::sqlite::EPOCHS)
                    .bind(video_id)
                    .bind(from_ms)
                    .bind(to_ms)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(rows.into_iter().map(|(epoch, impressions, plays)| (epoch, counts(impressions, plays))).collect())
    }
}
