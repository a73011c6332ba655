//! Whole performance results, kept while the title's totals of every day the range
//! touches are unchanged (the same argument as [`crate::days`]: counts only grow, so any
//! change under the range changes one of those totals; they are read before the rows).
//! A repeated query costs one read of a few dozen totals instead of its series, and over
//! HTTP the series' JSON is encoded once per result, not once per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::evict::evict;
use crate::query::{Counts, PerformanceQuery, SeriesPoint};

/// A series, its totals, and its HTTP encoding once a request made it.
#[derive(Debug, Default)]
pub struct Series {
    /// Non-empty buckets, by start then group.
    pub points: Vec<SeriesPoint>,
    /// Sum over the range and every group.
    pub totals: Counts,
    json: OnceLock<Vec<u8>>,
}

impl PartialEq for Series {
    fn eq(&self, other: &Self) -> bool {
        self.points == other.points && self.totals == other.totals
    }
}

impl Series {
    /// The series of `points`.
    pub fn new(points: Vec<SeriesPoint>, totals: Counts) -> Self {
        Self { points, totals, json: OnceLock::new() }
    }

    /// The points as encoded by `encode` the first time this is asked.
    pub fn json(&self, encode: impl FnOnce(&[SeriesPoint]) -> Vec<u8>) -> &[u8] {
        self.json.get_or_init(|| encode(&self.points))
    }
}

/// The title's totals per day, by day start, for every day a range touches.
pub type Stamps = Vec<(i64, Counts)>;

/// Points kept by default (a few hundred bytes each with their JSON): the 7-day hourly
/// series of a thousand long-tail titles, or of a hundred busy ones.
pub const CAPACITY_POINTS: usize = 400_000;

/// Series by query, each valid while its stamps are, at most `capacity` points in all.
#[derive(Debug)]
pub struct ResultCache {
    entries: Mutex<Entries>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Entries {
    by_query: HashMap<PerformanceQuery, (Stamps, Arc<Series>)>,
    points: usize,
}

impl Default for ResultCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY_POINTS)
    }
}

impl ResultCache {
    /// At most `capacity` points in all (a result counts at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self { entries: Mutex::default(), capacity }
    }

    /// The series of `query` if it was computed under `stamps`.
    pub fn get(&self, query: &PerformanceQuery, stamps: &[(i64, Counts)]) -> Option<Arc<Series>> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (kept, series) = entries.by_query.get(query)?;
        (kept.as_slice() == stamps).then(|| series.clone())
    }

    /// Keeps `series`, computed after `stamps` were read.
    pub fn put(&self, query: PerformanceQuery, stamps: Stamps, series: Arc<Series>) {
        let size = series.points.len().max(1);
        if size > self.capacity / 4 {
            return;
        }
        // Evicted results are dropped after the lock is released (see `evict`).
        let mut evicted = Vec::new();
        {
            let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if entries.points + size > self.capacity {
                // Full: forget about a quarter.
                let held = entries.points;
                let keep = self.capacity * 3 / 4;
                let (gone, left) = evict(&mut entries.by_query, held, keep, |(_, s)| s.points.len().max(1));
                evicted = gone;
                entries.points = left;
            }
            entries.points += size;
            if let Some(old) = entries.by_query.insert(query, (stamps, series)) {
                entries.points -= old.1.points.len().max(1);
                evicted.push(old);
            }
        }
        drop(evicted);
    }

    /// Points held.
    pub fn points(&self) -> usize {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).points
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Filters, Granularity, TimeRange};

    #[test]
    fn a_result_is_served_only_under_its_stamps() {
        let cache = ResultCache::with_capacity(1000);
        let query = |video_id| PerformanceQuery {
            video_id,
            range: TimeRange { from_ms: 0, to_ms: 86_400_000 },
            granularity: Granularity::Hour,
            group_by: vec![],
            filters: Filters::default(),
        };
        let stamps = vec![(0, Counts { impressions: 3, plays: 1 })];
        cache.put(query(1), stamps.clone(), Arc::new(Series::default()));
        assert!(cache.get(&query(1), &stamps).is_some());
        assert!(cache.get(&query(1), &[(0, Counts { impressions: 4, plays: 1 })]).is_none());
    }

    #[test]
    fn the_points_held_stay_within_capacity_and_replacing_does_not_add() {
        let cache = ResultCache::with_capacity(400);
        let query = |video_id| PerformanceQuery {
            video_id,
            range: TimeRange { from_ms: 0, to_ms: 86_400_000 },
            granularity: Granularity::Hour,
            group_by: vec![],
            filters: Filters::default(),
        };
        let series = |points: usize| {
            let point = SeriesPoint { start_ms: 0, group: Default::default(), counts: Counts::default() };
            Arc::new(Series::new(vec![point; points], Counts::default()))
        };
        let stamps = vec![(0, Counts { impressions: 3, plays: 1 })];
        cache.put(query(1), stamps.clone(), series(50));
        cache.put(query(1), stamps.clone(), series(60));
        assert_eq!(cache.points(), 60, "replaced, not added");
        cache.put(query(2), stamps.clone(), series(101));
        assert!(cache.get(&query(2), &stamps).is_none(), "larger than a quarter: not kept");
        for video_id in 3..100 {
            cache.put(query(video_id), stamps.clone(), series(30));
            assert!(cache.points() <= 400, "{} points", cache.points());
            assert!(cache.get(&query(video_id), &stamps).is_some(), "the newest is kept");
        }
    }
}
