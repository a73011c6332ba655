//! The roll-ups of `cell_counts` (migrations `..._rollups.sql` and
//! `..._rollups_by_dimensions.sql`): what attribution keeps in step with the cells and
//! insights reads instead of them.
//!
//! A roll-up row is the sum of the cells whose epoch starts in its hour or day (UTC,
//! floor division) and that agree on the dimensions the roll-up keeps; every roll-up has
//! the columns of `cell_counts`, its `epoch_start_ms` holding the hour's or the day's
//! start and a dimension it does not keep holding `''`. So the statements that read
//! cells read any roll-up unchanged, and a roll-up answers exactly the queries that
//! neither group nor filter by a dimension it dropped.
//!
//! The dimensions are country, device, canvas and region (where the impression was
//! logged; migration `..._cells_by_region.sql`), in that column order everywhere.

use std::sync::LazyLock;

/// How much time a roll-up row covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Span {
    /// One UTC hour.
    Hour,
    /// One UTC day.
    Day,
}

/// The cell dimensions a roll-up keeps, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dims(u8);

impl Dims {
    /// No dimension: one row per title and hour or day.
    pub const NONE: Dims = Dims(0);
    /// Country.
    pub const COUNTRY: Dims = Dims(1);
    /// Device.
    pub const DEVICE: Dims = Dims(2);
    /// Canvas.
    pub const CANVAS: Dims = Dims(4);
    /// Region the impression was logged in.
    pub const REGION: Dims = Dims(8);
    /// Country and device, what the dashboards slice by most, and region: a country is
    /// served from one region or a few, so keeping it barely adds rows.
    pub const COUNTRY_DEVICE_REGION: Dims = Dims(1 | 2 | 8);
    /// Every dimension.
    pub const ALL: Dims = Dims(1 | 2 | 4 | 8);

    /// Each single dimension, in column order (country, device, canvas, region).
    pub const EACH: [Dims; 4] = [Dims::COUNTRY, Dims::DEVICE, Dims::CANVAS, Dims::REGION];

    /// Both sets.
    pub fn union(self, other: Dims) -> Dims {
        Dims(self.0 | other.0)
    }

    /// How many dimensions the set holds.
    pub fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether every dimension of `other` is in this set.
    pub fn contains(self, other: Dims) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The cell dimension columns, in order.
pub const DIM_COLUMNS: [&str; 4] = ["country", "device", "canvas", "region"];

/// One hour, ms.
pub const HOUR_MS: i64 = 3_600_000;
/// One day, ms.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// A roll-up of `cell_counts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rollup {
    /// The time a row covers.
    pub span: Span,
    /// The dimensions kept.
    pub dims: Dims,
}

impl Rollup {
    /// `cell_counts_hourly`: every dimension, by hour.
    pub const HOURLY: Rollup = Rollup { span: Span::Hour, dims: Dims::ALL };
    /// `cell_counts_daily`: every dimension, by day.
    pub const DAILY: Rollup = Rollup { span: Span::Day, dims: Dims::ALL };
    /// `country_device_counts_hourly` (keeps the region too).
    pub const HOURLY_COUNTRY_DEVICE: Rollup = Rollup { span: Span::Hour, dims: Dims::COUNTRY_DEVICE_REGION };
    /// `country_device_counts_daily` (keeps the region too).
    pub const DAILY_COUNTRY_DEVICE: Rollup = Rollup { span: Span::Day, dims: Dims::COUNTRY_DEVICE_REGION };
    /// `title_counts_hourly`: a title's totals per hour.
    pub const HOURLY_TITLE: Rollup = Rollup { span: Span::Hour, dims: Dims::NONE };
    /// `title_counts_daily`: a title's totals per day.
    pub const DAILY_TITLE: Rollup = Rollup { span: Span::Day, dims: Dims::NONE };

    /// Every roll-up attribution keeps.
    pub const ALL: [Rollup; 6] = [
        Rollup::HOURLY,
        Rollup::DAILY,
        Rollup::HOURLY_COUNTRY_DEVICE,
        Rollup::DAILY_COUNTRY_DEVICE,
        Rollup::HOURLY_TITLE,
        Rollup::DAILY_TITLE,
    ];

