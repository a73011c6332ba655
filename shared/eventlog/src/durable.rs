//! The durable embedded event log: [`crate::memory::MemoryLog`]'s groups, consumers
//! and readers over append-only segment files.
//!
//! # Storage
//!
//! `<data_dir>/topics/<topic>/<partition>/<first offset>.seg` holds each partition's
//! records, framed with their length and a CRC-32 (module `frame`); `<data_dir>/offsets`
//! holds the consumer groups' committed offsets (module `offsets`); `<data_dir>/LOCK` keeps
//! a second process out (module `lock`).
//!
//! Why files of our own rather than a table in the SQLite file or an embedded store:
//! the log is append-only, read mostly sequentially and deleted from the front in
//! whole pieces. Segment files give exactly that with one `pwrite` + `fdatasync` per
//! partition per group commit, retention as a file deletion, no compaction, no write
//! amplification and no second copy in a write-ahead log; SQLite would write every
//! record twice (WAL, then the table) and contend with the counts for its single
//! writer, and a general key-value store adds compaction work the log never needs.
//! The format is small enough to recover by reading it: the last segment of each
//! partition is scanned, its CRCs and offsets checked and a torn tail cut off; earlier
//! segments are opened through their saved sparse index (module `index_file`), or scanned
//! when it is missing or does not match.
//!
//! # Durability
//!
//! [`EventLog::publish`] assigns offsets and queues the encoded records under the
//! log's lock, then waits. One writer thread (module `writer`) takes everything queued by
//! all publishers at once, writes each touched partition's bytes at the end of its
//! active segment and `fdatasync`s them (in parallel, one thread per partition, since
//! the disk serves concurrent syncs far faster than consecutive ones), and only then
//! makes the records visible to consumers and wakes the publishers: a publish returns
//! after its records are on disk, and consumers never see a record a crash could take
//! back. A commit returns after the offsets file was replaced durably.
//!
//! If a write or sync fails the log stops accepting appends (they fail as
//! [`crate::Error::Unavailable`]) rather than guess what reached the disk (after a
//! failed `fsync` the kernel may have dropped the dirty pages, so retrying in place
//! could acknowledge lost data); [`DurableLog::failed`] resolves, `nearline serve`
//! stops, and a restart recovers from the files.
//!
//! # Bounds
//!
//! Memory holds, per partition, a tail of recent records of at most
//! [`DurableOptions::cache_bytes`], one decoded index stretch for reads behind it, and
//! the sparse index. Disk holds, per partition, what retention keeps: segments are
//! deleted whole, oldest first, once their newest record is older than
//! [`DurableOptions::retention`] or the partition is over
//! [`DurableOptions::retention_bytes`]; the active segment is never deleted. Offsets are
//! never reused: the log start offset (the low watermark) moves forward.

pub(crate) mod frame;
mod index_file;
mod lock;
mod metrics;
pub(crate) mod offsets;
pub(crate) mod segments;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

pub use self::lock::FileLock;
use self::offsets::{OffsetsFile, Snapshot};
use self::segments::DiskPartition;
use crate::memory::partition::{Partition, Stored};
use crate::memory::{MemoryLog, Shared, State};
use crate::{
    Consumer, Delivery, Error, EventLog, OutgoingRecord, Reader, Result, TopicPartition, TopicSpec,
    partition_for_key,
};

/// Where the durable log keeps its files and how much it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableOptions {
    /// The data directory; created when missing.
    pub dir: PathBuf,
    /// A segment is closed and a new one started once it would grow past this.
    pub segment_bytes: u64,
    /// Segments whose newest record was appended longer ago than this are deleted.
    pub retention: Duration,
    /// Oldest segments are deleted while a partition holds more than this.
    pub retention_bytes: u64,
    /// Recent records each partition keeps in memory for consumers that keep up.
    pub cache_bytes: usize,
}

