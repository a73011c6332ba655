//! The segment files of one partition, the sparse index over them, and recovery.
//!
//! A partition is a directory of append-only segment files named after the offset of
//! their first record (`00000000000000001234.seg`); the last one is active. A segment
//! never changes once the next one exists, so retention deletes whole files and the
//! log start offset is simply the first remaining segment's name.
//!
//! The index is sparse: one entry per [`INDEX_INTERVAL`] bytes of records, holding the
//! entry's first offset, its file position and the largest timestamp up to the next
//! entry. That keeps memory per partition proportional to the retained bytes divided
//! by the interval (about 0.4 MB per GiB retained) rather than to the record count. A
//! read behind the memory tail loads one entry's stretch of the file and keeps it
//! decoded as the partition's current chunk, so sequential replays read each stretch
//! once.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::frame::{self, Invalid};
use super::index_file;
use super::offsets::sync_dir;
use crate::memory::partition::Stored;
use crate::{Error, Result};

/// Bytes of records between two index entries.
pub(crate) const INDEX_INTERVAL: u64 = 64 * 1024;

/// One index entry: records from `offset` on start at `pos` of the segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) offset: i64,
    pub(crate) pos: u64,
    /// Largest timestamp of the records from this entry to the next.
    pub(crate) max_ts: i64,
}

/// One segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Offset of its first record.
    pub(crate) base: i64,
    /// Offset after its last durable record.
    pub(crate) end: i64,
    /// Durable bytes in the file.
    pub(crate) size: u64,
    pub(crate) file: Arc<File>,
    pub(crate) path: PathBuf,
    /// When a record was last appended: the segment expires `retention` after it.
    last_append: SystemTime,
    index: Vec<IndexEntry>,
    /// Whether its index is saved beside it (closed segments only).
    index_saved: bool,
}

impl Segment {
    /// Creates the empty segment whose first record will be `base`, durably (the file
    /// and its directory entry).
    pub(crate) fn create(dir: &Path, base: i64) -> io::Result<Self> {
        let path = dir.join(format!("{base:020}.seg"));
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(Self {
            base,
            end: base,
            size: 0,
            file: Arc::new(file),
            path,
            last_append: SystemTime::now(),
            index: Vec::new(),
            index_saved: false,
        })
    }

    /// Records that `(record, frame length)` pairs from offset `self.end` on were
    /// written durably at `self.size`.
    fn appended(&mut self, records: &[(Stored, u32)]) {
        for (record, len) in records {
            match self.index.last_mut() {
                Some(last) if self.size - last.pos < INDEX_INTERVAL => {
                    last.max_ts = last.max_ts.max(record.timestamp_ms);
                }
                _ => self.index.push(IndexEntry {
                    offset: self.end,
                    pos: self.size,
                    max_ts: record.timestamp_ms,
                }),
            }
            self.end += 1;
            self.size += u64::from(*len);
        }
        self.last_append = SystemTime::now();
    }

    /// Byte range of index entry `at`.
    fn range(&self, at: usize) -> (u64, u64) {
        let end = self.index.get(at + 1).map_or(self.size, |next| next.pos);
        (self.index[at].pos, end)
    }

    /// Decodes the records of index entry `at`.
    fn read_chunk(&self, at: usize) -> Result<Chunk> {
        let (from, to) = self.range(at);
        let mut buf = vec![0; usize::try_from(to - from).expect("chunks fit in memory")];
        self.file
            .read_exact_at(&mut buf, from)
            .map_err(|e| Error::Other(format!("reading {}: {e}", self.path.display())))?;
        let mut buf = Bytes::from(buf);
        let mut records = Vec::new();
        while !buf.is_empty() {
            let decoded = frame::decode(&buf).map_err(|invalid| {
                Error::Other(format!("{} at byte {from}: {invalid:?} record", self.path.display()))
            })?;
            records.push(decoded.record);
            buf = buf.split_off(decoded.len);
        }
        Ok(Chunk { first: self.index[at].offset, records })
    }

