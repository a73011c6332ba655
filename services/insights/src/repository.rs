//! Reading the catalog, cell counts and stream progress from Postgres or SQLite.
//!
//! Every statement is a fixed text with bound parameters: the group-by dimensions are
//! chosen by boolean binds (`CASE WHEN $g THEN country ELSE '' END`), filters by bound
//! lists (a Postgres array, a JSON array on SQLite), so nothing a client sends becomes
//! SQL. Both backends return the same rows; ordering is done in Rust so that collation
//! differences cannot change answers.

mod sql;

use std::collections::HashMap;

use nearline_storage::Database;

use crate::planner;
use crate::query::{Counts, Dimension, Filters, GroupedRow, PerformanceQuery, TimeRange, TitleCounts};

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
}

impl Repository {
    /// Reads from `database`.
    pub fn new(database: Database) -> Self {
        Self { database, rollups: true }
    }

    /// Reads from `database`, answering every query from the cells alone: what the
    /// roll-ups must agree with (tests) and the baseline they are measured against.
    pub fn cells_only(database: Database) -> Self {
        Self { database, rollups: false }
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
    /// dimension (the others empty), filtered; unordered.
    pub async fn performance(
        &self,
        query: &PerformanceQuery,
        bucket_ms: i64,
    ) -> sqlx::Result<Vec<GroupedRow>> {
        let grouped = |d: Dimension| query.group_by.contains(&d);
        let f = &query.filters;
        type Row = (i64, String, String, String, i64, i64);
        let mut rows: Vec<Row> = Vec::new();
        for part in self.plan(query.range.from_ms, query.range.to_ms, Some(bucket_ms)) {
            rows.extend(match &self.database {
                Database::Postgres(pool) => {
                    sqlx::query_as::<_, Row>(sql::PG.performance(part.source))
                        .bind(query.video_id)
                        .bind(part.from_ms)
                        .bind(part.to_ms)
                        .bind(bucket_ms)
                        .bind(grouped(Dimension::Country))
                        .bind(grouped(Dimension::Device))
                        .bind(grouped(Dimension::Canvas))
                        .bind(&f.country)
                        .bind(&f.device)
                        .bind(&f.canvas)
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
                        .bind(json_list(&f.country))
                        .bind(json_list(&f.device))
                        .bind(json_list(&f.canvas))
                        .fetch_all(pool)
                        .await?
                }
            });
        }
        // Rows of different parts for the same bucket and group are merged downstream.
        Ok(rows
            .into_iter()
            .map(|(start_ms, country, device, canvas, impressions, plays)| GroupedRow {
                start_ms,
                dims: [country, device, canvas],
                counts: counts(impressions, plays),
            })
            .collect())
    }

    /// Unattributed plays of the title in `range` (country and device filters apply;
    /// such plays have no canvas).
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
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(plays.max(0).unsigned_abs())
    }

    /// Every title's counts in `range`, filtered; unordered.
    pub async fn title_counts(&self, range: TimeRange, filters: &Filters) -> sqlx::Result<Vec<TitleCounts>> {
        let mut by_title: HashMap<i64, (i64, i64)> = HashMap::new();
        for part in self.plan(range.from_ms, range.to_ms, None) {
            let rows: Vec<(i64, i64, i64)> = match &self.database {
                Database::Postgres(pool) => {
                    sqlx::query_as(sql::PG.top(part.source))
                        .bind(part.from_ms)
                        .bind(part.to_ms)
                        .bind(&filters.country)
                        .bind(&filters.device)
                        .bind(&filters.canvas)
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
    fn plan(&self, from_ms: i64, to_ms: i64, bucket_ms: Option<i64>) -> Vec<planner::Part> {
        if self.rollups {
            planner::plan(from_ms, to_ms, bucket_ms)
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
