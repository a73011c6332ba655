//! What the driver persists so a rerun continues where it stopped: the episode's
//! anchor, the simulated clock (the next simulated minute to run), the plays scheduled
//! but not yet sent (in flight, or held back by the upstream delay) and the totals.
//!
//! Randomness needs no saved generator state: each simulated minute draws from a
//! generator seeded by (seed, minute), so the clock is the position. Billboard's own
//! draws are the service's and are not replayed.
//!
//! Saved atomically (write, fsync, rename) every few simulated minutes and on stop.
//! After a clean stop (Ctrl-C) nothing is lost or repeated; after a SIGKILL the minutes
//! since the last save run again with new decisions: more traffic, never wrong counts
//! (the archive holds exactly what ingest acknowledged, which is what reconcile reads).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Bumped when the layout changes; an older state starts a fresh episode.
const VERSION: u32 = 1;

/// A play scheduled for sending.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// Relative simulated time at which it is sent.
    pub(crate) send_ms: i64,
    /// Whether the upstream delay holds it back.
    pub(crate) held: bool,
    /// The event, in ingest's JSON shape.
    pub(crate) event: serde_json::Value,
}

/// Totals since the episode started.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Totals {
    pub(crate) events: u64,
    pub(crate) impressions: u64,
    pub(crate) plays: u64,
    pub(crate) decisions: u64,
}

/// The driver's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) version: u32,
    pub(crate) seed: u64,
    pub(crate) members: usize,
    pub(crate) traffic: u32,
    /// Absolute time of the episode's start, ms since the Unix epoch.
    pub(crate) start_ms: i64,
    /// The next simulated minute to run (0..=1440).
    pub(crate) minute: i64,
    pub(crate) pending: Vec<Pending>,
    pub(crate) totals: Totals,
    /// The end-of-episode reconcile's verdict, once it ran.
    pub(crate) reconciled: Option<String>,
}

impl State {
    /// A new episode starting at `start_ms`.
    pub(crate) fn new(seed: u64, members: usize, traffic: u32, start_ms: i64) -> Self {
        Self {
            version: VERSION,
            seed,
            members,
            traffic,
            start_ms,
            minute: 0,
            pending: Vec::new(),
            totals: Totals::default(),
            reconciled: None,
        }
    }

    /// The saved state in `dir`, if there is one of this layout.
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = file(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let state: Self =
            serde_json::from_str(&text).with_context(|| format!("{} is not a demo state", path.display()))?;
        Ok((state.version == VERSION).then_some(state))
    }

    /// Saves atomically.
    pub(crate) fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = file(dir);
        let tmp = path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut out = std::fs::File::create(&tmp)?;
            out.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
            out.sync_data()?;
            std::fs::rename(&tmp, &path)
        };
        write().with_context(|| format!("saving the demo state to {}", path.display()))
    }
}

fn file(dir: &Path) -> PathBuf {
    dir.join("state.json")
}
