//! The scenarios, each written once against `Arc<dyn EventLog>`.
//!
//! Waiting is always on a condition (records seen, assignment reached) with a deadline;
//! absence is shown by order instead of by waiting: a partition delivers in offset
//! order, so once records published later have all arrived, an earlier record that was
//! not seen will never be.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use nearline_eventlog::{
    Consumer, ConsumerEvent, Error, EventLog, OutgoingRecord, Record, TopicPartition, TopicSpec,
    partition_for_key,
};
use nearline_testkit::{unique_name, wait_for};

/// How long any one condition may take to come true before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(90);
/// One poll's wait; short so that several consumers can be driven from one task.
pub(crate) const POLL: Duration = Duration::from_millis(100);

pub(crate) async fn create_topic(log: &dyn EventLog, prefix: &str, partitions: i32) -> String {
    let name = unique_name(prefix);
    log.create_topics(&[TopicSpec { name: name.clone(), partitions, replication: 1 }])
        .await
        .unwrap_or_else(|e| panic!("creating topic {name}: {e}"));
    name
}

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis())
        .expect("now fits in i64")
}

/// At least `min` distinct keys starting with `prefix` that together hit every partition.
fn keys_covering(prefix: &str, partitions: i32, min: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut hit = BTreeSet::new();
    for i in 0.. {
        if keys.len() >= min && hit.len() == usize::try_from(partitions).expect("positive") {
            break;
        }
        let key = format!("{prefix}-{i}");
        hit.insert(partition_for_key(key.as_bytes(), partitions));
        keys.push(key);
    }
    keys
}

pub(crate) fn outgoing(topic: &str, key: &str, timestamp_ms: Option<i64>) -> OutgoingRecord {
    OutgoingRecord {
        topic: topic.to_owned(),
        key: Bytes::from(key.to_owned()),
        payload: Bytes::from(format!("payload of {key} on {topic}")),
        timestamp_ms,
    }
}

pub(crate) async fn publish(
    log: &dyn EventLog,
    records: Vec<OutgoingRecord>,
) -> Vec<(OutgoingRecord, i32, i64)> {
    let deliveries = log.publish(records.clone()).await.unwrap_or_else(|e| panic!("publishing: {e}"));
    assert_eq!(deliveries.len(), records.len(), "one delivery per record");
    records.into_iter().zip(deliveries).map(|(r, d)| (r, d.partition, d.offset)).collect()
}

async fn subscribe(log: &dyn EventLog, group: &str, topics: &[&str]) -> Box<dyn Consumer> {
    log.subscribe(group, topics).await.unwrap_or_else(|e| panic!("subscribing {group} to {topics:?}: {e}"))
}

/// Tracks what a consumer has been told, and checks records only come from partitions
/// it was assigned and not revoked since.
#[derive(Default)]
struct Member {
    assigned: BTreeSet<TopicPartition>,
    assigned_events: usize,
    revoked_events: usize,
}

impl Member {
    fn observe(&mut self, event: &ConsumerEvent, who: &str) {
        match event {
            ConsumerEvent::Assigned(tps) => {
                self.assigned_events += 1;
                for tp in tps {
                    assert!(self.assigned.insert(tp.clone()), "{who}: {tp:?} assigned twice");
                }
            }
            ConsumerEvent::Revoked(tps) => {
                self.revoked_events += 1;
                for tp in tps {
                    assert!(self.assigned.remove(tp), "{who}: {tp:?} revoked but not assigned");
                }
            }
            ConsumerEvent::Record(r) => {
                assert!(
                    self.assigned.contains(&r.topic_partition()),
                    "{who}: record {}/{}@{} arrived without an Assigned event for its partition",
                    r.topic,
                    r.partition,
                    r.offset
                );
            }
        }
    }
}

/// Polls until `n` records arrived; returns them. Events are checked on the way.
async fn consume(consumer: &mut dyn Consumer, member: &mut Member, n: usize, who: &str) -> Vec<Record> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut records = Vec::new();
    while records.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{who}: timed out after {DEADLINE:?} with {} of {n} records",
            records.len()
        );
        if let Some(event) = consumer.poll(POLL).await.unwrap_or_else(|e| panic!("{who}: poll failed: {e}")) {
            member.observe(&event, who);
            if let ConsumerEvent::Record(r) = event {
                records.push(r);
            }
        }
    }
    records
}

