//! The hourly and daily roll-ups of `cell_counts` (migration `..._rollups.sql`): what
//! attribution keeps in step with the cells and insights reads instead of them.
//!
//! A roll-up row is the sum of the cells whose epoch starts in its hour or day (UTC,
//! floor division), under the same column names as `cell_counts`, its
//! `epoch_start_ms` holding the hour's or the day's start.

/// A roll-up of `cell_counts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rollup {
    /// `cell_counts_hourly`.
    Hourly,
    /// `cell_counts_daily`.
    Daily,
}

/// One hour, ms.
pub const HOUR_MS: i64 = 3_600_000;
/// One day, ms.
pub const DAY_MS: i64 = 24 * HOUR_MS;

impl Rollup {
    /// Both, finest first.
    pub const ALL: [Rollup; 2] = [Rollup::Hourly, Rollup::Daily];

    /// The table.
    pub fn table(self) -> &'static str {
        match self {
            Rollup::Hourly => "cell_counts_hourly",
            Rollup::Daily => "cell_counts_daily",
        }
    }

    /// How much time one row covers, ms.
    pub fn span_ms(self) -> i64 {
        match self {
            Rollup::Hourly => HOUR_MS,
            Rollup::Daily => DAY_MS,
        }
    }

    /// The start of the row that a cell whose epoch starts at `epoch_start_ms` belongs to.
    pub fn start_of(self, epoch_start_ms: i64) -> i64 {
        epoch_start_ms.div_euclid(self.span_ms()) * self.span_ms()
    }
}

/// Recomputes both roll-ups from the cells (SQL both backends run): for data written
/// into `cell_counts` by other means than attribution (fixtures, generated benchmark
/// data). Attribution keeps them in step itself.
pub const REBUILD_SQL: &str = "
DELETE FROM cell_counts_hourly;
DELETE FROM cell_counts_daily;
INSERT INTO cell_counts_hourly (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
SELECT video_id, epoch_start_ms - ((epoch_start_ms % 3600000) + 3600000) % 3600000,
       country, device, canvas, SUM(impressions), SUM(plays)
FROM cell_counts GROUP BY 1, 2, 3, 4, 5;
INSERT INTO cell_counts_daily (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
SELECT video_id, epoch_start_ms - ((epoch_start_ms % 86400000) + 86400000) % 86400000,
       country, device, canvas, SUM(impressions), SUM(plays)
FROM cell_counts GROUP BY 1, 2, 3, 4, 5;
";

/// Runs [`REBUILD_SQL`].
pub async fn rebuild(database: &crate::Database) -> sqlx::Result<()> {
    match database {
        crate::Database::Postgres(pool) => sqlx::raw_sql(REBUILD_SQL).execute(pool).await.map(drop),
        crate::Database::Sqlite(pool) => sqlx::raw_sql(REBUILD_SQL).execute(pool).await.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::Rollup;

    #[test]
    fn rows_start_at_the_floor_of_their_hour_and_day() {
        assert_eq!(Rollup::Hourly.start_of(5_400_000), 3_600_000);
        assert_eq!(Rollup::Daily.start_of(90_000_000), 86_400_000);
        assert_eq!(Rollup::Hourly.start_of(-1_800_000), -3_600_000, "floor, not truncation");
    }
}