    /// Opens an existing segment. The last one is checked record by record and a torn
    /// or corrupt tail cut off (it is the write a crash interrupted, never
    /// acknowledged). An earlier one is opened through its saved index when that
    /// matches, else scanned too, and damage in it is an error (a segment is complete
    /// and synced before the next one is created).
    fn open(path: PathBuf, base: i64, is_last: bool) -> Result<Self> {
        let fail = |e: io::Error| Error::Other(format!("opening {}: {e}", path.display()));
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(fail)?;
        let metadata = file.metadata().map_err(fail)?;
        let last_append = metadata.modified().map_err(fail)?;
        let mut segment = Segment {
            base,
            end: base,
            size: 0,
            file: Arc::new(file),
            path: path.clone(),
            last_append,
            index: Vec::new(),
            index_saved: false,
        };
        if !is_last && let Some(saved) = index_file::load(&path, metadata.len()) {
            segment.size = saved.size;
            segment.end = saved.end;
            segment.index = saved.entries;
            segment.index_saved = true;
            return Ok(segment);
        }
        let mut rest = Bytes::from(fs::read(&path).map_err(fail)?);
        let total = rest.len() as u64;
        let mut batch = Vec::new();
        while !rest.is_empty() {
            let decoded = match frame::decode(&rest) {
                Ok(decoded) if decoded.offset == segment.end + i64::try_from(batch.len()).expect("fits") => {
                    decoded
                }
                Ok(_) | Err(Invalid::Corrupt | Invalid::Incomplete) => break,
            };
            batch.push((decoded.record, u32::try_from(decoded.len).expect("frames are below 4 GiB")));
            rest = rest.split_off(decoded.len);
        }
        segment.appended(&batch);
        segment.last_append = last_append;
        if segment.size < total {
            if !is_last {
                return Err(Error::Other(format!(
                    "{} is damaged at byte {} of {total} but is not the last segment; \
                     restore the data directory from a backup",
                    path.display(),
                    segment.size
                )));
            }
            tracing::warn!(
                segment = %path.display(),
                kept = segment.size,
                cut = total - segment.size,
                "cutting off the torn tail of the last segment (a write interrupted by a crash; never acknowledged)"
            );
            segment.file.set_len(segment.size).map_err(fail)?;
            segment.file.sync_all().map_err(fail)?;
        }
        Ok(segment)
    }
}

/// Records of one index entry, decoded.
#[derive(Debug)]
struct Chunk {
    first: i64,
    records: Vec<Stored>,
}

/// The segment files of one partition.
#[derive(Debug)]
pub(crate) struct DiskPartition {
    pub(crate) dir: PathBuf,
    /// Oldest first; never empty, the last one is active.
    segments: VecDeque<Segment>,
    chunk: Option<Chunk>,
}

impl DiskPartition {
    /// A new, empty partition in `dir`.
    pub(crate) fn create(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        let segment = Segment::create(&dir, 0)?;
        Ok(Self { dir, segments: VecDeque::from([segment]), chunk: None })
    }

