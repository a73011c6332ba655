//! The attribution metrics: events in, facts out, late and expired, batch time against
//! the batch interval, state size and lag per partition (a bounded label set).

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

use crate::join::{Outputs, Source};
use crate::status::PartitionStatus;
use crate::topics::SourceTopic;

/// Registers descriptions; call once at start.
pub fn describe() {
    describe_counter!("nearline_attribution_events_total", Unit::Count, "Events read, by source topic.");
    describe_counter!(
        "nearline_attribution_undecodable_total",
        Unit::Count,
        "Records skipped because they did not decode, by source topic."
    );
    describe_counter!(
        "nearline_attribution_facts_total",
        Unit::Count,
        "Set memberships written, by kind (impression, play = joined, unattributed = expired unjoined)."
    );
    describe_counter!("nearline_attribution_late_total", Unit::Count, "Events too late for the stream.");
    describe_counter!(
        "nearline_attribution_outcomes_total",
        Unit::Count,
        "Bandit outcomes emitted, by played."
    );
    describe_histogram!(
        "nearline_attribution_batch_seconds",
        Unit::Seconds,
        "Time to apply, publish, write and commit one batch."
    );
    describe_gauge!(
        "nearline_attribution_batch_utilisation",
        Unit::Count,
        "Last batch's processing time divided by the batch interval; above 1 the join falls behind."
    );
    describe_gauge!(
        "nearline_attribution_state_entries",
        Unit::Count,
        "Retained join state entries, by partition."
    );
    describe_gauge!(
        "nearline_attribution_state_bytes",
        Unit::Bytes,
        "Approximate join state bytes, by partition."
    );
    describe_gauge!(
        "nearline_attribution_watermark_ms",
        Unit::Milliseconds,
        "Largest event time read, by partition, kind (source: impressions, plays) and region \
         (local, or the mirrored region)."
    );
    describe_gauge!(
        "nearline_attribution_source_watermark_lag_seconds",
        Unit::Seconds,
        "How far a source's watermark is behind the furthest source of its partition, in event \
         time, by partition and source topic: a lagging or stopped mirror shows here (+Inf while \
         the source has shown nothing and another has). While it lags, complete_until waits for it."
    );
    describe_gauge!("nearline_attribution_lag", Unit::Count, "Records not yet processed, by partition.");
    describe_counter!(
        "nearline_attribution_pacing_pauses_total",
        Unit::Count,
        "Times a topic of a partition was paused because it ran ahead of the other in event time, by source."
    );
    describe_counter!(
        "nearline_attribution_catalog_lookups_total",
        Unit::Count,
        "Catalog lookups enriching outcomes, by result (hit, miss = title not in the catalog)."
    );
    describe_gauge!("nearline_attribution_catalog_titles", Unit::Count, "Titles in the cached catalog.");
    describe_counter!(
        "nearline_attribution_catalog_refresh_failures_total",
        Unit::Count,
        "Catalog refreshes that failed (the previous copy stays in use)."
    );
}

fn source_label(source: Source) -> &'static str {
    match source {
        Source::Impressions => "impressions",
        Source::Plays => "plays",
    }
}

pub(crate) fn event_read(source: Source) {
    counter!("nearline_attribution_events_total", "source" => source_label(source)).increment(1);
}

pub(crate) fn undecodable(source: Source) {
    counter!("nearline_attribution_undecodable_total", "source" => source_label(source)).increment(1);
}

pub(crate) fn outputs_written(outputs: &Outputs) {
    counter!("nearline_attribution_facts_total", "kind" => "impression")
        .increment(outputs.impressions.len() as u64);
    counter!("nearline_attribution_facts_total", "kind" => "play").increment(outputs.plays.len() as u64);
    counter!("nearline_attribution_facts_total", "kind" => "unattributed")
        .increment(outputs.unattributed.len() as u64);
    counter!("nearline_attribution_late_total").increment(outputs.late.len() as u64);
    let played = outputs.outcomes.iter().filter(|o| o.played).count() as u64;
    counter!("nearline_attribution_outcomes_total", "played" => "true").increment(played);
    counter!("nearline_attribution_outcomes_total", "played" => "false")
        .increment(outputs.outcomes.len() as u64 - played);
}

pub(crate) fn batch_written(took: Duration, interval: Duration) {
    histogram!("nearline_attribution_batch_seconds").record(took.as_secs_f64());
    gauge!("nearline_attribution_batch_utilisation").set(took.as_secs_f64() / interval.as_secs_f64());
}

/// `sources` names the entries of `status.sources`, in the same order.
pub(crate) fn partition_status(partition: i32, status: &PartitionStatus, sources: &[SourceTopic]) {
    let p = partition.to_string();
    gauge!("nearline_attribution_state_entries", "partition" => p.clone()).set(status.state_entries as f64);
    gauge!("nearline_attribution_state_bytes", "partition" => p.clone()).set(status.state_bytes as f64);
    let furthest = status.sources.iter().filter_map(|s| s.watermark_ms).max();
    for (source, topic) in status.sources.iter().zip(sources) {
        if let Some(wm) = source.watermark_ms {
            let region = topic.region.clone().unwrap_or_else(|| "local".to_owned());
            let labels = [
                ("partition", p.clone()),
                ("source", source_label(topic.kind).to_owned()),
                ("region", region),
            ];
            gauge!("nearline_attribution_watermark_ms", &labels).set(wm as f64);
        }
        let lag = match (furthest, source.watermark_ms) {
            (Some(furthest), Some(wm)) => (furthest - wm) as f64 / 1000.0,
            (Some(_), None) => f64::INFINITY,
            (None, _) => 0.0,
        };
        let labels = [("partition", p.clone()), ("source", topic.name.clone())];
        gauge!("nearline_attribution_source_watermark_lag_seconds", &labels).set(lag);
    }
}

pub(crate) fn lag(partition: i32, lag: i64) {
    gauge!("nearline_attribution_lag", "partition" => partition.to_string()).set(lag as f64);
}

pub(crate) fn forget_partition(partition: i32) {
    let p = partition.to_string();
    for name in ["nearline_attribution_state_entries", "nearline_attribution_state_bytes"] {
        gauge!(name, "partition" => p.clone()).set(0.0);
    }
}

pub(crate) fn catalog_lookup(hit: bool) {
    counter!("nearline_attribution_catalog_lookups_total", "result" => if hit { "hit" } else { "miss" })
        .increment(1);
}

pub(crate) fn catalog_refreshed(titles: usize) {
    gauge!("nearline_attribution_catalog_titles").set(titles as f64);
}

pub(crate) fn catalog_refresh_failed() {
    counter!("nearline_attribution_catalog_refresh_failures_total").increment(1);
}

pub(crate) fn paused(source: Source) {
    counter!("nearline_attribution_pacing_pauses_total", "source" => source_label(source)).increment(1);
}
