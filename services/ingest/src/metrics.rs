//! The ingest service's metrics, all prefixed `nearline_ingest_`, with label values from
//! small fixed sets (event type, rejection reason), never ids.

use std::sync::Once;
use std::time::Duration;

use metrics::Unit;

/// Accepted events, by `type`.
const ACCEPTED: &str = "nearline_ingest_events_accepted_total";
/// Rejected events, by `type` and `reason`.
const REJECTED: &str = "nearline_ingest_events_rejected_total";
/// Rejected requests, by `reason` (also those whose events could not be counted).
const REQUESTS_REJECTED: &str = "nearline_ingest_requests_rejected_total";
/// Time from handing a batch to the log to its last acknowledgement.
const PUBLISH_SECONDS: &str = "nearline_ingest_publish_duration_seconds";
/// Events waiting for acknowledgement.
const IN_FLIGHT: &str = "nearline_ingest_in_flight_events";

/// Registers descriptions and units; idempotent.
pub(crate) fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        metrics::describe_counter!(ACCEPTED, Unit::Count, "Events acknowledged by the event log, by type.");
        metrics::describe_counter!(
            REJECTED,
            Unit::Count,
            "Events refused, by type and reason (invalid, invalid_batch, too_large, overloaded, unavailable, error)."
        );
        metrics::describe_counter!(
            REQUESTS_REJECTED,
            Unit::Count,
            "Publish requests refused, by reason (malformed, invalid, too_large, unsupported_media_type, overloaded, unavailable, error)."
        );
        metrics::describe_histogram!(
            PUBLISH_SECONDS,
            Unit::Seconds,
            "Time from handing a batch to the event log until it acknowledged every event."
        );
        metrics::describe_gauge!(IN_FLIGHT, Unit::Count, "Events handed to the event log and not yet acknowledged.");
    });
}

/// Label value of an event type.
pub(crate) fn type_label(event: &nearline_proto::events::v1::Event) -> &'static str {
    use nearline_proto::events::v1::event::Kind;
    match event.kind {
        Some(Kind::Impression(_)) => "impression",
        Some(Kind::Play(_)) => "play",
        None => "unknown",
    }
}

/// Counts `n` accepted events of `kind`.
pub(crate) fn accepted(kind: &'static str, n: usize) {
    metrics::counter!(ACCEPTED, "type" => kind).increment(n as u64);
}

/// Counts `n` rejected events of `kind` for `reason`.
pub(crate) fn rejected(kind: &'static str, reason: &'static str, n: usize) {
    metrics::counter!(REJECTED, "type" => kind, "reason" => reason).increment(n as u64);
}

/// Counts one rejected request.
pub(crate) fn request_rejected(reason: &'static str) {
    metrics::counter!(REQUESTS_REJECTED, "reason" => reason).increment(1);
}

/// Records how long a publish took.
pub(crate) fn publish_latency(elapsed: Duration) {
    metrics::histogram!(PUBLISH_SECONDS).record(elapsed.as_secs_f64());
}

/// Sets the in-flight gauge.
pub(crate) fn in_flight(events: usize) {
    metrics::gauge!(IN_FLIGHT).set(events as f64);
}