    /// The partition in `dir`, recovered: every segment checked, a torn tail cut off.
    pub(crate) fn open(dir: PathBuf) -> Result<Self> {
        let fail = |e: io::Error| Error::Other(format!("listing {}: {e}", dir.display()));
        let mut bases = Vec::new();
        for entry in fs::read_dir(&dir).map_err(fail)? {
            let name = entry.map_err(fail)?.file_name();
            let name = name.to_string_lossy();
            if let Some(base) = name.strip_suffix(".seg").and_then(|b| b.parse::<i64>().ok()) {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        if bases.is_empty() {
            // Created but its first segment never made it to disk: nothing was written.
            let segment = Segment::create(&dir, 0).map_err(fail)?;
            return Ok(Self { dir, segments: VecDeque::from([segment]), chunk: None });
        }
        let mut segments = VecDeque::new();
        for (i, &base) in bases.iter().enumerate() {
            let path = dir.join(format!("{base:020}.seg"));
            let segment = Segment::open(path, base, i + 1 == bases.len())?;
            if let Some(previous) = segments.back().map(|s: &Segment| s.end)
                && previous != base
            {
                return Err(Error::Other(format!(
                    "{} starts at offset {base} but the segment before it ends at {previous}",
                    segment.path.display()
                )));
            }
            segments.push_back(segment);
        }
        Ok(Self { dir, segments, chunk: None })
    }

    /// First retained offset.
    pub(crate) fn start(&self) -> i64 {
        self.segments.front().expect("never empty").base
    }

    /// Offset after the last durable record.
    pub(crate) fn end(&self) -> i64 {
        self.active().end
    }

    /// The segment being appended to.
    pub(crate) fn active(&self) -> &Segment {
        self.segments.back().expect("never empty")
    }

    /// Starts a new active segment (the writer created and synced it).
    pub(crate) fn roll(&mut self, segment: Segment) {
        debug_assert_eq!(segment.base, self.end());
        self.segments.push_back(segment);
    }

    /// Records that `records` were durably appended to the active segment.
    pub(crate) fn appended(&mut self, records: &[(Stored, u32)]) {
        self.segments.back_mut().expect("never empty").appended(records);
    }

    /// The record at `offset`, read from the files.
    pub(crate) fn get(&mut self, offset: i64) -> Result<Option<Stored>> {
        if let Some(chunk) = &self.chunk
            && let Some(stored) =
                usize::try_from(offset - chunk.first).ok().and_then(|at| chunk.records.get(at))
        {
            return Ok(Some(stored.clone()));
        }
        let s = self.segments.partition_point(|s| s.base <= offset);
        let Some(segment) = s.checked_sub(1).and_then(|s| self.segments.get(s)) else {
            return Ok(None);
        };
        if offset >= segment.end {
            return Ok(None);
        }
        let at = segment.index.partition_point(|e| e.offset <= offset) - 1;
        let chunk = segment.read_chunk(at)?;
        let stored = usize::try_from(offset - chunk.first).ok().and_then(|at| chunk.records.get(at)).cloned();
        self.chunk = Some(chunk);
        Ok(stored)
    }

    /// Earliest offset in `[start, high)` whose timestamp is at or after `timestamp_ms`.
    pub(crate) fn offset_for_time(
        &mut self,
        timestamp_ms: i64,
        start: i64,
        high: i64,
    ) -> Result<Option<i64>> {
        for segment in &self.segments {
            for (at, entry) in segment.index.iter().enumerate() {
                if entry.max_ts < timestamp_ms {
                    continue;
                }
                let chunk = segment.read_chunk(at)?;
                let found = chunk.records.iter().position(|r| r.timestamp_ms >= timestamp_ms);
                if let Some(p) = found {
                    let offset = chunk.first + i64::try_from(p).expect("fits");
                    if (start..high).contains(&offset) {
                        return Ok(Some(offset));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Bytes of segment files retained.
    pub(crate) fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// The closed segments whose index is not saved yet, with what to save; marks them
    /// saved (a failed save only costs a scan at the next open).
    pub(crate) fn indexes_to_save(&mut self) -> Vec<(PathBuf, index_file::Saved)> {
        let closed = self.segments.len() - 1;
        self.segments
            .iter_mut()
            .take(closed)
            .filter(|s| !s.index_saved)
            .map(|s| {
                s.index_saved = true;
                (s.path.clone(), index_file::Saved { size: s.size, end: s.end, entries: s.index.clone() })
            })
            .collect()
    }

    /// Drops the oldest segments (never the active one) while they are older than
    /// `retention` or the partition is over `retention_bytes`; the paths to delete.
    pub(crate) fn expire(
        &mut self,
        now: SystemTime,
        retention: Duration,
        retention_bytes: u64,
    ) -> Vec<PathBuf> {
        let mut total: u64 = self.segments.iter().map(|s| s.size).sum();
        let mut removed = Vec::new();
        while self.segments.len() > 1 {
            let oldest = self.segments.front().expect("more than one");
            let too_old = now.duration_since(oldest.last_append).is_ok_and(|age| age > retention);
            if !too_old && total <= retention_bytes {
                break;
            }
            let oldest = self.segments.pop_front().expect("more than one");
            total -= oldest.size;
            if oldest.index_saved {
                removed.push(index_file::path_for(&oldest.path));
            }
            removed.push(oldest.path);
        }
        let start = self.start();
        if self.chunk.as_ref().is_some_and(|c| c.first < start) {
            self.chunk = None;
        }
        removed
    }
}
