//! `nearline evaluate`: what take rate a billboard policy would have had, estimated
//! from the logged outcomes (`nearline-evaluate` holds the estimators).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use nearline_billboard::service::Settings;
use nearline_evaluate::{Bootstrap, Estimator, Logs, Options, Range, SliceField, Training, input, spec};
use nearline_eventlog::durable::{DurableLog, DurableOptions};
use nearline_runtime::Config;

use crate::backends;
use crate::cli::parse_time;

/// Arguments of `nearline evaluate`.
#[derive(Debug, clap::Args)]
pub(crate) struct EvaluateArgs {
    /// The target policy, as configuration names it: `linucb(alpha=0.2)`, `thompson`,
    /// `epsilon_greedy(epsilon=0.05)`, `ucb1`, `uniform`, `logging`, or
    /// `snapshot(version=V[, policy=linucb])` for the model billboard served as version V.
    #[arg(long, value_name = "SPEC")]
    pub(crate) policy: String,

    /// First impression time evaluated (inclusive): RFC 3339 or ms since the Unix epoch.
    /// Earlier outcomes still train the target.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub(crate) from: i64,

    /// End of the evaluated range (exclusive), same forms as --from.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub(crate) to: i64,

    /// `kafka` to read the outcomes topic (billboard.outcomes_topic) to its current end,
    /// or a directory of `.ndjson` / `.ndjson.gz` outcomes (services/evaluate/README.md).
    #[arg(long, default_value = "kafka", value_name = "kafka|DIR")]
    pub(crate) input: String,

    /// Estimators, comma-separated.
    #[arg(long, default_value = "replay,ips,snips,dr", value_name = "LIST")]
    pub(crate) estimators: String,

    /// Bootstrap resamples of the 95 % intervals (0: none).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub(crate) bootstrap: usize,

    /// Seed of the bootstrap and of replay's rejection sampling.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,

    /// Output: an aligned table, or the JSON document described in the README.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,

    /// With `--input kafka`: read the embedded event log (embedded.data_dir) instead of
    /// Kafka. It must not be in use by `nearline serve --embedded`.
    #[arg(long)]
    pub(crate) embedded: bool,

    /// Also estimate per slice: any of country, device, daypart, policy (the logging one).
    #[arg(long, value_name = "FIELDS")]
    pub(crate) by: Option<String>,

    /// Clip importance weights at W (off unless given; the output says when it is on).
    #[arg(long, value_name = "W")]
    pub(crate) clip: Option<f64>,

    /// How long after its impression an outcome reaches the target [default:
    /// attribution.reward_window + attribution.reward_grace].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub(crate) reward_delay: Option<Duration>,

    /// Rebuild the target's model at most this often, in event time (billboard rebuilds
    /// on every flush_interval; a minute is close and much faster).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1m", value_name = "DURATION")]
    pub(crate) rebuild_every: Duration,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned text.
    Table,
    /// One JSON document.
    Json,
}

/// Runs the evaluation and prints it; fails when the data cannot support an estimate.
pub(crate) async fn evaluate(args: EvaluateArgs, config: &Config) -> anyhow::Result<()> {
    if args.to <= args.from {
        bail!("--to must be after --from");
    }
    if let Some(w) = args.clip
        && !(w.is_finite() && w > 0.0)
    {
        bail!("--clip {w}: must be a positive number");
    }
    let settings = Settings::from_config(config);
    let target = spec::parse(&args.policy, settings.params)?;
    let estimators =
        Estimator::parse_list(&args.estimators).map_err(|e| anyhow::anyhow!("--estimators: {e}"))?;
    let by =
        SliceField::parse_list(args.by.as_deref().unwrap_or("")).map_err(|e| anyhow::anyhow!("--by: {e}"))?;
    let reward_delay =
        args.reward_delay.unwrap_or(config.attribution.reward_window + config.attribution.reward_grace);
    let options = Options {
        estimators,
        bootstrap: Bootstrap { resamples: args.bootstrap, seed: args.seed },
        clip: args.clip,
        by,
        training: Training {
            reward_delay_ms: reward_delay.as_millis() as i64,
            rebuild_every_ms: args.rebuild_every.as_millis() as i64,
        },
        range: Range { from_ms: args.from, to_ms: args.to },
        direct_params: settings.params,
        stickiness_ms: settings.stickiness_ms,
    };

    let reading = std::time::Instant::now();
    let logs = read(&args, config).await?;
    eprintln!("read {} logged decision(s) in {:.2} s", logs.decisions.len(), reading.elapsed().as_secs_f64());
    eprintln!("evaluating {} over {} logged decision(s)", target, logs.decisions.len());
    let started = std::time::Instant::now();
    let report =
        tokio::task::spawn_blocking(move || nearline_evaluate::evaluate(&logs, &target, &options)).await??;
    eprintln!("evaluated in {:.2} s", started.elapsed().as_secs_f64());
    match args.format {
        Format::Table => print!("{}", report.table()),
        Format::Json => {
            // The table prints its warnings; a JSON reader may not look at the field.
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    let unsupported = report.unsupported();
    if !unsupported.is_empty() {
        bail!("the logged data cannot support {} estimate(s): {}", unsupported.len(), unsupported.join("; "));
    }
    Ok(())
}

fn bar() -> ProgressBar {
    ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    )
}

/// Reads the logged outcomes from the chosen input.
async fn read(args: &EvaluateArgs, config: &Config) -> anyhow::Result<Logs> {
    let topic = &config.billboard.outcomes_topic;
    let bar = bar();
    let logs = if args.input == "kafka" {
        let (logs, undecodable) = if args.embedded {
            let dir = config.embedded.log_dir();
            let options = DurableOptions::new(dir.clone());
            let log = tokio::task::spawn_blocking(move || DurableLog::open(options)).await?.with_context(|| {
                format!(
                    "opening the embedded event log in {} (is `nearline serve --embedded` running? stop it, or pass --input DIR)",
                    dir.display()
                )
            })?;
            bar.set_message(format!("reading {topic} (embedded)"));
            let read = input::from_log(&log, topic, |read, total| {
                bar.set_length(total);
                bar.set_position(read);
            })
            .await;
            log.close().await.ok();
            read?
        } else {
            let log = backends::kafka(config)?;
            bar.set_message(format!("reading {topic}"));
            input::from_log(&log, topic, |read, total| {
                bar.set_length(total);
                bar.set_position(read);
            })
            .await
            .with_context(|| format!("reading {topic} from Kafka at {}", config.kafka.bootstrap_servers))?
        };
        if undecodable > 0 {
            eprintln!("skipped {undecodable} undecodable record(s) of {topic}");
        }
        logs
    } else {
        if args.embedded {
            bail!(
                "--embedded reads the embedded event log: use it with --input kafka, or drop it to read {}",
                args.input
            );
        }
        bar.set_message("reading files (bytes)");
        let dir = Path::new(&args.input).to_path_buf();
        let bar2 = bar.clone();
        tokio::task::spawn_blocking(move || {
            input::from_directory(&dir, |read, total| {
                bar2.set_length(total);
                bar2.set_position(read);
            })
        })
        .await??
    };
    bar.finish_and_clear();
    Ok(logs)
}
