//! `nearline demo`: the embedded suite and the simulated day's driver in one process
//! (see [`crate::demo`] for how simulated time fits the system).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use nearline_runtime::{Config, Shutdown};
use tokio_util::sync::CancellationToken;

use crate::cli::ServiceName;
use crate::commands::serve::{ALL, Suite};
use crate::demo::{self, Archive, Client, DAY_MS, Driver, HOUR_MS, Live, Printer, State, Story};

/// Arguments of `nearline demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Seed of the simulated world (titles, members, true play probabilities) and of
    /// its traffic. In the default world the launch is the best title in about a third
    /// of the context buckets (seed 42's launch is best in 3 of 60).
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,

    /// Simulated time per real time; 360 plays the day in four minutes. It is a most:
    /// when the machine cannot keep up, the day takes longer.
    #[arg(long, default_value_t = 360.0, value_parser = parse_speed)]
    pub(crate) speed: f64,

    /// Members of the simulated world.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub(crate) members: u64,

    /// Homepage visits per simulated minute (each a billboard decision; a quarter as
    /// many rows of six artwork decisions come with them).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=5_000))]
    pub(crate) traffic: u32,

    /// Start a new episode: delete the demo's directory (its database, event log,
    /// archive and saved state) first.
    #[arg(long)]
    pub(crate) fresh: bool,
}

fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(speed) if speed.is_finite() && speed > 0.0 => Ok(speed),
        _ => Err(format!("{text:?} is not a positive number")),
    }
}

/// Mirrors the demo's configuration: its own SQLite file and log under `dir`.
fn demo_config(config: &Config, dir: &Path) -> Config {
    let mut config = config.clone();
    config.embedded.sqlite_path = dir.join("nearline.db").to_string_lossy().into_owned();
    config.embedded.data_dir = dir.join("log").to_string_lossy().into_owned();
    config
}

