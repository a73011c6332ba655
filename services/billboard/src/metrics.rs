//! The service's metrics: names, units and descriptions in one place; labels from
//! bounded sets (policy names, booleans, result kinds), never ids.

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

/// Registers every metric's description once.
pub(crate) fn describe() {
    describe_counter!(
        "nearline_billboard_decisions_total",
        "Decisions served, by policy, endpoint and explored."
    );
    describe_histogram!(
        "nearline_billboard_decision_seconds",
        Unit::Seconds,
        "Time to compute one billboard or artwork response in the server, by endpoint."
    );
    describe_counter!("nearline_billboard_rejected_total", "Requests refused, by reason.");
    describe_counter!(
        "nearline_billboard_outcomes_total",
        "Outcomes read from the log, by result (applied, duplicate, skipped = not a billboard outcome or undecodable)."
    );
    describe_gauge!("nearline_billboard_model_version", "Version of the model decisions are served from.");
    describe_gauge!(
        "nearline_billboard_learning_lag_seconds",
        Unit::Seconds,
        "Now minus the event time of the newest outcome applied to the model."
    );
    describe_gauge!(
        "nearline_billboard_learner_leader",
        "1 while this instance holds the learner's lease and learns, 0 while it serves from saved statistics."
    );
    describe_gauge!("nearline_billboard_arms", "(title, artwork) pairs with statistics.");
    describe_gauge!("nearline_billboard_cells", "(arm, context cell) counters held.");
}

pub(crate) fn decision(endpoint: &'static str, policy: &'static str, explored: bool) {
    counter!("nearline_billboard_decisions_total", "endpoint" => endpoint, "policy" => policy, "explored" => if explored { "true" } else { "false" }).increment(1);
}

pub(crate) fn latency(endpoint: &'static str, elapsed: Duration) {
    histogram!("nearline_billboard_decision_seconds", "endpoint" => endpoint).record(elapsed.as_secs_f64());
}

pub(crate) fn rejected(reason: &'static str) {
    counter!("nearline_billboard_rejected_total", "reason" => reason).increment(1);
}

pub(crate) fn outcomes(result: &'static str, n: u64) {
    counter!("nearline_billboard_outcomes_total", "result" => result).increment(n);
}

pub(crate) fn model(version: u64, arms: usize, cells: usize, last_event_ms: i64) {
    gauge!("nearline_billboard_model_version").set(version as f64);
    gauge!("nearline_billboard_arms").set(arms as f64);
    gauge!("nearline_billboard_cells").set(cells as f64);
    if last_event_ms > 0 {
        let lag = (chrono::Utc::now().timestamp_millis() - last_event_ms).max(0);
        gauge!("nearline_billboard_learning_lag_seconds").set(lag as f64 / 1000.0);
    }
}

pub(crate) fn leader(holds: bool) {
    gauge!("nearline_billboard_learner_leader").set(if holds { 1.0 } else { 0.0 });
}
