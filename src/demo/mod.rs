//! `nearline demo`: the embedded suite plus a driver that runs billboard's simulated
//! world through the public APIs, in simulated time.
//!
//! # Simulated time
//!
//! Every event time is a simulated time, and simulated time is event time: the day the
//! demo plays is *yesterday* (UTC), from midnight to midnight, run at `--speed` × real
//! time. Choosing the past day is what keeps the whole system coherent without a fake
//! clock anywhere:
//!
//! - ingest checks event times against the wall clock (at most `ingest.max_event_age`
//!   old, at most `ingest.max_future_skew` ahead): yesterday is always inside, and the
//!   simulated clock can never overtake the real one, however fast it runs;
//! - watermarks, `complete_until` (the smallest watermark minus
//!   `attribution.allowed_lateness`) and the epochs are pure event time, so they follow
//!   the simulated clock: six simulated hours behind it, which at the default speed is
//!   a minute of real time;
//! - insights' "now" is the wall clock, which is always after every simulated event: a
//!   dashboard range ending now, or a launch's first 24 hours, contains the simulated
//!   day, and what has not been simulated yet is simply empty, so the launch's early
//!   read fills in hour by hour next to its comparables (launched at midnight);
//! - billboard's learning lag is measured in event time (the newest event attribution
//!   read, minus the newest outcome learned from), so it reads in simulated minutes too.
//!
//! A rerun continues the saved episode as long as its next minute is still inside
//! ingest's window; otherwise (a week later), or with `--fresh`, a new episode starts.
//! The demo keeps everything under `<embedded.data_dir>/demo/`: its SQLite file, event
//! log, the archive of every event sent (`archive/events.ndjson`) and `state.json`.

mod archive;
mod client;
mod driver;
mod recount;
mod state;
mod status;
mod story;

pub(crate) use archive::Archive;
pub(crate) use client::Client;
pub(crate) use driver::{Driver, Live};
pub(crate) use recount::differences;
pub(crate) use state::State;
pub(crate) use status::Printer;
pub(crate) use story::{DAY_MS, DELAYED_REGION, HOUR_MS, Story};

pub(crate) mod run {
    //! The status task.
    pub(crate) use super::status::run as status;
}

/// `2026-11-30 14:23` (UTC) of an absolute time.
pub(crate) fn clock(ms: i64) -> String {
    let text = rfc3339(ms);
    format!("{} {}", &text[..10], &text[11..16])
}

/// `14:23` of an absolute time.
pub(crate) fn hhmm(ms: i64) -> String {
    rfc3339(ms)[11..16].to_string()
}

/// `14:23` of a time relative to the episode's start; its end is `24:00`.
pub(crate) fn of_day(relative_ms: i64) -> String {
    let minutes = relative_ms.div_euclid(60_000);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// RFC 3339 in UTC, whole seconds.
pub(crate) fn rfc3339(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}
