//! Which table answers which part of a query's range: the coarsest roll-up the range
//! and the granularity allow, the unaligned edges from finer data; of the roll-ups of a
//! span, the one keeping the fewest dimensions the query still needs (pure; no I/O).
//!
//! Exact because a roll-up row is the sum of the cells whose epoch starts in its hour or
//! day and that agree on its kept dimensions, the parts cover `[from, to)` without
//! overlap, a roll-up is used only when its span divides the query's bucket (no row
//! straddles two buckets) and when it keeps every dimension the query groups or filters
//! by (no row mixes two groups, or kept and filtered-out cells).

use nearline_storage::rollups::{Dims, Rollup, Span};

/// Where a part of the range is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// `cell_counts` itself.
    Cells,
    /// A roll-up.
    Rollup(Rollup),
}

impl Source {
    /// The table to read.
    pub fn table(self) -> &'static str {
        match self {
            Source::Cells => "cell_counts",
            Source::Rollup(rollup) => rollup.table(),
        }
    }
}

/// A part of the range and its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The source.
    pub source: Source,
    /// Start (inclusive), ms.
    pub from_ms: i64,
    /// End (exclusive), ms.
    pub to_ms: i64,
}

/// The parts answering `[from_ms, to_ms)` bucketed by `bucket_ms` (`None`: the whole
/// range summed), grouping or filtering by the dimensions `needed`; coarsest first where
/// it fits.
pub fn plan(from_ms: i64, to_ms: i64, bucket_ms: Option<i64>, needed: Dims) -> Vec<Part> {
    let narrowest = |span: Span| {
        Rollup::ALL
            .into_iter()
            .filter(|r| r.span == span && r.dims.contains(needed))
            .min_by_key(|r| r.dims.count())
    };
    let rollups: Vec<Rollup> = [Span::Day, Span::Hour].into_iter().filter_map(narrowest).collect();
    let mut parts = Vec::new();
    plan_into(from_ms, to_ms, bucket_ms, &rollups, &mut parts);
    parts
}

fn plan_into(from_ms: i64, to_ms: i64, bucket_ms: Option<i64>, rollups: &[Rollup], out: &mut Vec<Part>) {
    if from_ms >= to_ms {
        return;
    }
    for (i, rollup) in rollups.iter().enumerate() {
        let span = rollup.span_ms();
        if bucket_ms.is_some_and(|bucket| bucket % span != 0) {
            continue;
        }
        let inner_from =
            from_ms.div_euclid(span) * span + if from_ms.rem_euclid(span) == 0 { 0 } else { span };
        let inner_to = to_ms.div_euclid(span) * span;
        if inner_from < inner_to {
            let finer = &rollups[i + 1..];
            plan_into(from_ms, inner_from, bucket_ms, finer, out);
            out.push(Part { source: Source::Rollup(*rollup), from_ms: inner_from, to_ms: inner_to });
            plan_into(inner_to, to_ms, bucket_ms, finer, out);
            return;
        }
    }
    out.push(Part { source: Source::Cells, from_ms, to_ms });
}

#[cfg(test)]
mod tests {
    use nearline_storage::rollups::{DAY_MS, Dims, HOUR_MS, Rollup};
    use proptest::prelude::*;

    use super::{Part, Source, plan};

    const EPOCH: i64 = 30 * 60_000;

    #[test]
    fn a_week_by_day_reads_days_and_takes_the_edges_from_hours_and_cells() {
        let from = 10 * DAY_MS + 13 * HOUR_MS + EPOCH; // 13:30 on day 10
        let to = 17 * DAY_MS + 2 * HOUR_MS; // 02:00 on day 17
        let got = plan(from, to, None, Dims::ALL);
        let want = [
            Part { source: Source::Cells, from_ms: from, to_ms: 10 * DAY_MS + 14 * HOUR_MS },
            Part {
                source: Source::Rollup(Rollup::HOURLY),
                from_ms: 10 * DAY_MS + 14 * HOUR_MS,
                to_ms: 11 * DAY_MS,
            },
            Part { source: Source::Rollup(Rollup::DAILY), from_ms: 11 * DAY_MS, to_ms: 17 * DAY_MS },
            Part { source: Source::Rollup(Rollup::HOURLY), from_ms: 17 * DAY_MS, to_ms: to },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_roll_up_is_used_only_when_its_span_divides_the_bucket() {
        assert_eq!(
            plan(0, DAY_MS, Some(EPOCH), Dims::NONE),
            [Part { source: Source::Cells, from_ms: 0, to_ms: DAY_MS }]
        );
        let by_hour = plan(0, 3 * DAY_MS, Some(HOUR_MS), Dims::NONE);
        assert_eq!(
            by_hour,
            [Part { source: Source::Rollup(Rollup::HOURLY_TITLE), from_ms: 0, to_ms: 3 * DAY_MS }]
        );
    }

    #[test]
    fn the_narrowest_roll_up_keeping_the_needed_dimensions_is_read() {
        let source = |needed| plan(0, DAY_MS, None, needed)[0].source;
        assert_eq!(source(Dims::NONE), Source::Rollup(Rollup::DAILY_TITLE));
        assert_eq!(source(Dims::COUNTRY), Source::Rollup(Rollup::DAILY_COUNTRY_DEVICE));
        assert_eq!(source(Dims::COUNTRY.union(Dims::DEVICE)), Source::Rollup(Rollup::DAILY_COUNTRY_DEVICE));
        assert_eq!(source(Dims::REGION), Source::Rollup(Rollup::DAILY_COUNTRY_DEVICE));
        assert_eq!(source(Dims::CANVAS), Source::Rollup(Rollup::DAILY));
        assert_eq!(source(Dims::CANVAS.union(Dims::REGION)), Source::Rollup(Rollup::DAILY));
    }

    proptest! {
        /// The parts tile the range exactly, each aligned to its source's span.
        #[test]
        fn parts_tile_the_range(
            from in 0i64..2_000, len in 0i64..2_000, bucket in prop::option::of(1i64..4), needed in 0u8..16,
        ) {
            let (from, to) = (from * EPOCH, (from + len) * EPOCH);
            let bucket = bucket.map(|b| [EPOCH, HOUR_MS, DAY_MS][b as usize - 1]);
            let needed = Dims::EACH
                .into_iter()
                .enumerate()
                .filter(|(i, _)| needed & (1 << i) != 0)
                .fold(Dims::NONE, |all, (_, d)| all.union(d));
            let parts = plan(from, to, bucket, needed);
            let mut at = from;
            for part in &parts {
                prop_assert_eq!(part.from_ms, at);
                prop_assert!(part.from_ms < part.to_ms);
                if let Source::Rollup(rollup) = part.source {
                    prop_assert_eq!(part.from_ms.rem_euclid(rollup.span_ms()), 0);
                    prop_assert_eq!(part.to_ms.rem_euclid(rollup.span_ms()), 0);
                    prop_assert!(bucket.is_none_or(|b| b % rollup.span_ms() == 0));
                    prop_assert!(rollup.dims.contains(needed));
                }
                at = part.to_ms;
            }
            prop_assert_eq!(at, to);
        }
    }
}
