//! Offsets for times, made to answer "none" the same way on every broker.
//!
//! Kafka answers a ListOffsets-by-timestamp with offset -1 when no record is that
//! recent. tansu 0.6 (the test broker) answers offset 0 instead, with no timestamp,
//! which librdkafka passes on as a plain offset 0 — indistinguishable from "the first
//! record qualifies". So an answer at or below the low watermark is checked by
//! reading that record's timestamp; every other answer is taken as it is. The extra
//! read happens only for queries at or before the start of the partition.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::Offset;

use super::{
    TracingContext, client_error, fetch_watermarks, map_error, map_topic_error, offset_value, single_offset,
    single_partition,
};
use crate::{Error, Result, TopicPartition};

/// Earliest offset of `tp` whose record timestamp is at or after `timestamp_ms`.
/// Blocks; `probe` configures the consumer that reads a record when the answer needs
/// checking (it must carry a `group.id`, which librdkafka requires for `assign`, and
/// must not commit).
pub(super) fn offset_for_time(
    meta: &BaseConsumer<TracingContext>,
    probe: &ClientConfig,
    tp: &TopicPartition,
    timestamp_ms: i64,
    timeout: Duration,
) -> Result<Option<i64>> {
    let what = format!("offset for time {timestamp_ms} of {}/{}", tp.topic, tp.partition);
    // The offset field of the request carries the timestamp.
    let query = single_partition(tp, Offset::Offset(timestamp_ms))?;
    let answer = meta.offsets_for_times(query, timeout).map_err(|e| map_topic_error(&tp.topic, &what, &e))?;
    // Kafka's -1 arrives as `Offset::End`, which `offset_value` maps to `None`.
    let Some(offset) = offset_value(single_offset(tp, &what, &answer)?) else {
        return Ok(None);
    };
    let (low, high) = fetch_watermarks(meta, tp, timeout)?;
    if offset >= high {
        return Ok(None);
    }
    if offset > low {
        return Ok(Some(offset));
    }
    match first_timestamp(probe, tp, low, timeout)? {
        Some(first) if first >= timestamp_ms => Ok(Some(low)),
        _ => Ok(None),
    }
}

/// Timestamp of the first record of `tp` at or after `offset`.
fn first_timestamp(
    config: &ClientConfig,
    tp: &TopicPartition,
    offset: i64,
    timeout: Duration,
) -> Result<Option<i64>> {
    let what = format!("reading {}/{} at offset {offset}", tp.topic, tp.partition);
    let probe: BaseConsumer<TracingContext> =
        config.create_with_context(TracingContext).map_err(|e| client_error("offset probe", e))?;
    // A static assignment: the probe reads without joining any group.
    probe.assign(&single_partition(tp, Offset::Offset(offset))?).map_err(|e| map_error(&what, &e))?;
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Unavailable(format!("{what}: no record within {timeout:?}")));
        }
        match probe.poll(remaining) {
            Some(Ok(message)) if message.topic() == tp.topic && message.partition() == tp.partition => {
                return Ok(message.timestamp().to_millis());
            }
            Some(Ok(_)) | None => {}
            Some(Err(error)) => {
                tracing::debug!(%what, %error, "offset probe error, retrying until the deadline")
            }
        }
    }
}