    /// The table.
    pub fn table(self) -> &'static str {
        match (self.span, self.dims) {
            (Span::Hour, Dims::ALL) => "cell_counts_hourly",
            (Span::Day, Dims::ALL) => "cell_counts_daily",
            (Span::Hour, Dims::COUNTRY_DEVICE_REGION) => "country_device_counts_hourly",
            (Span::Day, Dims::COUNTRY_DEVICE_REGION) => "country_device_counts_daily",
            (Span::Hour, Dims::NONE) => "title_counts_hourly",
            (Span::Day, Dims::NONE) => "title_counts_daily",
            (span, dims) => unreachable!("no roll-up by {span:?} keeping {dims:?}"),
        }
    }

    /// How much time one row covers, ms.
    pub fn span_ms(self) -> i64 {
        match self.span {
            Span::Hour => HOUR_MS,
            Span::Day => DAY_MS,
        }
    }

    /// The start of the row that a cell whose epoch starts at `epoch_start_ms` belongs to.
    pub fn start_of(self, epoch_start_ms: i64) -> i64 {
        epoch_start_ms.div_euclid(self.span_ms()) * self.span_ms()
    }

    /// The values a cell's `[country, device, canvas, region]` take in this roll-up: its
    /// own where kept, `''` where dropped.
    pub fn key_dims(self, dims: [&str; 4]) -> [&str; 4] {
        std::array::from_fn(|i| if self.dims.contains(Dims::EACH[i]) { dims[i] } else { "" })
    }

    /// SQL selecting this roll-up's key dimensions from cell columns named `country`,
    /// `device`, `canvas` and `region` (both backends).
    pub fn key_dims_sql(self) -> String {
        self.key_dims(DIM_COLUMNS).map(|column| if column.is_empty() { "''" } else { column }).join(", ")
    }

    /// SQL turning a cell column `epoch_start_ms` into this roll-up's row start (floor
    /// division, also before 1970: `%` keeps the dividend's sign; both backends).
    pub fn start_sql(self) -> String {
        let span = self.span_ms();
        format!("epoch_start_ms - ((epoch_start_ms % {span}) + {span}) % {span}")
    }
}

/// Recomputes every roll-up from the cells (SQL both backends run): for data written
/// into `cell_counts` by other means than attribution (fixtures, generated benchmark
/// data). Attribution keeps them in step itself.
pub fn rebuild_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        Rollup::ALL
            .iter()
            .map(|r| {
                format!(
                    "DELETE FROM {table};
INSERT INTO {table} (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays)
SELECT video_id, {start}, {dims}, SUM(impressions), SUM(plays)
FROM cell_counts GROUP BY 1, 2, 3, 4, 5, 6;
",
                    table = r.table(),
                    start = r.start_sql(),
                    dims = r.key_dims_sql(),
                )
            })
            .collect()
    });
    &SQL
}

/// Runs [`rebuild_sql`].
pub async fn rebuild(database: &crate::Database) -> sqlx::Result<()> {
    let sql = sqlx::AssertSqlSafe(rebuild_sql());
    match database {
        crate::Database::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        crate::Database::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::{Dims, Rollup};

    #[test]
    fn rows_start_at_the_floor_of_their_hour_and_day() {
        assert_eq!(Rollup::HOURLY.start_of(5_400_000), 3_600_000);
        assert_eq!(Rollup::DAILY.start_of(90_000_000), 86_400_000);
        assert_eq!(Rollup::HOURLY.start_of(-1_800_000), -3_600_000, "floor, not truncation");
    }

    #[test]
    fn dropped_dimensions_are_empty() {
        assert_eq!(
            Rollup::HOURLY_COUNTRY_DEVICE.key_dims(["US", "tv", "row", "us-east"]),
            ["US", "tv", "", "us-east"]
        );
        assert_eq!(Rollup::DAILY_TITLE.key_dims_sql(), "'', '', '', ''");
        assert_eq!(Rollup::DAILY.key_dims_sql(), "country, device, canvas, region");
        assert!(
            Dims::ALL.contains(Dims::COUNTRY_DEVICE_REGION)
                && !Dims::COUNTRY_DEVICE_REGION.contains(Dims::CANVAS)
        );
        let tables: std::collections::HashSet<_> = Rollup::ALL.iter().map(|r| r.table()).collect();
        assert_eq!(tables.len(), Rollup::ALL.len());
    }
}