/// Polls until the consumer has been assigned `expected`, returning records seen meanwhile.
async fn await_assignment(
    consumer: &mut dyn Consumer,
    member: &mut Member,
    expected: &BTreeSet<TopicPartition>,
    who: &str,
) -> Vec<Record> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut records = Vec::new();
    while &member.assigned != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{who}: timed out after {DEADLINE:?} waiting for assignment {expected:?}, have {:?}",
            member.assigned
        );
        if let Some(event) = consumer.poll(POLL).await.unwrap_or_else(|e| panic!("{who}: poll failed: {e}")) {
            member.observe(&event, who);
            if let ConsumerEvent::Record(r) = event {
                records.push(r);
            }
        }
    }
    assert_eq!(consumer.assignment().into_iter().collect::<BTreeSet<_>>(), *expected, "{who}: assignment()");
    records
}

fn all_partitions(topic: &str, partitions: i32) -> BTreeSet<TopicPartition> {
    (0..partitions).map(|p| TopicPartition::new(topic, p)).collect()
}

/// Next offset to read per partition after `records`.
fn next_offsets(records: &[Record]) -> BTreeMap<TopicPartition, i64> {
    let mut next = BTreeMap::new();
    for r in records {
        let entry = next.entry(r.topic_partition()).or_insert(0);
        *entry = (*entry).max(r.offset + 1);
    }
    next
}

pub(crate) async fn consumed_records_are_intact_and_committed_ones_are_not_redelivered(
    log: Arc<dyn EventLog>,
) {
    let partitions = 3;
    let topic = create_topic(&*log, "intact", partitions).await;
    let group = unique_name("intact");
    let timestamp = now_ms() - 60_000;
    let first: Vec<_> =
        keys_covering("first", partitions, 30).iter().map(|k| outgoing(&topic, k, Some(timestamp))).collect();
    let published = publish(&*log, first).await;

    let mut expected_next: HashMap<i32, i64> = HashMap::new();
    for (record, partition, offset) in &published {
        assert_eq!(
            *partition,
            partition_for_key(&record.key, partitions),
            "partition of key {:?}",
            record.key
        );
        let next = expected_next.entry(*partition).or_insert(0);
        assert_eq!(*offset, *next, "offsets of partition {partition} are dense from 0, in publish order");
        *next += 1;
    }

    let mut consumer = subscribe(&*log, &group, &[&topic]).await;
    let mut member = Member::default();
    let records = consume(&mut *consumer, &mut member, published.len(), "first consumer").await;
    let by_position: HashMap<(i32, i64), &OutgoingRecord> =
        published.iter().map(|(r, p, o)| ((*p, *o), r)).collect();
    let mut seen = BTreeSet::new();
    for record in &records {
        assert!(
            seen.insert((record.partition, record.offset)),
            "record {}@{} delivered twice",
            record.partition,
            record.offset
        );
        let sent = by_position
            .get(&(record.partition, record.offset))
            .unwrap_or_else(|| panic!("unexpected record at {}@{}", record.partition, record.offset));
        assert_eq!(record.topic, topic);
        assert_eq!(record.key, sent.key, "key at {}@{}", record.partition, record.offset);
        assert_eq!(record.payload, sent.payload, "payload at {}@{}", record.partition, record.offset);
        assert_eq!(record.timestamp_ms, timestamp, "timestamp at {}@{}", record.partition, record.offset);
        assert_eq!(record.partition, partition_for_key(&record.key, partitions));
    }

    let offsets: Vec<(TopicPartition, i64)> = next_offsets(&records).into_iter().collect();
    consumer.commit(&offsets).await.expect("commit of consumed records");
    for (tp, offset) in &offsets {
        let committed = log.committed_offset(&group, tp).await.expect("committed offset");
        assert_eq!(committed, Some(*offset), "committed offset of {tp:?} right after commit returned");
    }
    consumer.close().await.expect("close");

    // A new member of the group starts from the commits. Publish more on every
    // partition; once all of it has arrived, nothing earlier can still come.
    let mut consumer = subscribe(&*log, &group, &[&topic]).await;
    let mut member = Member::default();
    await_assignment(&mut *consumer, &mut member, &all_partitions(&topic, partitions), "second consumer")
        .await;
    let second: Vec<_> =
        keys_covering("second", partitions, 9).iter().map(|k| outgoing(&topic, k, None)).collect();
    let published_second = publish(&*log, second).await;
    let records = consume(&mut *consumer, &mut member, published_second.len(), "second consumer").await;
    let expected: BTreeSet<(i32, i64)> = published_second.iter().map(|(_, p, o)| (*p, *o)).collect();
    let got: BTreeSet<(i32, i64)> = records.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(got, expected, "only the records published after the commit arrive, each once");
    assert_eq!(records.len(), expected.len(), "no duplicates");
    consumer.close().await.expect("close");
}