impl DurableOptions {
    /// Defaults for a data directory: 64 MiB segments, 24 h and 1 GiB per partition
    /// retained, 4 MiB of recent records in memory per partition.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            segment_bytes: 64 * 1024 * 1024,
            retention: Duration::from_secs(24 * 3600),
            retention_bytes: 1024 * 1024 * 1024,
            cache_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The durable embedded log. Cheap to clone; clones share the same files.
#[derive(Debug, Clone)]
pub struct DurableLog {
    log: MemoryLog,
}

impl DurableLog {
    /// Opens the log in `options.dir`: takes the directory's lock first (failing, and
    /// changing nothing, when another process holds it), then recovers every partition
    /// and the committed offsets, and starts the writer.
    pub fn open(options: DurableOptions) -> Result<Self> {
        let dir = options.dir.clone();
        let io = |what: &str, path: &Path, e: std::io::Error| {
            Error::Other(format!("{what} {}: {e}", path.display()))
        };
        fs::create_dir_all(&dir).map_err(|e| io("creating", &dir, e))?;
        let lock = lock::acquire(&dir)?;
        metrics::describe();

        let topics_dir = dir.join("topics");
        fs::create_dir_all(&topics_dir).map_err(|e| io("creating", &topics_dir, e))?;
        let mut topics = HashMap::new();
        for entry in fs::read_dir(&topics_dir).map_err(|e| io("listing", &topics_dir, e))? {
            let entry = entry.map_err(|e| io("listing", &topics_dir, e))?;
            let topic = entry.file_name().to_string_lossy().into_owned();
            let partitions = open_topic(&entry.path(), options.cache_bytes)?;
            topics.insert(topic, partitions);
        }
        let offsets = OffsetsFile::new(&dir);
        let groups = offsets.load()?;
        let records: i64 = topics.values().flatten().map(|p: &Partition| p.high() - p.start).sum();
        tracing::info!(dir = %dir.display(), topics = topics.len(), records, groups = groups.len(), "durable event log opened");

        let state = State { topics, groups, ..State::default() };
        let storage = Storage {
            options,
            work: Condvar::new(),
            flushed: watch::Sender::new(Flushed::default()),
            offsets,
            lock: Mutex::new(Some(lock)),
            writer: Mutex::new(None),
        };
        let log = MemoryLog::durable(state, storage);
        let shared = Arc::clone(log.shared());
        let handle = std::thread::Builder::new()
            .name("nearline-log-writer".into())
            .spawn(move || writer::run_guarded(&shared))
            .map_err(|e| Error::Other(format!("starting the log writer: {e}")))?;
        *storage_of(log.shared()).writer.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
        Ok(Self { log })
    }

    /// Writes out what is queued, stops the writer and releases the directory lock.
    /// Publishing fails afterwards; reading and committing still work.
    pub async fn close(&self) -> Result<()> {
        let shared = Arc::clone(self.log.shared());
        tokio::task::spawn_blocking(move || {
            let storage = storage_of(&shared);
            shared.lock().pending.closing = true;
            storage.work.notify_all();
            let handle = storage.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(handle) = handle {
                handle.join().map_err(|_| Error::Other("the log writer panicked".into()))?;
            }
            storage.lock.lock().unwrap_or_else(PoisonError::into_inner).take();
            Ok(())
        })
        .await
        .map_err(|e| Error::Other(format!("closing the log: {e}")))?
    }

