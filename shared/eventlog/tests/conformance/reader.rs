//! Scenarios for group-less readers, each written once against `Arc<dyn EventLog>`.
//!
//! As in the group scenarios, absence is shown by order rather than by waiting: a
//! partition delivers in offset order, so when a record published later arrives first,
//! an earlier one that was skipped will not come.

use std::collections::BTreeMap;
use std::sync::Arc;

use nearline_eventlog::{Error, EventLog, Reader, Record, TopicPartition, partition_for_key};

use crate::scenarios::{DEADLINE, POLL, create_topic, outgoing, publish};

async fn reader(log: &dyn EventLog) -> Box<dyn Reader> {
    log.reader().await.unwrap_or_else(|e| panic!("creating a reader: {e}"))
}

async fn assign(reader: &mut dyn Reader, tp: &TopicPartition, offset: i64) {
    reader.assign(tp, offset).await.unwrap_or_else(|e| panic!("assigning {tp:?} at {offset}: {e}"));
}

/// Polls until `n` records arrived; returns them in the order they came.
async fn read(reader: &mut dyn Reader, n: usize, what: &str) -> Vec<Record> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut records = Vec::new();
    while records.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: timed out after {DEADLINE:?} with {} of {n} records",
            records.len()
        );
        if let Some(record) = reader.poll(POLL).await.unwrap_or_else(|e| panic!("{what}: poll failed: {e}")) {
            records.push(record);
        }
    }
    records
}

fn offsets(records: &[Record]) -> Vec<i64> {
    records.iter().map(|r| r.offset).collect()
}

/// `n` distinct keys that land on `partition` of a topic with `partitions` partitions.
fn keys_on(prefix: &str, partitions: i32, partition: i32, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|key| partition_for_key(key.as_bytes(), partitions) == partition)
        .take(n)
        .collect()
}

/// Publishes one record per key, all on one partition, and returns their offsets.
async fn publish_keys(log: &dyn EventLog, topic: &str, keys: &[String]) -> Vec<i64> {
    let records = keys.iter().map(|k| outgoing(topic, k, None)).collect();
    publish(log, records).await.into_iter().map(|(_, _, offset)| offset).collect()
}

pub(crate) async fn reader_from_a_middle_offset_reads_the_rest_in_order(log: Arc<dyn EventLog>) {
    let topic = create_topic(&*log, "reader_middle", 1).await;
    let tp = TopicPartition::new(topic.clone(), 0);
    let records = (0..10).map(|i| outgoing(&topic, &format!("k{i}"), None)).collect();
    let published = publish(&*log, records).await;

    let mut reader = reader(&*log).await;
    assert!(reader.assignment().is_empty(), "a new reader reads nothing");
    assign(&mut *reader, &tp, 4).await;
    assert_eq!(reader.assignment(), vec![tp.clone()]);
    let got = read(&mut *reader, 6, "from offset 4").await;
    assert_eq!(offsets(&got), (4..10).collect::<Vec<_>>(), "records from offset 4, in order");
    for (record, (sent, _, offset)) in got.iter().zip(&published[4..]) {
        assert_eq!(record.offset, *offset);
        assert_eq!((&record.topic, record.partition), (&topic, 0));
        assert_eq!(record.key, sent.key, "key at offset {offset}");
        assert_eq!(record.payload, sent.payload, "payload at offset {offset}");
    }
    // Nothing else was in between: the next record is the one published next.
    publish(&*log, vec![outgoing(&topic, "k10", None)]).await;
    assert_eq!(offsets(&read(&mut *reader, 1, "after publishing one more").await), [10]);

    let missing = TopicPartition::new(create_topic(&*log, "reader_other", 1).await, 0);
    reader.unassign(&missing).await.expect("unassigning a partition that is not assigned does nothing");
    let unknown = TopicPartition::new(nearline_testkit::unique_name("missing"), 0);
    match reader.assign(&unknown, 0).await {
        Err(Error::UnknownTopic(topic)) => assert_eq!(topic, unknown.topic),
        other => panic!("assigning a partition of a missing topic: expected UnknownTopic, got {other:?}"),
    }
    assert_eq!(reader.assignment(), vec![tp], "a failed assign changes nothing");
}

pub(crate) async fn reader_reads_every_record_of_two_partitions(log: Arc<dyn EventLog>) {
    let partitions = 2;
    let topic = create_topic(&*log, "reader_two", partitions).await;
    let mut keys = keys_on("zero", partitions, 0, 12);
    keys.extend(keys_on("one", partitions, 1, 9));
    let published = publish(&*log, keys.iter().map(|k| outgoing(&topic, k, None)).collect()).await;

    let mut reader = reader(&*log).await;
    for partition in 0..partitions {
        assign(&mut *reader, &TopicPartition::new(topic.clone(), partition), 0).await;
    }
    let got = read(&mut *reader, published.len(), "both partitions").await;
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for record in &got {
        by_partition.entry(record.partition).or_default().push(record.offset);
        let (sent, _, _) = published
            .iter()
            .find(|(_, p, o)| (*p, *o) == (record.partition, record.offset))
            .unwrap_or_else(|| panic!("unexpected record {}@{}", record.partition, record.offset));
        assert_eq!(record.key, sent.key, "key at {}@{}", record.partition, record.offset);
    }
    assert_eq!(
        by_partition,
        BTreeMap::from([(0, (0..12).collect()), (1, (0..9).collect())]),
        "every record of both partitions, each once, in offset order per partition"
    );
}