pub(crate) async fn equal_keys_are_co_partitioned_across_topics(log: Arc<dyn EventLog>) {
    let partitions = 6;
    let impressions = create_topic(&*log, "impressions", partitions).await;
    let plays = create_topic(&*log, "plays", partitions).await;
    let keys = keys_covering("request", partitions, 50);
    let records: Vec<_> =
        keys.iter().flat_map(|k| [outgoing(&impressions, k, None), outgoing(&plays, k, None)]).collect();
    let published = publish(&*log, records).await;
    for pair in published.chunks(2) {
        let [(impression, on_impressions, _), (play, on_plays, _)] = pair else { unreachable!("pairs") };
        assert_eq!(impression.key, play.key);
        assert_eq!(
            on_impressions, on_plays,
            "key {:?} on different partitions of the two topics",
            impression.key
        );
        assert_eq!(
            *on_impressions,
            partition_for_key(&impression.key, partitions),
            "murmur2 partition of {:?}",
            impression.key
        );
    }
}

pub(crate) async fn two_members_split_partitions_and_consume_each_record_once(log: Arc<dyn EventLog>) {
    let partitions = 4;
    let topic = create_topic(&*log, "split", partitions).await;
    let group = unique_name("split");
    let first: Vec<_> =
        keys_covering("first", partitions, 40).iter().map(|k| outgoing(&topic, k, None)).collect();
    let total_first = publish(&*log, first).await.len();

    // Every record is committed right after it is received (see `step`).
    let mut committed: BTreeMap<(i32, i64), &'static str> = BTreeMap::new();
    let mut first_consumer = subscribe(&*log, &group, &[&topic]).await;
    let mut first_member = Member::default();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while committed.len() < 10 {
        assert!(tokio::time::Instant::now() < deadline, "first consumer committed only {}", committed.len());
        step("first", &mut *first_consumer, &mut first_member, &mut committed).await;
    }

    let mut second_consumer = subscribe(&*log, &group, &[&topic]).await;
    let mut second_member = Member::default();
    let everything = all_partitions(&topic, partitions);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let split = !first_member.assigned.is_empty()
            && !second_member.assigned.is_empty()
            && first_member.assigned.is_disjoint(&second_member.assigned)
            && first_member.assigned.union(&second_member.assigned).cloned().collect::<BTreeSet<_>>()
                == everything;
        if split && committed.len() == total_first {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no split with all records committed: first {:?}, second {:?}, {} of {total_first} committed",
            first_member.assigned,
            second_member.assigned,
            committed.len()
        );
        step("first", &mut *first_consumer, &mut first_member, &mut committed).await;
        step("second", &mut *second_consumer, &mut second_member, &mut committed).await;
    }
    assert!(first_member.revoked_events > 0, "the first member gave partitions up through a Revoked event");
    assert!(second_member.assigned_events > 0, "the second member got partitions through an Assigned event");

    // Both members now read: records on every partition reach their owner only.
    let mut highs_before = BTreeMap::new();
    for tp in &everything {
        highs_before.insert(tp.clone(), log.watermarks(tp).await.expect("watermarks").1);
    }
    let second: Vec<_> =
        keys_covering("second", partitions, 40).iter().map(|k| outgoing(&topic, k, None)).collect();
    let total = total_first + publish(&*log, second).await.len();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while committed.len() < total {
        assert!(tokio::time::Instant::now() < deadline, "{} of {total} committed", committed.len());
        step("first", &mut *first_consumer, &mut first_member, &mut committed).await;
        step("second", &mut *second_consumer, &mut second_member, &mut committed).await;
    }
    let owners: BTreeSet<&str> = committed.values().copied().collect();
    assert_eq!(owners, BTreeSet::from(["first", "second"]), "both members consumed");
    for ((partition, offset), who) in &committed {
        let tp = TopicPartition::new(topic.clone(), *partition);
        if *offset >= highs_before[&tp] {
            let owner = if first_member.assigned.contains(&tp) { "first" } else { "second" };
            assert_eq!(
                *who, owner,
                "{tp:?}@{offset} published after the split went to the partition's owner"
            );
        }
    }
    for tp in &everything {
        let (_, high) = log.watermarks(tp).await.expect("watermarks");
        assert_eq!(
            log.committed_offset(&group, tp).await.expect("committed"),
            Some(high),
            "{tp:?} fully committed"
        );
    }
    first_consumer.close().await.expect("close first");
    second_consumer.close().await.expect("close second");
}

