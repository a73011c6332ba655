//! Counts as the store keeps them (set sizes per cell and per unattributed slice), and
//! their comparison with a batch recount (`nearline reconcile`).

use std::collections::{BTreeMap, BTreeSet};

/// A cell: (video_id, epoch_start_ms, country, device, canvas, region).
pub type CellKey = (i64, i64, String, String, String, String);
/// An unattributed slice: (video_id, epoch_start_ms, country, device, region).
pub type UnattributedKey = (i64, i64, String, String, String);

/// Counts per cell and per unattributed slice.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// (impressions, plays) per cell.
    pub cells: BTreeMap<CellKey, (i64, i64)>,
    /// Unattributed plays per slice.
    pub unattributed: BTreeMap<UnattributedKey, i64>,
}

/// One cell where the batch and the store disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A cell's (impressions, plays).
    Cell {
        /// The cell.
        key: CellKey,
        /// Recomputed in batch.
        batch: (i64, i64),
        /// As stored.
        stored: (i64, i64),
    },
    /// An unattributed slice's plays.
    Unattributed {
        /// The slice.
        key: UnattributedKey,
        /// Recomputed in batch.
        batch: i64,
        /// As stored.
        stored: i64,
    },
}

/// Every cell whose batch and stored counts differ (a missing cell counts as zeros).
pub fn compare(batch: &Counts, stored: &Counts) -> Vec<Difference> {
    let mut differences = Vec::new();
    let keys: BTreeSet<&CellKey> = batch.cells.keys().chain(stored.cells.keys()).collect();
    for key in keys {
        let b = batch.cells.get(key).copied().unwrap_or_default();
        let s = stored.cells.get(key).copied().unwrap_or_default();
        if b != s {
            differences.push(Difference::Cell { key: key.clone(), batch: b, stored: s });
        }
    }
    let keys: BTreeSet<&UnattributedKey> =
        batch.unattributed.keys().chain(stored.unattributed.keys()).collect();
    for key in keys {
        let b = batch.unattributed.get(key).copied().unwrap_or_default();
        let s = stored.unattributed.get(key).copied().unwrap_or_default();
        if b != s {
            differences.push(Difference::Unattributed { key: key.clone(), batch: b, stored: s });
        }
    }
    differences
}
