//! A group-less reader of the in-process log: positions of its own, no commits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Shared, next_record, partition_of};
use crate::{Reader, Record, Result, TopicPartition};

/// Reads chosen partitions of a [`super::MemoryLog`] from chosen offsets.
pub struct MemoryReader {
    shared: Arc<Shared>,
    /// Assigned partitions and the next offset to read from each.
    positions: BTreeMap<TopicPartition, i64>,
    /// Where the round-robin over assigned partitions goes on.
    cursor: usize,
    changes: watch::Receiver<u64>,
}

impl std::fmt::Debug for MemoryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReader").field("positions", &self.positions).finish_non_exhaustive()
    }
}

impl MemoryReader {
    /// A reader with nothing assigned.
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        let changes = shared.changes.subscribe();
        Self { shared, positions: BTreeMap::new(), cursor: 0, changes }
    }
}

#[async_trait]
impl Reader for MemoryReader {
    async fn assign(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let mut state = self.shared.lock();
        let log = partition_of(&mut state.topics, tp)?;
        self.positions.insert(tp.clone(), offset.clamp(log.start, log.high()));
        Ok(())
    }

    async fn unassign(&mut self, tp: &TopicPartition) -> Result<()> {
        self.positions.remove(tp);
        Ok(())
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.positions.keys().cloned().collect()
    }

    async fn poll(&mut self, timeout: Duration) -> Result<Option<Record>> {
        let deadline = Instant::now() + timeout;
        loop {
            // Mark what we have seen before looking, so an append made after the look
            // wakes the wait below instead of being missed.
            self.changes.borrow_and_update();
            let next = {
                let mut state = self.shared.lock();
                next_record(&mut state.topics, &mut self.positions, &BTreeSet::new(), &mut self.cursor)?
            };
            if next.is_some() {
                return Ok(next);
            }
            match tokio::time::timeout_at(deadline, self.changes.changed()).await {
                Ok(Ok(())) => continue,
                // The sender lives as long as `self.shared`, so it cannot be gone.
                Ok(Err(_)) | Err(_) => return Ok(None),
            }
        }
    }
}
