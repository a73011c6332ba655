//! `nearline backfill` and `nearline reconcile`: the join in batch over a bounded input.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use nearline_attribution::batch::{self, Range};
use nearline_attribution::service;
use nearline_attribution::store::{self, Difference};
use nearline_runtime::Config;
use nearline_storage::Database;

use crate::backends;
use crate::cli::BatchArgs;

/// Recounts the range and writes the facts into the stored sets.
pub(crate) async fn backfill(args: BatchArgs, config: &Config) -> anyhow::Result<()> {
    let (database, facts) = recount(&args, config).await?;
    let topics = service::topics(config);
    let store = service::store(&config.attribution, database, &topics);
    store.write(facts.as_facts(), &[]).await.context("writing the backfilled facts")?;
    println!(
        "backfilled {} impression, {} play and {} unattributed memberships (already stored ones unchanged)",
        facts.impressions.len(),
        facts.plays.len(),
        facts.unattributed.len()
    );
    Ok(())
}

/// Recounts the range and compares it with the stored counts; fails when any differ.
pub(crate) async fn reconcile(args: BatchArgs, config: &Config) -> anyhow::Result<()> {
    let (database, facts) = recount(&args, config).await?;
    let join = service::join_config(&config.attribution);
    let store = service::store(&config.attribution, database, &service::topics(config));
    let stored = store.load_counts(args.from, args.to).await.context("reading stored counts")?;
    let differences = store::compare(&facts.counts(&join), &stored);
    if differences.is_empty() {
        println!("0 differences: every cell in the range matches the batch recount");
        return Ok(());
    }
    print_differences(&differences);
    bail!("{} cell(s) differ between the stored counts and the batch recount", differences.len())
}

fn print_differences(differences: &[Difference]) {
    println!(
        "{:<12} {:<22} {:<8} {:<10} {:<12} {:>20} {:>20}",
        "video_id", "epoch", "country", "device", "canvas", "batch (imp/plays)", "stored (imp/plays)"
    );
    for difference in differences {
        match difference {
            Difference::Cell { key: (video, epoch, country, device, canvas), batch, stored } => println!(
                "{video:<12} {:<22} {country:<8} {device:<10} {canvas:<12} {:>20} {:>20}",
                time(*epoch),
                format!("{}/{}", batch.0, batch.1),
                format!("{}/{}", stored.0, stored.1)
            ),
            Difference::Unattributed { key: (video, epoch, country, device), batch, stored } => println!(
                "{video:<12} {:<22} {country:<8} {device:<10} {:<12} {:>20} {:>20}",
                time(*epoch),
                "(unattributed)",
                batch,
                stored
            ),
        }
    }
}

fn time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Opens the database and runs the batch join over the chosen input.
async fn recount(args: &BatchArgs, config: &Config) -> anyhow::Result<(Database, batch::BatchFacts)> {
    let join = service::join_config(&config.attribution);
    let range = Range::new(args.from, args.to, &join)?;
    let database = if args.embedded {
        let database =
            Database::Sqlite(nearline_storage::connect_sqlite(&config.embedded.sqlite_path).await?);
        database.migrate().await?;
        database
    } else {
        Database::Postgres(nearline_storage::connect_postgres(&config.database, false).await?)
    };

    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    let inputs = if args.input == "kafka" {
        if args.embedded {
            bail!("--embedded needs --input DIR: the embedded event log is opened only by `nearline serve`");
        }
        bar.set_message("reading topics");
        let log = backends::kafka(config)?;
        let (inputs, undecodable) =
            batch::from_log(&log, &service::topics(config), range, &join, |read, total| {
                bar.set_length(total);
                bar.set_position(read);
            })
            .await?;
        if undecodable > 0 {
            eprintln!("skipped {undecodable} undecodable record(s); see the log for which");
        }
        inputs
    } else {
        bar.set_message("reading files");
        let region = &config.ingest.default_region;
        batch::from_directory(Path::new(&args.input), region, range, &join, |read, total| {
            bar.set_length(total);
            bar.set_position(read);
        })?
    };
    bar.finish_and_clear();
    eprintln!("joining {} input event(s) in batch", inputs.len());
    let facts = batch::run(join, range, inputs)?;
    Ok((database, facts))
}
