//! Whole performance results, kept while the title's totals of every day the range
//! touches are unchanged (the same argument as [`crate::days`]: counts only grow, so any
//! change under the range changes one of those totals; they are read before the rows).
//! A repeated query costs one read of a few dozen totals instead of its series, and over
//! HTTP the series' JSON is encoded once per result, not once per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

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

/// Series by query, each valid while its stamps are.
#[derive(Debug)]
pub struct ResultCache {
    entries: Mutex<HashMap<PerformanceQuery, (Stamps, Arc<Series>)>>,
    capacity: usize,
}

impl ResultCache {
    /// At most `capacity` results (each up to a few thousand points).
    pub fn with_capacity(capacity: usize) -> Self {
        Self { entries: Mutex::default(), capacity }
    }

    /// The series of `query` if it was computed under `stamps`.
    pub fn get(&self, query: &PerformanceQuery, stamps: &[(i64, Counts)]) -> Option<Arc<Series>> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(query).filter(|(kept, _)| kept.as_slice() == stamps).map(|(_, series)| series.clone())
    }

    /// Keeps `series`, computed after `stamps` were read.
    pub fn put(&self, query: PerformanceQuery, stamps: Stamps, series: Arc<Series>) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&query) {
            // Full: start over (the popular queries come straight back).
            entries.clear();
        }
        entries.insert(query, (stamps, series));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Filters, Granularity, TimeRange};

    #[test]
    fn a_result_is_served_only_under_its_stamps() {
        let cache = ResultCache::with_capacity(1);
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
        cache.put(query(2), stamps.clone(), Arc::new(Series::default()));
        assert!(cache.get(&query(1), &stamps).is_none(), "over capacity");
        assert!(cache.get(&query(2), &stamps).is_some());
    }
}
