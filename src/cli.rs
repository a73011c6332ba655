//! The command line: one binary, a subcommand per task.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use nearline_runtime::config::LogFormat;

/// nearline: near-real-time video insights and billboard decisions.
///
/// Client apps log impressions and plays to `ingest`; `attribution` joins them in event
/// time into exact counts per title, epoch and slice; `insights` answers dashboards from
/// those counts; `billboard` picks titles and artwork with bandits that learn from them.
///
/// Configuration is layered: built-in defaults, then the TOML file given with --config,
/// then environment variables named NEARLINE__SECTION__KEY (for example
/// NEARLINE__INGEST__HTTP_PORT=8081). `nearline config print` shows the result.
#[derive(Debug, Parser)]
#[command(name = "nearline", version, about, long_about)]
pub(crate) struct Cli {
    /// TOML configuration file, layered over the defaults and under NEARLINE__* variables.
    #[arg(long, short = 'c', global = true, env = "NEARLINE_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Log format: readable text, or JSON lines for a log pipeline (overrides
    /// telemetry.log_format).
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormatArg>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Log format as given on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(arg: LogFormatArg) -> Self {
        match arg {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run one service, or all four in one process.
    ///
    /// Each service serves gRPC and HTTP on the ports of its configuration section
    /// (for example ingest.grpc_port and ingest.http_port; 0 picks a free port) and
    /// prints the addresses it listens on. SIGTERM or Ctrl-C stops it gracefully:
    /// consumers flush and commit, servers drain within the grace period.
    Serve(ServeArgs),

    /// Prepare storage: apply database migrations and create the Kafka topics.
    ///
    /// Creates the Postgres database when it does not exist. Safe to run any number of
    /// times: what is already there is left as it is. With --embedded, migrates the
    /// SQLite file instead (the embedded log creates its topics when `serve` opens it).
    Migrate(MigrateArgs),

    /// Recount a time range in batch and add what the stream did not count.
    ///
    /// Runs the same join as the stream over a bounded input, sorted by event time so
    /// nothing is too late, and writes its facts into the same idempotent sets: data the
    /// stream already counted changes nothing, events that were too late for the stream
    /// are added. --from and --to must be aligned to the epoch (30 minutes by default).
    Backfill(BatchArgs),

    /// Recount a time range in batch and compare with the stored counts, cell by cell.
    ///
    /// Prints a table of every cell whose counts differ and exits with status 1 when any
    /// do (0 when all agree), so it can gate a job. Nothing is written.
    Reconcile(BatchArgs),

    /// Show the whole story live: the embedded suite driven by a simulated day.
    ///
    /// Runs `serve all --embedded` in its own directory (<embedded.data_dir>/demo) and
    /// drives it through the public APIs with billboard's seeded world, in simulated
    /// time: a title launches, the bandits find it, a region's plays arrive four hours
    /// late and the counts still equal a batch recount. Prints the dashboard URL, then
    /// a status line. Ctrl-C stops; running it again continues unless --fresh.
    Demo(crate::commands::DemoArgs),
    /// Estimate what take rate a billboard policy would have had, from logged outcomes.
    ///
    /// Replays the target through the logged decisions (learning from delayed rewards as
    /// it would have online) and estimates its take rate with replay, IPS, SNIPS and
    /// doubly robust, each with a 95 % bootstrap interval. Exits non-zero when the data
    /// cannot support an estimate. See services/evaluate/README.md.
    Evaluate(crate::commands::EvaluateArgs),

    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

/// Arguments of `nearline serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Which service to run.
    #[arg(value_enum)]
    pub(crate) service: ServiceName,

    /// Use SQLite (embedded.sqlite_path) and the durable embedded event log
    /// (embedded.data_dir) instead of Postgres and Kafka: no other setup needed.
    /// Migrations are applied at start.
    #[arg(long)]
    pub(crate) embedded: bool,
}

/// Arguments of `nearline migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// Migrate the embedded SQLite database instead of Postgres and Kafka.
    #[arg(long)]
    pub(crate) embedded: bool,
}

/// Arguments of `nearline backfill` and `nearline reconcile`.
#[derive(Debug, clap::Args)]
pub(crate) struct BatchArgs {
    /// Start of the range (inclusive): RFC 3339 (`2026-11-22T10:00:00Z`) or ms since the
    /// Unix epoch; aligned to an epoch.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub(crate) from: i64,

    /// End of the range (exclusive), same forms as --from.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub(crate) to: i64,

    /// Where the events come from, read up to their current end; give it several times
    /// to recount the union of the inputs (say, one per region, where topics are not
    /// mirrored):
    /// `kafka`, the configured cluster's impressions and plays topics, with those
    /// mirrored from `kafka.mirrored_regions`;
    /// `kafka://HOST:PORT[,HOST:PORT...]`, another cluster's own impressions and plays
    /// topics (a region's cluster);
    /// or a directory of `.ndjson` / `.ndjson.gz` files of events in the ingest JSON shape.
    /// An event in several inputs counts once.
    #[arg(long = "input", default_value = "kafka", value_name = "kafka|kafka://BOOTSTRAP|DIR")]
    pub(crate) inputs: Vec<String>,

    /// Use the embedded SQLite database (embedded.sqlite_path) instead of Postgres; the
    /// input must then be a directory (the embedded log is opened only by `serve`, which
    /// holds its directory's lock).
    #[arg(long)]
    pub(crate) embedded: bool,
}

/// Parses RFC 3339 or integer milliseconds since the Unix epoch.
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let time = humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{text:?} is neither RFC 3339 nor milliseconds since the Unix epoch: {e}"))?;
    let since_epoch =
        time.duration_since(std::time::UNIX_EPOCH).map_err(|_| format!("{text:?} is before 1970"))?;
    i64::try_from(since_epoch.as_millis()).map_err(|_| format!("{text:?} is too far in the future"))
}

/// A service to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ServiceName {
    /// Takes events from client apps into the event log.
    Ingest,
    /// Joins plays to impressions into exact counts.
    Attribution,
    /// Answers dashboards about title performance.
    Insights,
    /// Picks billboard titles and artwork.
    Billboard,
    /// All four in one process.
    All,
}

/// `nearline config ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the effective configuration as TOML, secrets masked.
    Print,
}