/// Polls once; a record is committed right away, so it may only come again (to anyone)
/// if that commit was refused because its partition had moved on.
async fn step(
    who: &'static str,
    consumer: &mut dyn Consumer,
    member: &mut Member,
    committed: &mut BTreeMap<(i32, i64), &'static str>,
) {
    let Some(event) = consumer.poll(POLL).await.unwrap_or_else(|e| panic!("{who}: poll failed: {e}")) else {
        return;
    };
    member.observe(&event, who);
    if let ConsumerEvent::Record(r) = event {
        match consumer.commit(&[(r.topic_partition(), r.offset + 1)]).await {
            Ok(()) => {
                if let Some(other) = committed.insert((r.partition, r.offset), who) {
                    panic!("{}@{} committed by {other} and again by {who}", r.partition, r.offset);
                }
            }
            Err(Error::Group(reason)) => {
                eprintln!("{who}: commit refused after a rebalance: {reason}")
            }
            Err(e) => panic!("{who}: commit failed: {e}"),
        }
    }
}

pub(crate) async fn seek_right_after_assignment_replays(log: Arc<dyn EventLog>) {
    let partitions = 2;
    let topic = create_topic(&*log, "seek_assign", partitions).await;
    let group = unique_name("seek_assign");
    let records: Vec<_> =
        keys_covering("k", partitions, 20).iter().map(|k| outgoing(&topic, k, None)).collect();
    let published = publish(&*log, records).await;
    let mut per_partition: BTreeMap<i32, i64> = BTreeMap::new();
    for (_, partition, _) in &published {
        *per_partition.entry(*partition).or_insert(0) += 1;
    }
    assert!(
        per_partition.values().all(|n| *n >= 3),
        "at least three records per partition: {per_partition:?}"
    );

    // The group's position is at offset 2 of each partition...
    let mut consumer = subscribe(&*log, &group, &[&topic]).await;
    let mut member = Member::default();
    await_assignment(&mut *consumer, &mut member, &all_partitions(&topic, partitions), "committer").await;
    let at_two: Vec<_> = all_partitions(&topic, partitions).into_iter().map(|tp| (tp, 2)).collect();
    consumer.commit(&at_two).await.expect("commit");
    consumer.close().await.expect("close");

    // ...but the next member seeks to 1 the moment each partition is assigned, before
    // librdkafka has started fetching it.
    let mut consumer = subscribe(&*log, &group, &[&topic]).await;
    let expected: usize = per_partition.values().map(|n| usize::try_from(n - 1).expect("positive")).sum();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut records: Vec<Record> = Vec::new();
    let mut member = Member::default();
    while records.len() < expected {
        assert!(tokio::time::Instant::now() < deadline, "{} of {expected} replayed records", records.len());
        let Some(event) = consumer.poll(POLL).await.expect("poll") else {
            continue;
        };
        member.observe(&event, "replayer");
        match event {
            ConsumerEvent::Assigned(tps) => {
                for tp in tps {
                    consumer
                        .seek(&tp, 1)
                        .await
                        .unwrap_or_else(|e| panic!("seek {tp:?} right after assignment: {e}"));
                }
            }
            ConsumerEvent::Revoked(tps) => panic!("nothing else in the group, yet {tps:?} revoked"),
            ConsumerEvent::Record(r) => records.push(r),
        }
    }
    for (partition, count) in &per_partition {
        let offsets: Vec<i64> =
            records.iter().filter(|r| r.partition == *partition).map(|r| r.offset).collect();
        assert_eq!(
            offsets,
            (1..*count).collect::<Vec<_>>(),
            "partition {partition} replays from offset 1, in order"
        );
    }
    consumer.close().await.expect("close");
}

