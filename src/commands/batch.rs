//! `nearline backfill` and `nearline reconcile`: the join in batch over a bounded input.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use nearline_attribution::batch::{self, Range};
use nearline_attribution::service;
use nearline_attribution::store::{self, Difference};
use nearline_attribution::topics::Topics;
use nearline_runtime::Config;
use nearline_storage::Database;

use crate::backends;
use crate::cli::BatchArgs;

/// Recounts the range and writes the facts into the stored sets.
pub(crate) async fn backfill(args: BatchArgs, config: &Config) -> anyhow::Result<()> {
    let (database, facts) = recount(&args, config).await?;
    let topics = service::topics(config);
    let store = service::store(&config.attribution, database, &topics);
    refuse_recounting_cells_without_region(&store, &args, &facts).await?;
    store.write(facts.as_facts(), &[]).await.context("writing the backfilled facts")?;
    println!(
        "backfilled {} impression, {} play and {} unattributed memberships (already stored ones unchanged)",
        facts.impressions.len(),
        facts.plays.len(),
        facts.unattributed.len()
    );
    Ok(())
}

/// Counts written before cells had a region sit in region `''`; the recount would add
/// the same requests again under their real regions, so backfill stops and says why.
async fn refuse_recounting_cells_without_region(
    store: &store::Store,
    args: &BatchArgs,
    facts: &batch::BatchFacts,
) -> anyhow::Result<()> {
    let has_region = |m: &nearline_attribution::join::CellMember| !m.cell.dims.region.is_empty();
    if !facts.impressions.iter().chain(&facts.plays).any(has_region) {
        return Ok(());
    }
    let legacy = store.cells_without_region(args.from, args.to).await.context("reading stored counts")?;
    if legacy > 0 {
        bail!(
            "{legacy} stored cell(s) in the range were counted before cells had a region (region ''); \
             backfilling it would count their requests again under their regions. Backfill only \
             ranges counted since the upgrade, or clear the range's sets first (docs/regions.md)"
        );
    }
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
        "{:<12} {:<22} {:<8} {:<10} {:<12} {:<12} {:>20} {:>20}",
        "video_id",
        "epoch",
        "country",
        "device",
        "canvas",
        "region",
        "batch (imp/plays)",
        "stored (imp/plays)"
    );
    for difference in differences {
        match difference {
            Difference::Cell { key: (video, epoch, country, device, canvas, region), batch, stored } => {
                println!(
                    "{video:<12} {:<22} {country:<8} {device:<10} {canvas:<12} {region:<12} {:>20} {:>20}",
                    time(*epoch),
                    format!("{}/{}", batch.0, batch.1),
                    format!("{}/{}", stored.0, stored.1)
                )
            }
            Difference::Unattributed { key: (video, epoch, country, device, region), batch, stored } => {
                println!(
                    "{video:<12} {:<22} {country:<8} {device:<10} {:<12} {region:<12} {:>20} {:>20}",
                    time(*epoch),
                    "(unattributed)",
                    batch,
                    stored
                )
            }
        }
    }
}

fn time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

/// One `--input`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BatchInput {
    /// A cluster's topics: the configured one (`None`) or the given bootstrap servers.
    Kafka(Option<String>),
    /// A directory of NDJSON files.
    Directory(PathBuf),
}

impl BatchInput {
    fn parse(text: &str) -> anyhow::Result<Self> {
        if text == "kafka" {
            return Ok(BatchInput::Kafka(None));
        }
        if let Some(bootstrap) = text.strip_prefix("kafka://") {
            let servers: Vec<&str> = bootstrap.split(',').map(str::trim).collect();
            if let Some(bad) = servers.iter().find(|s| {
                s.rsplit_once(':').is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
            }) {
                bail!("--input {text}: {bad:?} is not HOST:PORT; expected kafka://HOST:PORT[,HOST:PORT...]");
            }
            return Ok(BatchInput::Kafka(Some(servers.join(","))));
        }
        Ok(BatchInput::Directory(PathBuf::from(text)))
    }
}

impl std::fmt::Display for BatchInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchInput::Kafka(None) => write!(f, "the configured Kafka topics"),
            BatchInput::Kafka(Some(bootstrap)) => write!(f, "kafka://{bootstrap}"),
            BatchInput::Directory(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// Opens the database and runs the batch join over the union of the chosen inputs.
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
    let mut inputs = Vec::new();
    for input in &args.inputs {
        let input = BatchInput::parse(input)?;
        let read = match &input {
            BatchInput::Kafka(bootstrap) => {
                if args.embedded {
                    bail!(
                        "--embedded needs --input DIR: the embedded event log is opened only by `nearline serve`"
                    );
                }
                bar.set_message(format!("reading {input}"));
                let (log, topics) = match bootstrap {
                    None => (backends::kafka(config)?, service::topics(config)),
                    // Another region's cluster: its own topics; its mirrors of other
                    // regions would only repeat events (which count once anyway).
                    Some(bootstrap) => (backends::kafka_at(config, bootstrap)?, Topics::default()),
                };
                let (read, undecodable) = batch::from_log(&log, &topics, range, &join, |read, total| {
                    bar.set_length(total);
                    bar.set_position(read);
                })
                .await
                .with_context(|| format!("reading {input}"))?;
                if undecodable > 0 {
                    eprintln!(
                        "skipped {undecodable} undecodable record(s) of {input}; see the log for which"
                    );
                }
                read
            }
            BatchInput::Directory(dir) => {
                bar.set_message(format!("reading {input}"));
                let region = &config.ingest.default_region;
                batch::from_directory(dir, region, range, &join, |read, total| {
                    bar.set_length(total);
                    bar.set_position(read);
                })?
            }
        };
        inputs.extend(read);
    }
    bar.finish_and_clear();
    eprintln!("joining {} input event(s) from {} input(s) in batch", inputs.len(), args.inputs.len());
    let facts = batch::run(join, range, inputs)?;
    Ok((database, facts))
}

#[cfg(test)]
mod tests {
    use super::BatchInput;

    #[test]
    fn inputs_name_a_cluster_or_a_directory() {
        assert_eq!(BatchInput::parse("kafka").unwrap(), BatchInput::Kafka(None));
        assert_eq!(
            BatchInput::parse("kafka://10.0.0.1:9092, eu-kafka:9092").unwrap(),
            BatchInput::Kafka(Some("10.0.0.1:9092,eu-kafka:9092".into()))
        );
        assert_eq!(
            BatchInput::parse("archive/eu-west").unwrap(),
            BatchInput::Directory("archive/eu-west".into())
        );
        let error = BatchInput::parse("kafka://eu-kafka").unwrap_err().to_string();
        assert!(error.contains("\"eu-kafka\" is not HOST:PORT"), "{error}");
        assert!(BatchInput::parse("kafka://").is_err());
    }
}
