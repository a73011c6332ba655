//! The writer thread: group commit and retention.
//!
//! Publishers only queue encoded records; this thread takes whatever is queued at once,
//! so the cost of a sync is shared by every publish that arrived while the previous
//! one ran, and the batch grows exactly as fast as the disk falls behind. A plain OS
//! thread because its work is blocking file I/O from start to end.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::segments::Segment;
use super::{Append, storage_of};
use super::{index_file, metrics};
use crate::TopicPartition;
use crate::memory::Shared;

/// How often retention looks for segments to delete.
const RETENTION_EVERY: Duration = Duration::from_secs(1);

/// Where one partition's queued bytes go.
struct Target {
    dir: PathBuf,
    file: Arc<File>,
    /// Durable bytes of the active segment, where the new ones are written.
    size: u64,
    /// Offset of the first queued record (a new segment is named after it).
    first: i64,
}

/// [`run`], turning a panic into a failed log, so publishers waiting for the writer get
/// an error instead of waiting forever.
pub(super) fn run_guarded(shared: &Shared) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(shared))).is_err() {
        fail(shared, "the log writer panicked".into());
    }
}

/// Stops the log accepting appends and fails every publish waiting for the writer.
fn fail(shared: &Shared, why: Arc<str>) {
    shared.lock().pending.failed = Some(Arc::clone(&why));
    storage_of(shared).flushed.send_modify(|f| f.failed = Some(why));
}

/// Runs until the log is closed (after writing out what was queued) or a write fails.
fn run(shared: &Shared) {
    let storage = storage_of(shared);
    let mut last_retention = Instant::now();
    loop {
        let (batch, targets, seq, closing) = {
            let mut state = shared.lock();
            while state.pending.appends.is_empty() && !state.pending.closing {
                let left = RETENTION_EVERY.saturating_sub(last_retention.elapsed());
                if left.is_zero() {
                    break;
                }
                state = storage.work.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
            }
            let batch = std::mem::take(&mut state.pending.appends);
            let targets: Vec<Target> = batch
                .iter()
                .map(|(tp, append)| {
                    let partition = &state.topics[&tp.topic][usize::try_from(tp.partition).expect("valid")];
                    let disk = partition.disk.as_ref().expect("a durable log's partitions have files");
                    let active = disk.active();
                    Target {
                        dir: disk.dir.clone(),
                        file: Arc::clone(&active.file),
                        size: active.size,
                        first: partition.next - i64::try_from(append.records.len()).expect("fits"),
                    }
                })
                .collect();
            (batch, targets, state.pending.seq, state.pending.closing)
        };

        if !batch.is_empty() {
            let started = Instant::now();
            let records = batch.values().map(|a| a.records.len()).sum();
            match write_all(&batch, &targets, storage.options.segment_bytes) {
                Ok(rolled) => {
                    metrics::committed(started.elapsed(), records);
                    publish_written(shared, batch, rolled, seq);
                }
                Err(error) => {
                    tracing::error!(%error, "writing the event log failed; refusing further appends");
                    fail(shared, error.to_string().into());
                    return;
                }
            }
        } else if closing {
            // Save the indexes of the closed segments, so the next open reads only the last.
            apply_retention(shared);
            return;
        }

        if last_retention.elapsed() >= RETENTION_EVERY {
            last_retention = Instant::now();
            apply_retention(shared);
        }
    }
}

/// Writes and syncs every partition's queued bytes, in parallel; the new segments
/// started on the way, by partition.
fn write_all(
    batch: &BTreeMap<TopicPartition, Append>,
    targets: &[Target],
    segment_bytes: u64,
) -> io::Result<Vec<Option<Segment>>> {
    let jobs: Vec<(&Append, &Target)> = batch.values().zip(targets).collect();
    if let [(append, target)] = jobs[..] {
        return Ok(vec![write_one(append, target, segment_bytes)?]);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(append, target)| scope.spawn(move || write_one(append, target, segment_bytes)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(io::Error::other("a segment write panicked"))))
            .collect()
    })
}

/// Appends one partition's bytes to its active segment, or to a new one when they
/// would make the active one too big, and syncs them.
fn write_one(append: &Append, target: &Target, segment_bytes: u64) -> io::Result<Option<Segment>> {
    let grows_past = target.size + append.frames.len() as u64 > segment_bytes;
    let (rolled, file, at) = if target.size > 0 && grows_past {
        let segment = Segment::create(&target.dir, target.first)?;
        let file = Arc::clone(&segment.file);
        (Some(segment), file, 0)
    } else {
        (None, Arc::clone(&target.file), target.size)
    };
    file.write_all_at(&append.frames, at)?;
    // Data only: the size change is flushed with it, the name was synced at creation.
    file.sync_data()?;
    Ok(rolled)
}

/// Makes a written batch visible: index, memory tail, watermarks, then wakes everyone.
fn publish_written(
    shared: &Shared,
    batch: BTreeMap<TopicPartition, Append>,
    rolled: Vec<Option<Segment>>,
    seq: u64,
) {
    {
        let mut state = shared.lock();
        for ((tp, append), rolled) in batch.into_iter().zip(rolled) {
            let partition = &mut state.topics.get_mut(&tp.topic).expect("topics are never deleted")
                [usize::try_from(tp.partition).expect("valid")];
            let disk = partition.disk.as_mut().expect("a durable log's partitions have files");
            if let Some(segment) = rolled {
                disk.roll(segment);
            }
            disk.appended(&append.records);
            for (record, _) in append.records {
                partition.push(record);
            }
        }
    }
    storage_of(shared).flushed.send_modify(|f| f.seq = f.seq.max(seq));
    shared.wake_consumers();
}

/// Deletes expired segments and moves the log start offsets forward; saves the index
/// of segments closed since the last pass.
fn apply_retention(shared: &Shared) {
    let options = &storage_of(shared).options;
    let now = SystemTime::now();
    let (removed, indexes) = {
        let mut state = shared.lock();
        let mut removed: Vec<PathBuf> = Vec::new();
        let mut indexes = Vec::new();
        for (topic, partitions) in &mut state.topics {
            for (p, partition) in partitions.iter_mut().enumerate() {
                let Some(disk) = partition.disk.as_mut() else { continue };
                indexes.extend(disk.indexes_to_save());
                let expired = disk.expire(now, options.retention, options.retention_bytes);
                let deleted = expired.iter().filter(|p| p.extension().is_some_and(|e| e == "seg")).count();
                let (bytes, start) = (disk.bytes(), disk.start());
                if !expired.is_empty() {
                    partition.advance_start(start);
                    removed.extend(expired);
                }
                let tp = TopicPartition::new(
                    topic.clone(),
                    i32::try_from(p).expect("partition counts come from an i32"),
                );
                metrics::retained(&tp, bytes, start, deleted);
            }
        }
        (removed, indexes)
    };
    for (segment, saved) in indexes {
        if let Err(error) = index_file::save(&segment, &saved) {
            tracing::warn!(segment = %segment.display(), %error, "could not save a segment's index; it is rebuilt at the next open");
        }
    }
    for path in removed {
        // The segment is already out of the index; a file that survives a failed
        // delete only costs disk space, and is retained again after a reopen.
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!(segment = %path.display(), "retention deleted a segment"),
            Err(error) => {
                tracing::warn!(segment = %path.display(), %error, "could not delete an expired segment")
            }
        }
    }
}