pub(crate) async fn seek_mid_stream_rewinds(log: Arc<dyn EventLog>) {
    let topic = create_topic(&*log, "seek_mid", 1).await;
    let group = unique_name("seek_mid");
    let records: Vec<_> = (0..10).map(|i| outgoing(&topic, &format!("k{i}"), None)).collect();
    publish(&*log, records).await;
    let mut consumer = subscribe(&*log, &group, &[&topic]).await;
    let mut member = Member::default();
    let first = consume(&mut *consumer, &mut member, 10, "reader").await;
    assert_eq!(first.iter().map(|r| r.offset).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());

    let tp = TopicPartition::new(topic.clone(), 0);
    consumer.seek(&tp, 3).await.expect("seek back");
    let again = consume(&mut *consumer, &mut member, 7, "reader").await;
    assert_eq!(again.iter().map(|r| r.offset).collect::<Vec<_>>(), (3..10).collect::<Vec<_>>());
    for (before, after) in first[3..].iter().zip(&again) {
        assert_eq!(before, after, "replayed record differs");
    }
    consumer.close().await.expect("close");
}

pub(crate) async fn topic_administration(log: Arc<dyn EventLog>) {
    let name = unique_name("admin");
    let spec = TopicSpec { name: name.clone(), partitions: 5, replication: 1 };
    log.create_topics(std::slice::from_ref(&spec)).await.expect("create");
    log.create_topics(std::slice::from_ref(&spec)).await.expect("creating an existing topic again is fine");
    assert_eq!(log.partition_count(&name).await.expect("partition count"), 5);

    let missing = unique_name("missing");
    match log.partition_count(&missing).await {
        Err(Error::UnknownTopic(topic)) => assert_eq!(topic, missing),
        other => panic!("partition count of a missing topic: expected UnknownTopic, got {other:?}"),
    }

    match log.create_topics(&[TopicSpec { partitions: 3, ..spec }]).await {
        Err(Error::PartitionMismatch { topic, actual: 5, expected: 3 }) => assert_eq!(topic, name),
        other => {
            panic!("re-creating with another partition count: expected PartitionMismatch, got {other:?}")
        }
    }
    log.create_topics(&[]).await.expect("nothing to create");
}

pub(crate) async fn watermarks_and_offsets_for_times(log: Arc<dyn EventLog>) {
    let topic = create_topic(&*log, "times", 1).await;
    let tp = TopicPartition::new(topic.clone(), 0);
    assert_eq!(log.watermarks(&tp).await.expect("watermarks of an empty partition"), (0, 0));
    let on_empty = log.offset_for_time(&tp, 0).await.expect("offset for time on empty");

    // Recent timestamps: brokers may expire records older than their retention.
    let base = now_ms() - 60_000;
    let records = (0..3).map(|i| outgoing(&topic, &format!("k{i}"), Some(base + i * 1000))).collect();
    publish(&*log, records).await;
    assert_eq!(log.watermarks(&tp).await.expect("watermarks"), (0, 3));

    let queries = [0, base, base + 1, base + 1500, base + 2000, base + 2001];
    let mut answers = Vec::new();
    for timestamp in queries {
        answers.push(log.offset_for_time(&tp, timestamp).await.expect("offset for time"));
    }
    assert_eq!(
        answers,
        [Some(0), Some(0), Some(1), Some(2), Some(2), None],
        "offsets for times {queries:?} (base {base})"
    );
    assert_eq!(on_empty, None, "no offset for any time in an empty partition");

    let missing = TopicPartition::new(unique_name("missing"), 0);
    match log.watermarks(&missing).await {
        Err(Error::UnknownTopic(topic)) => assert_eq!(topic, missing.topic),
        other => panic!("watermarks of a missing topic: expected UnknownTopic, got {other:?}"),
    }
}