pub(crate) async fn reader_unassign_stops_one_partition_and_the_other_goes_on(log: Arc<dyn EventLog>) {
    let partitions = 2;
    let topic = create_topic(&*log, "reader_unassign", partitions).await;
    let (zero, one) = (TopicPartition::new(topic.clone(), 0), TopicPartition::new(topic.clone(), 1));
    let zero_keys = keys_on("zero", partitions, 0, 40);
    let one_keys = keys_on("one", partitions, 1, 40);
    publish_keys(&*log, &topic, &zero_keys[..30]).await;
    publish_keys(&*log, &topic, &one_keys[..30]).await;

    let mut reader = reader(&*log).await;
    assign(&mut *reader, &zero, 0).await;
    assign(&mut *reader, &one, 0).await;
    // Stop partition 0 part-way, while the rest of it may already be fetched.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut before: Vec<Record> = Vec::new();
    while before.iter().filter(|r| r.partition == 0).count() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "three records of partition 0 within {DEADLINE:?}");
        before.extend(reader.poll(POLL).await.expect("poll"));
    }
    reader.unassign(&zero).await.expect("unassign partition 0");
    assert_eq!(reader.assignment(), vec![one.clone()]);

    publish_keys(&*log, &topic, &zero_keys[30..]).await;
    publish_keys(&*log, &topic, &one_keys[30..]).await;
    let one_before = before.iter().filter(|r| r.partition == 1).count();
    let after = read(&mut *reader, 40 - one_before, "the rest of partition 1").await;
    let zero_after: Vec<i64> = after.iter().filter(|r| r.partition == 0).map(|r| r.offset).collect();
    assert!(zero_after.is_empty(), "partition 0 delivered {zero_after:?} after it was unassigned");
    let one_offsets: Vec<i64> =
        before.iter().chain(&after).filter(|r| r.partition == 1).map(|r| r.offset).collect();
    assert_eq!(one_offsets, (0..40).collect::<Vec<_>>(), "partition 1 went on, complete and in order");

    // Whatever of partition 0 was still on its way would come before a record published
    // after it; resuming at the high watermark shows none of it arrives.
    let (_, high) = log.watermarks(&zero).await.expect("watermarks");
    assign(&mut *reader, &zero, high).await;
    let marker = keys_on("marker", partitions, 0, 1);
    publish_keys(&*log, &topic, &marker).await;
    let next = read(&mut *reader, 1, "the record published after resuming partition 0").await;
    assert_eq!(
        (next[0].partition, next[0].offset),
        (0, high),
        "the first record after resuming at the high watermark is the one published after it"
    );
}

pub(crate) async fn reader_reassign_at_an_earlier_offset_replays(log: Arc<dyn EventLog>) {
    let topic = create_topic(&*log, "reader_replay", 1).await;
    let tp = TopicPartition::new(topic.clone(), 0);
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    publish_keys(&*log, &topic, &keys).await;

    let mut reader = reader(&*log).await;
    assign(&mut *reader, &tp, 0).await;
    let first = read(&mut *reader, 5, "first pass").await;
    assert_eq!(offsets(&first), (0..5).collect::<Vec<_>>());

    // The rest of the first pass may already be fetched; none of it may come first.
    assign(&mut *reader, &tp, 2).await;
    assert_eq!(reader.assignment(), vec![tp.clone()], "re-assigning keeps one assignment");
    let replay = read(&mut *reader, 8, "replay").await;
    assert_eq!(offsets(&replay), (2..10).collect::<Vec<_>>(), "replays from offset 2, in order");
    for (before, again) in first[2..].iter().zip(&replay) {
        assert_eq!(before, again, "replayed record differs");
    }
    publish_keys(&*log, &topic, &["k10".to_owned()]).await;
    assert_eq!(offsets(&read(&mut *reader, 1, "after the replay").await), [10], "no duplicates");
}

pub(crate) async fn reader_offsets_are_clamped_to_the_retained_range(log: Arc<dyn EventLog>) {
    let topic = create_topic(&*log, "reader_clamp", 1).await;
    let tp = TopicPartition::new(topic.clone(), 0);
    let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
    publish_keys(&*log, &topic, &keys[..3]).await;

    // At the high watermark: waits for the next record.
    let mut reader = reader(&*log).await;
    assign(&mut *reader, &tp, 3).await;
    publish_keys(&*log, &topic, &keys[3..4]).await;
    let got = read(&mut *reader, 1, "record published after assigning at the high watermark").await;
    assert_eq!((got[0].offset, got[0].key.as_ref()), (3, keys[3].as_bytes()));

    // Before the low watermark: reads from the low watermark.
    assign(&mut *reader, &tp, -5).await;
    assert_eq!(offsets(&read(&mut *reader, 4, "from before the start").await), [0, 1, 2, 3]);

    // Past the high watermark: reads from the high watermark.
    assign(&mut *reader, &tp, 1000).await;
    publish_keys(&*log, &topic, &keys[4..]).await;
    assert_eq!(offsets(&read(&mut *reader, 1, "from past the end").await), [4]);
}
