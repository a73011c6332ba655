//! The status line: simulated time, events/s, decisions/s, take rate by policy (from
//! billboard's learning history), `complete_until` (from insights) and what comes next
//! in the story. On a terminal it is one line rewritten in place, with the story's
//! announcements printed above it; otherwise (a pipe, a test) a line every few seconds.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::client::Client;
use super::driver::Live;
use super::story::MINUTE_MS;

/// Writes announcements and the status line to stdout without tearing either.
#[derive(Debug)]
pub(crate) struct Printer {
    tty: bool,
    inner: Mutex<(String, Option<Instant>)>,
}

/// How often a non-terminal gets a status line.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl Printer {
    pub(crate) fn new() -> Self {
        Self { tty: std::io::stdout().is_terminal(), inner: Mutex::new((String::new(), None)) }
    }

    /// A line of its own (kept on screen).
    pub(crate) fn say(&self, line: &str) {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\r\x1b[2K{line}\n{}", guard.0);
        } else {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }

    /// Replaces the status line.
    pub(crate) fn status(&self, line: String) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\r\x1b[2K{line}");
        } else if guard.1.is_none_or(|at| at.elapsed() >= PLAIN_EVERY) {
            let _ = writeln!(out, "{line}");
            guard.1 = Some(Instant::now());
        }
        let _ = out.flush();
        guard.0 = line;
    }

    /// Ends the status line, so what follows starts on a new line.
    pub(crate) fn finish(&self) {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if self.tty && !guard.0.is_empty() {
            println!();
        }
    }
}

/// What the status line shows besides the counters, polled from the services.
#[derive(Debug, Default, Clone)]
struct Polled {
    take_rates: Vec<(String, Option<f64>)>,
    complete_until: Option<String>,
    model_version: Option<String>,
}

async fn poll(client: &Client, start_ms: i64) -> Polled {
    let mut polled = Polled::default();
    if let Ok(history) =
        client.get(format!("{}/v1/billboard/history?canvas=billboard", client.billboard)).await
    {
        polled.model_version = history["model_version"].as_str().map(str::to_owned);
        if let Some(totals) = history["totals"].as_array() {
            polled.take_rates = totals
                .iter()
                .map(|t| (t["policy"].as_str().unwrap_or("?").to_string(), t["take_rate"].as_f64()))
                .collect();
        }
    }
    let (from, to) = (super::rfc3339(start_ms), super::rfc3339(start_ms + super::story::DAY_MS));
    let url = format!("{}/v1/titles/top?from={from}&to={to}&limit=1", client.insights);
    if let Ok(top) = client.get(url).await {
        polled.complete_until = top["complete_until"].as_str().map(str::to_owned);
    }
    polled
}

/// Updates the status line every second until `stop`.
pub(crate) async fn run(
    printer: Arc<Printer>,
    client: Client,
    live: Arc<Live>,
    start_ms: i64,
    schedule: Vec<(i64, String)>,
    stop: CancellationToken,
) {
    let mut last =
        (Instant::now(), live.events.load(Ordering::Relaxed), live.decisions.load(Ordering::Relaxed));
    let mut polled = Polled::default();
    let mut tick = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if tick.is_multiple_of(2) {
            polled = poll(&client, start_ms).await;
        }
        tick += 1;
        let (events, decisions) =
            (live.events.load(Ordering::Relaxed), live.decisions.load(Ordering::Relaxed));
        let seconds = last.0.elapsed().as_secs_f64().max(1e-3);
        let rates = ((events - last.1) as f64 / seconds, (decisions - last.2) as f64 / seconds);
        last = (Instant::now(), events, decisions);
        let at = live.minute.load(Ordering::Relaxed) * MINUTE_MS;
        let takes: Vec<String> = polled
            .take_rates
            .iter()
            .map(|(p, r)| format!("{p} {}", r.map_or("–".into(), |r| format!("{:.1}%", r * 100.0))))
            .collect();
        let next = schedule
            .iter()
            .find(|(when, _)| *when > at)
            .map_or(String::new(), |(when, line)| format!(" | next {}: {line}", super::of_day(*when)));
        printer.status(format!(
            "sim {} | {:.0} events/s | {:.0} decisions/s | take rate {} | model v{} | complete until {}{next}",
            super::clock(start_ms + at),
            rates.0,
            rates.1,
            if takes.is_empty() { "–".into() } else { takes.join(", ") },
            polled.model_version.as_deref().unwrap_or("–"),
            polled.complete_until.as_deref().map_or("–".into(), short),
        ));
    }
}

/// `2026-11-30T08:23:00.000Z` as `11-30 08:23`.
fn short(rfc3339: &str) -> String {
    match (rfc3339.get(5..10), rfc3339.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => rfc3339.to_string(),
    }
}
