//! A cache of a title's performance rows per whole UTC day, for series bucketed finer
//! than a day, validated on every use by the day's totals (`title_counts_daily`).
//!
//! Exact without any notice from attribution or backfill: a cell's counts only ever
//! grow (they are set cardinalities, members are never removed), so any change to any
//! cell of a title's day strictly increases that day's impressions or plays total. A day
//! whose total is what it was when its rows were read has the same rows. The total is
//! read before the rows, so rows stored under a total are at least as new as it: if the
//! total is later found unchanged, nothing changed since either. A finished day is read
//! from the database once; the open day only when it changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::evict::evict;
use crate::query::{Counts, Dimension, Filters, GroupedRow};

/// What a day's rows depend on besides the day.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shape {
    /// The title.
    pub video_id: i64,
    /// Bucket width, ms (divides a day).
    pub bucket_ms: i64,
    /// Grouped dimensions.
    pub group_by: Vec<Dimension>,
    /// Cell filters.
    pub filters: Filters,
}

#[derive(Debug)]
struct Day {
    /// The day's totals when its rows were read.
    stamp: Counts,
    rows: Arc<[GroupedRow]>,
}

/// Rows by (shape, day start), at most `capacity` rows in all.
#[derive(Debug)]
pub struct DayCache {
    days: Mutex<Days>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Days {
    entries: HashMap<(Shape, i64), Day>,
    rows: usize,
}

/// Rows kept by default (~100 bytes each): a week of every title in the benchmark.
pub const CAPACITY: usize = 1_500_000;

impl Default for DayCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl DayCache {
    /// A cache of at most `capacity` rows.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { days: Mutex::default(), capacity }
    }

    /// The rows of `day` if they were read when its totals were `stamp`.
    pub fn get(&self, shape: &Shape, day: i64, stamp: Counts) -> Option<Arc<[GroupedRow]>> {
        let days = self.days.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        days.entries.get(&(shape.clone(), day)).filter(|d| d.stamp == stamp).map(|d| d.rows.clone())
    }

    /// Keeps `rows` of `day`, read after its totals were `stamp`.
    pub fn put(&self, shape: &Shape, day: i64, stamp: Counts, rows: Vec<GroupedRow>) {
        if rows.len() > self.capacity / 4 {
            return;
        }
        // Evicted days are dropped after the lock is released (see `evict`).
        let mut evicted = Vec::new();
        {
            let mut days = self.days.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if days.rows + rows.len() > self.capacity {
                // Full: forget about half.
                let held = days.rows;
                let (gone, left) = evict(&mut days.entries, held, self.capacity / 2, |d| d.rows.len());
                evicted = gone;
                days.rows = left;
            }
            days.rows += rows.len();
            let old = days.entries.insert((shape.clone(), day), Day { stamp, rows: rows.into() });
            days.rows -= old.as_ref().map_or(0, |d| d.rows.len());
            evicted.extend(old);
        }
        drop(evicted);
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.days.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(start_ms: i64) -> GroupedRow {
        GroupedRow { start_ms, dims: Default::default(), counts: Counts { impressions: 1, plays: 0 } }
    }

    #[test]
    fn a_day_is_served_only_under_the_totals_it_was_read_at_and_capacity_holds() {
        let cache = DayCache::with_capacity(40);
        let shape =
            Shape { video_id: 1, bucket_ms: 3_600_000, group_by: vec![], filters: Filters::default() };
        let stamp = Counts { impressions: 5, plays: 1 };
        cache.put(&shape, 0, stamp, vec![row(0), row(1)]);
        assert_eq!(cache.get(&shape, 0, stamp).map(|r| r.len()), Some(2));
        assert!(cache.get(&shape, 0, Counts { impressions: 6, plays: 1 }).is_none(), "the day changed");
        assert!(cache.get(&shape, 86_400_000, stamp).is_none());
        cache.put(&shape, 0, Counts { impressions: 6, plays: 1 }, vec![row(0)]);
        assert_eq!(cache.rows(), 1, "replaced, not added");
        for day in 1..100 {
            cache.put(&shape, day * 86_400_000, stamp, vec![row(0), row(1), row(2)]);
            assert!(cache.rows() <= 40);
        }
    }
}