/// Picks the episode: the saved one, unless `--fresh`, or it no longer fits ingest's
/// event-time window; else a new one playing yesterday (UTC).
fn episode(args: &DemoArgs, config: &Config, dir: &Path, printer: &Printer) -> anyhow::Result<State> {
    let now = chrono_now_ms();
    let oldest = now - config.ingest.max_event_age.as_millis() as i64 + HOUR_MS;
    if !args.fresh
        && let Some(state) = State::load(dir)?
    {
        let next = state.start_ms + state.minute * 60_000;
        if state.reconciled.is_some() || next >= oldest {
            if state.seed != args.seed
                || state.traffic != args.traffic
                || state.members != args.members as usize
            {
                printer.say(&format!(
                    "continuing the saved episode (seed {}, {} members, traffic {}); --fresh starts a new one",
                    state.seed, state.members, state.traffic
                ));
            }
            return Ok(state);
        }
        printer.say(&format!(
            "the saved episode of {} is older than ingest accepts (ingest.max_event_age); starting a new one",
            demo::clock(state.start_ms)
        ));
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing the old demo in {}", dir.display()))?;
    }
    let yesterday = now.div_euclid(DAY_MS) * DAY_MS - DAY_MS;
    Ok(State::new(args.seed, args.members as usize, args.traffic, yesterday))
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Waits until each of `urls` answers `/readyz` with 200.
async fn ready(urls: &[&str], stop: &CancellationToken) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for url in urls {
        for attempt in 0.. {
            if stop.is_cancelled() {
                return Ok(());
            }
            match client.get(format!("{url}/readyz")).send().await {
                Ok(response) if response.status().is_success() => break,
                _ if attempt > 600 => bail!("{url} did not become ready within a minute"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(())
}

/// Cancels `stop` on the first Ctrl-C or SIGTERM, or when the services stop.
fn stop_on_signals(services: &Shutdown) -> anyhow::Result<CancellationToken> {
    let stop = CancellationToken::new();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing signal handlers")?;
    let (token, services) = (stop.clone(), services.token());
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = sigterm.recv() => {}
            () = services.cancelled() => {}
        }
        token.cancel();
    });
    Ok(stop)
}

/// Runs the demo until Ctrl-C.
pub(crate) async fn demo(args: DemoArgs, config: Arc<Config>) -> anyhow::Result<()> {
    let printer = Arc::new(Printer::new());
    let dir = config.embedded.log_dir().join("demo");
    let mut state = episode(&args, &config, &dir, &printer)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let config = Arc::new(demo_config(&config, &dir));
    let services = Shutdown::new();
    let stop = stop_on_signals(&services)?;
    let suite = Suite::start(config.clone(), true, &ALL, services.clone()).await?;
    let url = |service: ServiceName| {
        let (_, http, _) =
            suite.addresses.iter().find(|(s, _, _)| *s == service).expect("every service runs");
        format!("http://{http}")
    };
    let story = Story::new(state.seed, state.members);
    let launched = story.launched().video_id;
    let insights = url(ServiceName::Insights);
    // The dashboard first: it is what the demo is for.
    printer.say(&format!("nearline demo: open {insights}/dashboard/billboard"));
    printer.say(&format!("  (insights: {insights}/dashboard?video_id={launched})"));
    let mut addresses = Vec::new();
    suite.print_addresses(&mut addresses)?;
    printer.say(String::from_utf8_lossy(&addresses).trim_end());
    printer.say(&format!("data: {}", dir.display()));

    let result = drive(&args, &config, &dir, &suite, &mut state, story, &printer, &stop, &url).await;
    printer.finish();
    services.trigger();
    let stopped = suite.wait().await;
    result.and(stopped)
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    args: &DemoArgs,
    config: &Config,
    dir: &Path,
    suite: &Suite,
    state: &mut State,
    story: Story,
    printer: &Arc<Printer>,
    stop: &CancellationToken,
    url: &dyn Fn(ServiceName) -> String,
) -> anyhow::Result<()> {
    let token = config.auth.tokens.first().map(|t| t.expose().to_string());
    let client =
        Client::new(url(ServiceName::Ingest), url(ServiceName::Insights), url(ServiceName::Billboard), token);
    ready(&[&client.ingest, &client.insights, &client.billboard, &url(ServiceName::Attribution)], stop)
        .await?;
    let schedule = story.schedule();
    if state.minute == 0 {
        printer.say(&format!(
            "the story of {} (UTC), at {}× real time:",
            &demo::clock(state.start_ms)[..10],
            args.speed
        ));
        for (at, line) in &schedule {
            printer.say(&format!("  {}  {line}", demo::of_day(*at)));
        }
    } else if state.reconciled.is_none() {
        printer
            .say(&format!("continuing the day at {}", demo::clock(state.start_ms + state.minute * 60_000)));
    }
    let live = Arc::new(Live::default());
    let status_stop = stop.child_token();
    let status = tokio::spawn(demo::run::status(
        printer.clone(),
        client.clone(),
        live.clone(),
        state.start_ms,
        schedule,
        status_stop.clone(),
    ));
    let archive_dir = Archive::dir(dir);
    let mut driver = Driver {
        story,
        client: client.clone(),
        state: state.clone(),
        dir: dir.to_path_buf(),
        archive: Archive::open(&archive_dir)?,
        speed: args.speed,
        live,
    };
    let say = |line: String| printer.say(&line);
    let driven = driver.run(stop, &say).await;
    *state = driver.state.clone();
    driven?;
    if !stop.is_cancelled() && state.reconciled.is_none() {
        let verdict = end_of_episode(config, suite, state, &client, &archive_dir, printer, stop).await?;
        if let Some(verdict) = verdict {
            state.reconciled = Some(verdict);
            state.save(dir)?;
        }
    }
    if let Some(verdict) = &state.reconciled {
        // Nothing moves any more: the last status line stays as it is.
        status_stop.cancel();
        printer.finish();
        printer.say(&format!("episode complete: {verdict}"));
        printer.say("the dashboards stay up; Ctrl-C stops (`nearline demo --fresh` plays a new day)");
    }
    stop.cancelled().await;
    status_stop.cancel();
    let _ = status.await;
    Ok(())
}

/// Waits until the stream has settled the day up to `complete_until`, then compares
/// the stored counts with the batch recount of the archive over the settled range.
async fn end_of_episode(
    config: &Config,
    suite: &Suite,
    state: &State,
    client: &Client,
    archive: &Path,
    printer: &Printer,
    stop: &CancellationToken,
) -> anyhow::Result<Option<String>> {
    let epoch = config.attribution.epoch_len.as_millis() as i64;
    // The last events are at the end of the day; everything up to a lateness before
    // them is settled once attribution has read them.
    let lateness = config.attribution.allowed_lateness.as_millis() as i64;
    let target = (state.start_ms + DAY_MS - lateness - epoch).div_euclid(epoch) * epoch;
    let (from, to) = (demo::rfc3339(state.start_ms), demo::rfc3339(state.start_ms + DAY_MS));
    let until = loop {
        let top =
            client.get(format!("{}/v1/titles/top?from={from}&to={to}&limit=1", client.insights)).await?;
        let complete = top["complete_until"].as_str().and_then(|t| humantime::parse_rfc3339_weak(t).ok());
        let complete_ms =
            complete.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64);
        if let Some(ms) = complete_ms.filter(|ms| *ms >= target) {
            break ms.div_euclid(epoch) * epoch;
        }
        tokio::select! {
            () = stop.cancelled() => return Ok(None),
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    };
    printer.say(&format!(
        "reconciling {} .. {} (complete until) against a batch recount of {}",
        demo::clock(state.start_ms),
        demo::clock(until),
        archive.join("events.ndjson").display()
    ));
    let differences =
        demo::differences(config, suite.database.clone(), archive.to_path_buf(), state.start_ms, until)
            .await?;
    let verdict = if differences.is_empty() {
        format!(
            "0 differences: every cell from {} to {} equals the batch recount, {}'s plays held back four hours included",
            demo::hhmm(state.start_ms),
            demo::hhmm(until),
            demo::DELAYED_REGION
        )
    } else {
        format!("{} cell(s) differ from the batch recount", differences.len())
    };
    Ok(Some(verdict))
}
