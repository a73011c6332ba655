//! The fixed statement texts, one set per backend. They differ only in how a bound list
//! is matched: `= ANY($n)` over a Postgres array, `IN (SELECT value FROM json_each(?n))`
//! over a JSON array on SQLite. An empty list matches everything.

use std::sync::LazyLock;

use nearline_storage::rollups::Rollup;

use crate::planner::Source;

/// Postgres statements.
pub(super) mod pg {
    pub(in crate::repository) const VIDEO: &str =
        "SELECT video_id, title, kind, genres, launch_at_ms FROM videos WHERE video_id = $1";

    pub(in crate::repository) const SEARCH: &str = r"SELECT video_id, title, kind, genres, launch_at_ms
        FROM videos WHERE lower(title) LIKE $1 ESCAPE '\' ORDER BY video_id LIMIT $2";

    pub(in crate::repository) const TITLES: &str =
        "SELECT video_id, title FROM videos WHERE video_id = ANY($1)";

    pub(in crate::repository) const LAUNCHES: &str = "SELECT video_id, title, kind, genres, launch_at_ms
        FROM videos WHERE kind = $1 AND launch_at_ms >= $2 AND launch_at_ms < $3
        ORDER BY launch_at_ms DESC, video_id LIMIT $4";

    pub(in crate::repository) const PERFORMANCE: &str = "SELECT
            (epoch_start_ms / $4) * $4,
            CASE WHEN $5 THEN country ELSE '' END,
            CASE WHEN $6 THEN device ELSE '' END,
            CASE WHEN $7 THEN canvas ELSE '' END,
            CASE WHEN $8 THEN region ELSE '' END,
            SUM(impressions)::BIGINT,
            SUM(plays)::BIGINT
        FROM cell_counts
        WHERE video_id = $1 AND epoch_start_ms >= $2 AND epoch_start_ms < $3
          AND (cardinality($9::text[]) = 0 OR country = ANY($9))
          AND (cardinality($10::text[]) = 0 OR device = ANY($10))
          AND (cardinality($11::text[]) = 0 OR canvas = ANY($11))
          AND (cardinality($12::text[]) = 0 OR region = ANY($12))
        GROUP BY 1, 2, 3, 4, 5";

    pub(in crate::repository) const DAY_TOTALS: &str = "SELECT epoch_start_ms, impressions, plays
        FROM title_counts_daily WHERE video_id = $1 AND epoch_start_ms >= $2 AND epoch_start_ms < $3";

    pub(in crate::repository) const UNATTRIBUTED: &str = "SELECT COALESCE(SUM(plays), 0)::BIGINT
        FROM unattributed_counts
        WHERE video_id = $1 AND epoch_start_ms >= $2 AND epoch_start_ms < $3
          AND (cardinality($4::text[]) = 0 OR country = ANY($4))
          AND (cardinality($5::text[]) = 0 OR device = ANY($5))
          AND (cardinality($6::text[]) = 0 OR region = ANY($6))";

    pub(in crate::repository) const TOP: &str =
        "SELECT video_id, SUM(impressions)::BIGINT, SUM(plays)::BIGINT
        FROM cell_counts
        WHERE epoch_start_ms >= $1 AND epoch_start_ms < $2
          AND (cardinality($3::text[]) = 0 OR country = ANY($3))
          AND (cardinality($4::text[]) = 0 OR device = ANY($4))
          AND (cardinality($5::text[]) = 0 OR canvas = ANY($5))
          AND (cardinality($6::text[]) = 0 OR region = ANY($6))
        GROUP BY video_id";

    pub(in crate::repository) const EPOCHS: &str =
        "SELECT epoch_start_ms, SUM(impressions)::BIGINT, SUM(plays)::BIGINT
        FROM cell_counts
        WHERE video_id = $1 AND epoch_start_ms >= $2 AND epoch_start_ms < $3
        GROUP BY epoch_start_ms";
}

/// SQLite statements.
pub(super) mod sqlite {
    pub(in crate::repository) const VIDEO: &str =
        "SELECT video_id, title, kind, genres, launch_at_ms FROM videos WHERE video_id = ?1";

    pub(in crate::repository) const SEARCH: &str = r"SELECT video_id, title, kind, genres, launch_at_ms
        FROM videos WHERE lower(title) LIKE ?1 ESCAPE '\' ORDER BY video_id LIMIT ?2";

    pub(in crate::repository) const TITLES: &str =
        "SELECT video_id, title FROM videos WHERE video_id IN (SELECT value FROM json_each(?1))";

