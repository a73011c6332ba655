//! Reading a bounded input for a batch: the topics up to their current end.

use std::collections::HashMap;
use std::time::Duration;

use nearline_eventlog::{EventLog, TopicPartition};

use super::Range;
use crate::join::{Input, JoinConfig, Source};
use crate::topics::SourceTopic;
use crate::topics::Topics;
use crate::wire;
use crate::{Error, Result};

/// Reads every record of the impressions and plays topics, the mirrored regions'
/// included, that exists when the call starts, keeping the inputs `range` needs. The
/// inputs are the union of all sources, as one local input: a batch sorts them by
/// event time, so no source's watermark is needed to judge lateness. `progress(read, total)` is called as records
/// arrive. Undecodable records are skipped and counted in the second return value.
pub async fn from_log(
    log: &dyn EventLog,
    topics: &Topics,
    range: Range,
    config: &JoinConfig,
    mut progress: impl FnMut(u64, u64),
) -> Result<(Vec<Input>, u64)> {
    let mut reader = log.reader().await?;
    // Where each partition ends now; records published later belong to the stream.
    let mut ends: HashMap<TopicPartition, (Source, i64)> = HashMap::new();
    let mut total = 0u64;
    for SourceTopic { name: topic, kind: source, .. } in topics.sources() {
        for partition in 0..log.partition_count(&topic).await? {
            let tp = TopicPartition::new(topic.clone(), partition);
            let (low, high) = log.watermarks(&tp).await?;
            if high > low {
                total += (high - low) as u64;
                reader.assign(&tp, low).await?;
                ends.insert(tp, (source, high));
            }
        }
    }
    let (mut inputs, mut read, mut undecodable) = (Vec::new(), 0u64, 0u64);
    progress(0, total);
    while !ends.is_empty() {
        let Some(record) = reader.poll(Duration::from_secs(10)).await? else {
            return Err(Error::Worker(format!(
                "no record arrived for 10 s with {} partition(s) not read to their end",
                ends.len()
            )));
        };
        let tp = record.topic_partition();
        let Some(&(source, end)) = ends.get(&tp) else { continue };
        read += 1;
        match wire::input(&record, source) {
            Ok(input) if range.wants(config, input.event.event_time_ms()) => inputs.push(input),
            Ok(_) => {}
            Err(error) => {
                undecodable += 1;
                tracing::warn!(%error, "skipping undecodable record");
            }
        }
        if record.offset + 1 >= end {
            ends.remove(&tp);
            reader.unassign(&tp).await?;
        }
        if read % 10_000 == 0 {
            progress(read, total);
        }
    }
    progress(read, total);
    Ok((inputs, undecodable))
}