pub(crate) async fn committed_offsets_are_per_group(log: Arc<dyn EventLog>) {
    let topic = create_topic(&*log, "groups", 1).await;
    let tp = TopicPartition::new(topic.clone(), 0);
    let records = (0..4).map(|i| outgoing(&topic, &format!("k{i}"), None)).collect();
    publish(&*log, records).await;
    let (one, two) = (unique_name("one"), unique_name("two"));
    assert_eq!(log.committed_offset(&one, &tp).await.expect("committed"), None, "nothing committed yet");

    let mut consumer = subscribe(&*log, &one, &[&topic]).await;
    let mut member = Member::default();
    consume(&mut *consumer, &mut member, 2, "one").await;
    consumer.commit(&[(tp.clone(), 2)]).await.expect("commit");
    assert_eq!(log.committed_offset(&one, &tp).await.expect("committed"), Some(2));
    assert_eq!(
        log.committed_offset(&two, &tp).await.expect("committed"),
        None,
        "another group's offsets are its own"
    );
    consumer.close().await.expect("close");
    // Reading a group's offsets must not join it: a member of that group still gets
    // every partition.
    let offset = wait_for("group one's committed offset after close", DEADLINE, || {
        let log = Arc::clone(&log);
        let (one, tp) = (one.clone(), tp.clone());
        async move { log.committed_offset(&one, &tp).await.ok().flatten() }
    })
    .await;
    assert_eq!(offset, 2, "offsets outlive the member that committed them");

    let mut consumer = subscribe(&*log, &two, &[&topic]).await;
    let mut member = Member::default();
    let records = consume(&mut *consumer, &mut member, 4, "two").await;
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2, 3],
        "a new group starts from the earliest offset"
    );
    consumer.close().await.expect("close");
}

pub(crate) async fn commit_of_unassigned_partition_is_a_group_error(log: Arc<dyn EventLog>) {
    let topic = create_topic(&*log, "unassigned", 1).await;
    let other = create_topic(&*log, "other", 1).await;
    let group = unique_name("unassigned");
    let mut consumer = subscribe(&*log, &group, &[&topic]).await;
    let mut member = Member::default();
    await_assignment(&mut *consumer, &mut member, &all_partitions(&topic, 1), "member").await;
    match consumer.commit(&[(TopicPartition::new(other.clone(), 0), 1)]).await {
        Err(Error::Group(_)) => {}
        result => {
            panic!("commit for a partition of an unsubscribed topic: expected a Group error, got {result:?}")
        }
    }
    match consumer.seek(&TopicPartition::new(other, 0), 0).await {
        Err(Error::Group(_)) => {}
        result => panic!("seek of an unassigned partition: expected a Group error, got {result:?}"),
    }
    assert_eq!(log.committed_offset(&group, &TopicPartition::new(topic, 0)).await.expect("committed"), None);
    consumer.close().await.expect("close");
}

pub(crate) async fn pause_holds_back_a_partition_until_resume(log: Arc<dyn EventLog>) {
    let topic = create_topic(&*log, "pause", 2).await;
    let group = unique_name("pause");
    let keys = keys_covering("pause", 2, 20);
    let published = publish(&*log, keys.iter().map(|k| outgoing(&topic, k, None)).collect()).await;
    let on = |p: i32| published.iter().filter(|(_, partition, _)| *partition == p).count();
    let mut consumer = subscribe(&*log, &group, &[&topic]).await;
    let mut member = Member::default();
    let early = await_assignment(&mut *consumer, &mut member, &all_partitions(&topic, 2), "member").await;

    let paused = TopicPartition::new(topic.clone(), 0);
    consumer.pause(std::slice::from_ref(&paused)).await.expect("pause");
    let seen_before = |p: i32| early.iter().filter(|r| r.partition == p).count();
    let others = consume(&mut *consumer, &mut member, on(1) - seen_before(1), "member").await;
    assert!(others.iter().all(|r| r.partition == 1), "a paused partition's record was returned");
    // Nothing of the paused partition comes out, however long we poll.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < deadline {
        if let Some(event) = consumer.poll(POLL).await.expect("poll") {
            assert!(!matches!(event, ConsumerEvent::Record(_)), "record while paused: {event:?}");
        }
    }

    consumer.resume(std::slice::from_ref(&paused)).await.expect("resume");
    consumer.resume(std::slice::from_ref(&paused)).await.expect("resuming twice does nothing");
    let resumed = consume(&mut *consumer, &mut member, on(0) - seen_before(0), "member").await;
    let offsets: Vec<i64> =
        early.iter().chain(&resumed).filter(|r| r.partition == 0).map(|r| r.offset).collect();
    let expected: Vec<i64> = (0..i64::try_from(on(0)).expect("small")).collect();
    assert_eq!(offsets, expected, "after the resume, partition 0 goes on where it stopped, nothing repeated");

    let unassigned = TopicPartition::new(topic.clone(), 7);
    let error = consumer.pause(&[unassigned]).await.expect_err("pausing an unassigned partition");
    assert!(matches!(error, Error::Group(_)), "{error:?}");
    consumer.close().await.expect("close");
}