    pub(in crate::repository) const LAUNCHES: &str = "SELECT video_id, title, kind, genres, launch_at_ms
        FROM videos WHERE kind = ?1 AND launch_at_ms >= ?2 AND launch_at_ms < ?3
        ORDER BY launch_at_ms DESC, video_id LIMIT ?4";

    pub(in crate::repository) const PERFORMANCE: &str = "SELECT
            (epoch_start_ms / ?4) * ?4,
            CASE WHEN ?5 THEN country ELSE '' END,
            CASE WHEN ?6 THEN device ELSE '' END,
            CASE WHEN ?7 THEN canvas ELSE '' END,
            CASE WHEN ?8 THEN region ELSE '' END,
            SUM(impressions),
            SUM(plays)
        FROM cell_counts
        WHERE video_id = ?1 AND epoch_start_ms >= ?2 AND epoch_start_ms < ?3
          AND (json_array_length(?9) = 0 OR country IN (SELECT value FROM json_each(?9)))
          AND (json_array_length(?10) = 0 OR device IN (SELECT value FROM json_each(?10)))
          AND (json_array_length(?11) = 0 OR canvas IN (SELECT value FROM json_each(?11)))
          AND (json_array_length(?12) = 0 OR region IN (SELECT value FROM json_each(?12)))
        GROUP BY 1, 2, 3, 4, 5";

    pub(in crate::repository) const DAY_TOTALS: &str = "SELECT epoch_start_ms, impressions, plays
        FROM title_counts_daily WHERE video_id = ?1 AND epoch_start_ms >= ?2 AND epoch_start_ms < ?3";

    pub(in crate::repository) const UNATTRIBUTED: &str = "SELECT COALESCE(SUM(plays), 0)
        FROM unattributed_counts
        WHERE video_id = ?1 AND epoch_start_ms >= ?2 AND epoch_start_ms < ?3
          AND (json_array_length(?4) = 0 OR country IN (SELECT value FROM json_each(?4)))
          AND (json_array_length(?5) = 0 OR device IN (SELECT value FROM json_each(?5)))
          AND (json_array_length(?6) = 0 OR region IN (SELECT value FROM json_each(?6)))";

    pub(in crate::repository) const TOP: &str = "SELECT video_id, SUM(impressions), SUM(plays)
        FROM cell_counts
        WHERE epoch_start_ms >= ?1 AND epoch_start_ms < ?2
          AND (json_array_length(?3) = 0 OR country IN (SELECT value FROM json_each(?3)))
          AND (json_array_length(?4) = 0 OR device IN (SELECT value FROM json_each(?4)))
          AND (json_array_length(?5) = 0 OR canvas IN (SELECT value FROM json_each(?5)))
          AND (json_array_length(?6) = 0 OR region IN (SELECT value FROM json_each(?6)))
        GROUP BY video_id";

    pub(in crate::repository) const EPOCHS: &str = "SELECT epoch_start_ms, SUM(impressions), SUM(plays)
        FROM cell_counts
        WHERE video_id = ?1 AND epoch_start_ms >= ?2 AND epoch_start_ms < ?3
        GROUP BY epoch_start_ms";
}

/// The performance and top statements of a backend, one per source table: the cell
/// statements reading a roll-up instead (same columns), for the planner's parts.
pub(super) struct BySource {
    /// The cells' first, then [`Rollup::ALL`]'s in order.
    performance: Vec<String>,
    top: Vec<String>,
}

impl BySource {
    fn new(performance: &str, top: &str) -> Self {
        let on = |statement: &str, source: Source| {
            statement.replace("FROM cell_counts\n", &format!("FROM {}\n", source.table()))
        };
        let sources: Vec<Source> =
            std::iter::once(Source::Cells).chain(Rollup::ALL.map(Source::Rollup)).collect();
        Self {
            performance: sources.iter().map(|s| on(performance, *s)).collect(),
            top: sources.iter().map(|s| on(top, *s)).collect(),
        }
    }

    fn index(source: Source) -> usize {
        match source {
            Source::Cells => 0,
            Source::Rollup(rollup) => {
                1 + Rollup::ALL.iter().position(|r| *r == rollup).expect("every roll-up is in Rollup::ALL")
            }
        }
    }

    pub(super) fn performance(&'static self, source: Source) -> &'static str {
        &self.performance[Self::index(source)]
    }

    pub(super) fn top(&'static self, source: Source) -> &'static str {
        &self.top[Self::index(source)]
    }
}

/// Postgres, by source.
pub(super) static PG: LazyLock<BySource> = LazyLock::new(|| BySource::new(pg::PERFORMANCE, pg::TOP));
/// SQLite, by source.
pub(super) static SQLITE: LazyLock<BySource> =
    LazyLock::new(|| BySource::new(sqlite::PERFORMANCE, sqlite::TOP));
