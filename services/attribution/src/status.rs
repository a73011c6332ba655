//! What the partitions this process owns look like now: kept up to date by the worker,
//! read by `GetProgress` and the metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Where one source (topic partition) of an owned partition stands now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStatus {
    /// Largest event time seen in it (counting a restored watermark).
    pub watermark_ms: Option<i64>,
    /// Next offset to process.
    pub committed: i64,
}

/// What a partition owned by this process looks like now, for `GetProgress`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionStatus {
    /// Per source, in the order of [`crate::topics::Topics::sources`].
    pub sources: Vec<SourceStatus>,
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
