//! The expiry wheel: record ids bucketed by deadline, so advancing the watermark drops
//! whole buckets without scanning the state, and the oldest offset still needed is a
//! walk over a few hundred buckets.

use std::collections::VecDeque;
use std::mem::size_of;

use super::event::Origin;

#[derive(Debug)]
struct Bucket {
    records: Vec<u32>,
    /// Smallest source offset of a record in this bucket, per origin (`i64::MAX`: none).
    /// A wheel holds records of one kind, so the origin names the source.
    min_offset: Vec<i64>,
}

/// Buckets of `granularity` ms of deadline, contiguous from `base`.
#[derive(Debug)]
pub(crate) struct Wheel {
    granularity: i64,
    origins: usize,
    /// Bucket number of `buckets[0]`.
    base: i64,
    buckets: VecDeque<Bucket>,
    /// Every bucket below this number is past the watermark (monotone).
    expired_below: i64,
    spare: Vec<Vec<u32>>,
}

impl Wheel {
    /// A wheel for records read from `origins` origins.
    pub(crate) fn new(granularity: i64, origins: usize) -> Self {
        Self {
            granularity,
            origins,
            base: 0,
            buckets: VecDeque::new(),
            expired_below: i64::MIN,
            spare: Vec::new(),
        }
    }

    fn empty_bucket(&mut self) -> Bucket {
        Bucket { records: self.spare.pop().unwrap_or_default(), min_offset: vec![i64::MAX; self.origins] }
    }

    /// Files `record` to be dropped once the watermark passes `deadline`; returns false,
    /// filing nothing, when the watermark already passed its whole bucket.
    pub(crate) fn insert(&mut self, deadline: i64, record: u32, origin: Origin, offset: i64) -> bool {
        let bucket_no = deadline.div_euclid(self.granularity);
        if bucket_no < self.expired_below {
            return false;
        }
        if self.buckets.is_empty() {
            self.base = bucket_no;
        }
        while bucket_no < self.base {
            let bucket = self.empty_bucket();
            self.buckets.push_front(bucket);
            self.base -= 1;
        }
        // Deadlines are at most watermark + retention and buckets below the watermark are
        // gone, so this span is bounded by retention / granularity.
        let pos = usize::try_from(bucket_no - self.base).expect("bucket span fits in memory");
        while self.buckets.len() <= pos {
            let bucket = self.empty_bucket();
            self.buckets.push_back(bucket);
        }
        let bucket = &mut self.buckets[pos];
        bucket.records.push(record);
        let min = &mut bucket.min_offset[origin.index()];
        *min = (*min).min(offset);
        true
    }

    /// Marks every deadline below `watermark` as passed (all of them for `None`).
    pub(crate) fn advance(&mut self, watermark: Option<i64>) {
        let frontier = watermark.map_or(i64::MAX, |wm| wm.div_euclid(self.granularity));
        self.expired_below = self.expired_below.max(frontier);
    }

    /// Removes and returns the records of the oldest passed bucket, if any.
    pub(crate) fn pop_expired(&mut self) -> Option<Vec<u32>> {
        if self.buckets.is_empty() || self.base >= self.expired_below {
            return None;
        }
        let bucket = self.buckets.pop_front()?;
        self.base += 1;
        Some(bucket.records)
    }

    /// Gives back a vector returned by [`Self::pop_expired`] for reuse.
    pub(crate) fn recycle(&mut self, mut records: Vec<u32>) {
        records.clear();
        if self.spare.len() < 64 {
            self.spare.push(records);
        }
    }

    /// Smallest offset of a filed record from `origin`.
    pub(crate) fn min_offset(&self, origin: Origin) -> Option<i64> {
        self.buckets.iter().map(|b| b.min_offset[origin.index()]).min().filter(|&m| m != i64::MAX)
    }

    pub(crate) fn approx_bytes(&self) -> usize {
        let filed: usize = self.buckets.iter().map(|b| b.records.capacity()).sum();
        let spare: usize = self.spare.iter().map(Vec::capacity).sum();
        (filed + spare) * size_of::<u32>()
            + self.buckets.capacity() * (size_of::<Bucket>() + self.origins * size_of::<i64>())
    }
}