    /// Resolves, with the reason, once the log has stopped accepting appends after a
    /// failed write or sync; pending for as long as the log is healthy. A process
    /// should then stop, so a restart recovers from the files.
    pub async fn failed(&self) -> String {
        let mut flushed = storage_of(self.log.shared()).flushed.subscribe();
        let why = flushed
            .wait_for(|f| f.failed.is_some())
            .await
            .ok()
            .map(|f| f.failed.as_deref().unwrap_or_default().to_owned());
        match why {
            Some(why) => why,
            // The sender lives as long as the log, which `self` keeps alive.
            None => std::future::pending().await,
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &storage_of(self.log.shared()).options.dir
    }
}

/// Takes an exclusive lock on `<path>.lock` for something the durable log does not
/// own but that must not be shared either (the embedded SQLite file), or explains
/// which process holds it.
pub fn lock_beside(path: &Path, what: &str) -> Result<FileLock> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    lock::acquire_file(PathBuf::from(name), what, "point this one elsewhere")
}

/// Opens the partitions `0..n` of the topic directory `dir`.
fn open_topic(dir: &Path, cache_bytes: usize) -> Result<Vec<Partition>> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::Other(format!("listing {}: {e}", dir.display())))? {
        let entry = entry.map_err(|e| Error::Other(format!("listing {}: {e}", dir.display())))?;
        if let Ok(n) = entry.file_name().to_string_lossy().parse::<usize>() {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    if numbers.iter().enumerate().any(|(i, n)| i != *n) {
        return Err(Error::Other(format!("{} does not hold partitions 0..{}", dir.display(), numbers.len())));
    }
    numbers
        .into_iter()
        .map(|n| Ok(Partition::on_disk(DiskPartition::open(dir.join(n.to_string()))?, cache_bytes)))
        .collect()
}

fn storage_of(shared: &Shared) -> &Storage {
    shared.durable.as_ref().expect("a durable log has storage")
}

#[async_trait]
impl EventLog for DurableLog {
    async fn create_topics(&self, topics: &[TopicSpec]) -> Result<()> {
        self.log.create_topics(topics).await
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        self.log.partition_count(topic).await
    }

    async fn publish(&self, records: Vec<OutgoingRecord>) -> Result<Vec<Delivery>> {
        self.log.publish(records).await
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Consumer>> {
        if !offsets::is_storable(group) {
            return Err(Error::Other(format!("group name {group:?} may not hold tabs or line breaks")));
        }
        self.log.subscribe(group, topics).await
    }

    async fn watermarks(&self, tp: &TopicPartition) -> Result<(i64, i64)> {
        self.log.watermarks(tp).await
    }

    async fn offset_for_time(&self, tp: &TopicPartition, timestamp_ms: i64) -> Result<Option<i64>> {
        self.log.offset_for_time(tp, timestamp_ms).await
    }

    async fn committed_offset(&self, group: &str, tp: &TopicPartition) -> Result<Option<i64>> {
        self.log.committed_offset(group, tp).await
    }

    async fn reader(&self) -> Result<Box<dyn Reader>> {
        self.log.reader().await
    }
}

/// The durable side of a [`Shared`] log.
pub(crate) struct Storage {
    pub(crate) options: DurableOptions,
    /// Signalled (with the log's state mutex) when appends are queued or on close.
    pub(crate) work: Condvar,
    /// What the writer has made durable.
    pub(crate) flushed: watch::Sender<Flushed>,
    offsets: OffsetsFile,
    lock: Mutex<Option<FileLock>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Storage {
    /// Creates the directories and first segments of a new topic's partitions.
    pub(crate) fn create_topic(&self, name: &str, partitions: i32) -> Result<Vec<Partition>> {
        let dir = self.options.dir.join("topics").join(name);
        (0..partitions)
            .map(|p| {
                let path = dir.join(p.to_string());
                let disk = DiskPartition::create(path.clone())
                    .map_err(|e| Error::Other(format!("creating {}: {e}", path.display())))?;
                Ok(Partition::on_disk(disk, self.options.cache_bytes))
            })
            .collect()
    }
}

/// Progress of the writer, as publishers wait on it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flushed {
    /// Every append ticket up to this one is durable.
    pub(crate) seq: u64,
    /// Why the writer stopped, once it has.
    pub(crate) failed: Option<Arc<str>>,
}

/// Appends queued for the writer, and the bookkeeping around them.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Encoded records per partition, in offset order.
    pub(crate) appends: BTreeMap<TopicPartition, Append>,
    /// Ticket of the latest queued publish.
    pub(crate) seq: u64,
    /// Set by [`DurableLog::close`]: the writer drains the queue and stops.
    pub(crate) closing: bool,
    /// Set when the writer failed: nothing more is accepted.
    pub(crate) failed: Option<Arc<str>>,
    /// Version of the latest offsets snapshot taken.
    pub(crate) offsets_version: u64,
}

/// Records queued for one partition.
#[derive(Debug, Default)]
pub(crate) struct Append {
    /// Their frames, back to back.
    pub(crate) frames: Vec<u8>,
    /// The records with their frame lengths.
    pub(crate) records: Vec<(Stored, u32)>,
}

/// [`EventLog::publish`] of the durable log: queue, then wait until the writer made
/// the records durable.
pub(crate) async fn publish(shared: &Shared, records: Vec<OutgoingRecord>) -> Result<Vec<Delivery>> {
    let storage = storage_of(shared);
    let mut flushed = storage.flushed.subscribe();
    let (ticket, deliveries) = {
        let mut state = shared.lock();
        let State { topics, pending, .. } = &mut *state;
        if let Some(failed) = &pending.failed {
            return Err(Error::Unavailable(format!("the log stopped after a write failed: {failed}")));
        }
        if pending.closing {
            return Err(Error::Unavailable("the log is closed".into()));
        }
        if let Some(missing) = records.iter().find(|r| !topics.contains_key(&r.topic)) {
            return Err(Error::UnknownTopic(missing.topic.clone()));
        }
        let now = crate::memory::now_ms();
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let partitions = topics.get_mut(&record.topic).expect("checked above");
            let count = i32::try_from(partitions.len()).expect("partition counts come from an i32");
            let partition = partition_for_key(&record.key, count);
            let log = &mut partitions[usize::try_from(partition).expect("partition_for_key is non-negative")];
            let offset = log.next;
            log.next += 1;
            let stored = Stored {
                key: record.key,
                payload: record.payload,
                timestamp_ms: record.timestamp_ms.unwrap_or(now),
            };
            let append = pending.appends.entry(TopicPartition::new(record.topic, partition)).or_default();
            let len = frame::encode(&mut append.frames, offset, &stored);
            append.records.push((stored, u32::try_from(len).expect("frames are below 4 GiB")));
            deliveries.push(Delivery { partition, offset });
        }
        pending.seq += 1;
        (pending.seq, deliveries)
    };
    storage.work.notify_one();
    let flushed = flushed
        .wait_for(|f| f.seq >= ticket || f.failed.is_some())
        .await
        .map_err(|_| Error::Unavailable("the log writer is gone".into()))?;
    if flushed.seq >= ticket {
        return Ok(deliveries);
    }
    let failed = flushed.failed.clone().unwrap_or_default();
    Err(Error::Unavailable(format!("the log stopped after a write failed: {failed}")))
}

/// Writes `snapshot` to the offsets file, off the async threads.
pub(crate) async fn persist_offsets(shared: &Arc<Shared>, snapshot: Snapshot) -> Result<()> {
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || storage_of(&shared).offsets.write(&snapshot))
        .await
        .map_err(|e| Error::Other(format!("writing offsets: {e}")))?
        .map_err(|e| Error::Unavailable(format!("writing committed offsets: {e}")))
}
