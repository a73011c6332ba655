//! What the partitions this process owns look like now: kept up to date by the worker,
//! read by `GetProgress` and the metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::join::Watermarks;

/// What a partition owned by this process looks like now, for `GetProgress`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionStatus {
    /// Largest event time seen, per topic.
    pub watermarks: Watermarks,
    /// Next impressions offset to process.
    pub committed_impressions: i64,
    /// Next plays offset to process.
    pub committed_plays: i64,
    /// Retained events.
    pub state_entries: u64,
    /// Approximate bytes of join state.
    pub state_bytes: u64,
}

/// Live status of the partitions this process owns.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard(Arc<Mutex<BTreeMap<i32, PartitionStatus>>>);

impl StatusBoard {
    /// A copy of the current statuses.
    pub fn snapshot(&self) -> BTreeMap<i32, PartitionStatus> {
        self.0.lock().expect("status lock").clone()
    }

    pub(crate) fn set(&self, partition: i32, status: PartitionStatus) {
        self.0.lock().expect("status lock").insert(partition, status);
    }

    pub(crate) fn remove(&self, partition: i32) {
        self.0.lock().expect("status lock").remove(&partition);
    }
}
