//! The end-of-episode check: the batch recount of the archived events over the settled
//! part of the day, compared cell by cell with the counts the stream stored: exactly
//! what `nearline reconcile --embedded --input <demo dir>/archive` does, run in process
//! on the demo's own database (the running suite holds the SQLite file's lock).

use std::path::PathBuf;

use anyhow::Context as _;
use nearline_attribution::batch::{self, Range};
use nearline_attribution::service;
use nearline_attribution::store::{self, Difference};
use nearline_attribution::topics::Topics;
use nearline_runtime::Config;
use nearline_storage::Database;

/// The cells of `[from_ms, to_ms)` whose stored counts differ from the recount of the
/// events in `input`.
pub(crate) async fn differences(
    config: &Config,
    database: Database,
    input: PathBuf,
    from_ms: i64,
    to_ms: i64,
) -> anyhow::Result<Vec<Difference>> {
    let join = service::join_config(&config.attribution);
    let range = Range::new(from_ms, to_ms, &join)?;
    let region = config.ingest.default_region.clone();
    let facts = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let inputs = batch::from_directory(&input, &region, range, &join, |_, _| {})
            .with_context(|| format!("reading the archive in {}", input.display()))?;
        Ok(batch::run(join, range, inputs)?)
    })
    .await??;
    let store = service::store(&config.attribution, database, &Topics::default());
    let stored = store.load_counts(from_ms, to_ms).await.context("reading stored counts")?;
    Ok(store::compare(&facts.counts(&join), &stored))
}
