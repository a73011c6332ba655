//! Consumer groups' committed offsets, in one small text file rewritten on each commit.
//!
//! The file is replaced atomically (written beside it, `fsync`ed, renamed over it, the
//! directory `fsync`ed), so after a crash it holds either the previous commit or the
//! new one, never a mix. Commits are rare (attribution and billboard commit once per
//! batch interval) and the file is small (one line per group and partition), so
//! rewriting it whole is cheaper to reason about than an append-only journal.
//!
//! One line per committed offset: `group <TAB> topic <TAB> partition <TAB> offset`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::memory::{Group, State};
use crate::{Error, Result, TopicPartition};

/// All groups' committed offsets at one moment, numbered so a newer one is never
/// overwritten by an older one that lost the race to the file.
#[derive(Debug)]
pub(crate) struct Snapshot {
    version: u64,
    lines: String,
}

impl Snapshot {
    /// The committed offsets of every group in `state`, with the next version number.
    pub(crate) fn of(state: &mut State) -> Self {
        state.pending.offsets_version += 1;
        let mut entries: Vec<(&String, &TopicPartition, i64)> = state
            .groups
            .iter()
            .flat_map(|(group, g)| g.committed.iter().map(move |(tp, offset)| (group, tp, *offset)))
            .collect();
        entries.sort();
        let lines = entries
            .into_iter()
            .map(|(group, tp, offset)| format!("{group}\t{}\t{}\t{offset}\n", tp.topic, tp.partition))
            .collect();
        Self { version: state.pending.offsets_version, lines }
    }
}

/// The offsets file of a data directory.
#[derive(Debug)]
pub(crate) struct OffsetsFile {
    path: PathBuf,
    /// Version of the snapshot on disk; the mutex also keeps writers from interleaving.
    written: Mutex<u64>,
}

impl OffsetsFile {
    /// The offsets file in `dir`.
    pub(crate) fn new(dir: &Path) -> Self {
        Self { path: dir.join("offsets"), written: Mutex::new(0) }
    }

    /// The groups and their committed offsets, empty when nothing was ever committed.
    pub(crate) fn load(&self) -> Result<HashMap<String, Group>> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
            Err(e) => return Err(Error::Other(format!("reading {}: {e}", self.path.display()))),
        };
        let mut groups: HashMap<String, Group> = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let bad = || Error::Other(format!("{} line {}: malformed: {line:?}", self.path.display(), n + 1));
            let fields: Vec<&str> = line.split('\t').collect();
            let [group, topic, partition, offset] = fields[..] else {
                return Err(bad());
            };
            let partition: i32 = partition.parse().map_err(|_| bad())?;
            let offset: i64 = offset.parse().map_err(|_| bad())?;
            groups
                .entry(group.to_owned())
                .or_default()
                .committed
                .insert(TopicPartition::new(topic, partition), offset);
        }
        Ok(groups)
    }

    /// Replaces the file with `snapshot` unless a newer snapshot is already there.
    pub(crate) fn write(&self, snapshot: &Snapshot) -> io::Result<()> {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        if *written >= snapshot.version {
            return Ok(());
        }
        let temp = self.path.with_extension("tmp");
        let mut file = fs::File::create(&temp)?;
        file.write_all(snapshot.lines.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, &self.path)?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        *written = snapshot.version;
        Ok(())
    }
}

/// Makes a directory's entries (created, renamed or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Whether `name` can be written as a field of the offsets file.
pub(crate) fn is_storable(name: &str) -> bool {
    !name.contains(['\t', '\n', '\r'])
}
