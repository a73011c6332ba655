//! One partition of the log as consumers and readers see it: the retained offset range,
//! the records held in memory, and (for the durable log) the segment files behind them.
//!
//! The in-memory log keeps every record here. The durable log keeps only a bounded tail
//! of recent records here, which is what consumers that keep up read; anything older is
//! read back from the partition's segment files ([`DiskPartition`]).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::durable::segments::DiskPartition;
use crate::{Record, Result, TopicPartition};

/// A stored record, without its position (which the partition knows).
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) key: Bytes,
    pub(crate) payload: Bytes,
    pub(crate) timestamp_ms: i64,
}

impl Stored {
    /// Memory the record holds, roughly, for the cache bound.
    pub(crate) fn size(&self) -> usize {
        self.key.len() + self.payload.len() + 64
    }
}

/// One partition: offsets `[start, high)` are readable.
#[derive(Debug, Default)]
pub(crate) struct Partition {
    /// Log start offset (low watermark): records before it were deleted by retention.
    pub(crate) start: i64,
    /// Offset of the first record in `cache`; `cache` holds `[cache_from, high)`.
    cache_from: i64,
    cache: VecDeque<Stored>,
    cache_bytes: usize,
    /// Most bytes `cache` may hold; `None` keeps every record (the in-memory log).
    cache_limit: Option<usize>,
    /// The segment files, for the durable log.
    pub(crate) disk: Option<DiskPartition>,
    /// The offset the next publish gets (durable log): past `high` by what is queued
    /// for the writer and not yet visible.
    pub(crate) next: i64,
}

impl Partition {
    /// A partition of the durable log whose files hold `[disk.start(), disk.end())`;
    /// its memory cache starts empty.
    pub(crate) fn on_disk(disk: DiskPartition, cache_limit: usize) -> Self {
        let (start, end) = (disk.start(), disk.end());
        Self {
            start,
            cache_from: end,
            cache: VecDeque::new(),
            cache_bytes: 0,
            cache_limit: Some(cache_limit),
            disk: Some(disk),
            next: end,
        }
    }

    /// High watermark: the offset the next visible record will have.
    pub(crate) fn high(&self) -> i64 {
        self.cache_from + i64::try_from(self.cache.len()).expect("fewer than i64::MAX records")
    }

    /// Makes `record` visible at offset [`Partition::high`], then trims the cache to its bound.
    pub(crate) fn push(&mut self, record: Stored) {
        self.cache_bytes += record.size();
        self.cache.push_back(record);
        if let Some(limit) = self.cache_limit {
            while self.cache_bytes > limit
                && let Some(old) = self.cache.pop_front()
            {
                self.cache_bytes -= old.size();
                self.cache_from += 1;
            }
        }
    }

    /// Moves the log start offset forward to `start` (retention deleted what was before).
    pub(crate) fn advance_start(&mut self, start: i64) {
        self.start = self.start.max(start);
        while self.cache_from < self.start
            && let Some(old) = self.cache.pop_front()
        {
            self.cache_bytes -= old.size();
            self.cache_from += 1;
        }
    }

    /// The record at `offset`, if it is retained.
    pub(crate) fn get(&mut self, offset: i64) -> Result<Option<Stored>> {
        if offset < self.start || offset >= self.high() {
            return Ok(None);
        }
        if offset >= self.cache_from {
            let at = usize::try_from(offset - self.cache_from).expect("offset in the cache");
            return Ok(self.cache.get(at).cloned());
        }
        match &mut self.disk {
            Some(disk) => disk.get(offset),
            None => Ok(None),
        }
    }

    /// The record at `offset` of `tp` as a [`Record`].
    pub(crate) fn record(&mut self, tp: &TopicPartition, offset: i64) -> Result<Option<Record>> {
        Ok(self.get(offset)?.map(|stored| Record {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset,
            key: stored.key,
            payload: stored.payload,
            timestamp_ms: stored.timestamp_ms,
        }))
    }

    /// Earliest retained offset whose timestamp is at or after `timestamp_ms`.
    pub(crate) fn offset_for_time(&mut self, timestamp_ms: i64) -> Result<Option<i64>> {
        let high = self.high();
        if let Some(disk) = &mut self.disk {
            return disk.offset_for_time(timestamp_ms, self.start, high);
        }
        Ok(self
            .cache
            .iter()
            .position(|r| r.timestamp_ms >= timestamp_ms)
            .map(|p| self.cache_from + i64::try_from(p).expect("fewer than i64::MAX records")))
    }
}
