//! Every event ingest acknowledged, as NDJSON in ingest's JSON shape: what a real
//! deployment's batch archive would hold, and the input of the end-of-episode
//! reconcile (`nearline reconcile --embedded --input <demo dir>/archive`).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;

/// Appends to `<dir>/events.ndjson`.
#[derive(Debug)]
pub(crate) struct Archive {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Archive {
    /// The archive directory of the demo directory `demo_dir`.
    pub(crate) fn dir(demo_dir: &Path) -> PathBuf {
        demo_dir.join("archive")
    }

    /// Opens (creating) the archive in `dir` for appending.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("events.ndjson");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self { path, out: BufWriter::new(file) })
    }

    /// Appends acknowledged events and flushes them to the file.
    pub(crate) fn append(&mut self, events: &[Value]) -> anyhow::Result<()> {
        let write = |out: &mut BufWriter<File>| -> std::io::Result<()> {
            for event in events {
                serde_json::to_writer(&mut *out, event)?;
                out.write_all(b"\n")?;
            }
            out.flush()
        };
        write(&mut self.out).with_context(|| format!("appending to {}", self.path.display()))
    }
}
