//! What only the durable log has to show: its files survive a clean close and a crash,
//! and retention deletes old segments while offsets keep counting up.
//!
//! A crash is simulated by what it leaves on disk: the log is closed (everything it
//! acknowledged is there, as it would be after a kill) and a torn write is appended to
//! the last segment, as a kill in the middle of a group commit leaves it. The real
//! kill of a real process is in the workspace's `tests/embedded_durability.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nearline_eventlog::durable::{DurableLog, DurableOptions};
use nearline_eventlog::{Consumer, ConsumerEvent, EventLog, Record, TopicPartition};
use nearline_testkit::wait_for;

use crate::data_dir;
use crate::scenarios::{DEADLINE, POLL, create_topic, outgoing, publish};

fn open(options: &DurableOptions) -> DurableLog {
    DurableLog::open(options.clone()).unwrap_or_else(|e| panic!("opening {}: {e}", options.dir.display()))
}

async fn read_all(log: &dyn EventLog, tp: &TopicPartition, from: i64, n: usize) -> Vec<Record> {
    let mut reader = log.reader().await.expect("reader");
    reader.assign(tp, from).await.expect("assign");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut records = Vec::new();
    while records.len() < n {
        assert!(tokio::time::Instant::now() < deadline, "read {} of {n} records of {tp:?}", records.len());
        if let Some(record) = reader.poll(POLL).await.expect("poll") {
            records.push(record);
        }
    }
    records
}

/// Polls `consumer` until it has `n` records.
async fn consume(consumer: &mut dyn Consumer, n: usize) -> Vec<Record> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut records = Vec::new();
    while records.len() < n {
        assert!(tokio::time::Instant::now() < deadline, "consumed {} of {n} records", records.len());
        if let Some(ConsumerEvent::Record(record)) = consumer.poll(POLL).await.expect("poll") {
            records.push(record);
        }
    }
    records
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("partition directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "seg") {
            found.push(path);
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_after_a_clean_close_keeps_records_and_committed_offsets() {
    let options = DurableOptions { segment_bytes: 2048, ..DurableOptions::new(data_dir()) };
    let log = open(&options);
    let topic = create_topic(&log, "reopen", 2).await;
    let records = (0..60).map(|i| outgoing(&topic, &format!("k{i}"), None)).collect();
    let published = publish(&log, records).await;

    let mut consumer = log.subscribe("g", &[&topic]).await.expect("subscribe");
    let consumed = consume(&mut *consumer, 60).await;
    // Commit half of each partition.
    let mut commits = Vec::new();
    for partition in 0..2 {
        let tp = TopicPartition::new(topic.clone(), partition);
        let high = log.watermarks(&tp).await.expect("watermarks").1;
        commits.push((tp, high / 2));
    }
    consumer.commit(&commits).await.expect("commit");
    consumer.close().await.expect("leave");
    let before: Vec<(i64, i64)> = {
        let mut w = Vec::new();
        for (tp, _) in &commits {
            w.push(log.watermarks(tp).await.expect("watermarks"));
        }
        w
    };
    log.close().await.expect("close");
    drop(log);

    let log = open(&options);
    assert_eq!(log.partition_count(&topic).await.expect("topic survives"), 2);
    for ((tp, committed), watermarks) in commits.iter().zip(&before) {
        assert_eq!(&log.watermarks(tp).await.expect("watermarks"), watermarks, "watermarks of {tp:?}");
        assert_eq!(log.committed_offset("g", tp).await.expect("committed"), Some(*committed), "{tp:?}");
        let reread = read_all(&log, tp, 0, usize::try_from(watermarks.1).expect("fits")).await;
        let original: Vec<&Record> = consumed.iter().filter(|r| r.partition == tp.partition).collect();
        assert_eq!(reread.iter().collect::<Vec<_>>(), original, "records of {tp:?} after the reopen");
    }

    // The group goes on from its commits; new records get the next offsets.
    let mut consumer = log.subscribe("g", &[&topic]).await.expect("subscribe again");
    let rest: usize =
        commits.iter().zip(&before).map(|((_, c), (_, high))| usize::try_from(high - c).unwrap()).sum();
    let resumed = consume(&mut *consumer, rest).await;
    for record in &resumed {
        let (_, committed) = &commits[usize::try_from(record.partition).unwrap()];
        assert!(record.offset >= *committed, "{record:?} was committed before the reopen");
    }
    let more = publish(&log, vec![outgoing(&topic, "k0", None)]).await;
    let (_, partition, offset) = &more[0];
    let first = published.iter().find(|(r, _, _)| r.key == "k0").expect("k0 was published");
    assert_eq!(*partition, first.1, "same key, same partition");
    assert_eq!(*offset, before[usize::try_from(*partition).unwrap()].1, "offsets go on after the reopen");
    log.close().await.expect("close");
    std::fs::remove_dir_all(&options.dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_after_a_crash_cuts_the_torn_tail_and_keeps_every_acknowledged_record() {
    // Several segments, so the earlier ones are reopened through their saved indexes.
    let options = DurableOptions { segment_bytes: 512, ..DurableOptions::new(data_dir()) };
    let log = open(&options);
    let topic = create_topic(&log, "crash", 1).await;
    let tp = TopicPartition::new(topic.clone(), 0);
    for i in 0..25 {
        publish(&log, vec![outgoing(&topic, &format!("k{i}"), None)]).await;
    }
    let acknowledged = read_all(&log, &tp, 0, 25).await;
    log.close().await.expect("close");
    drop(log);

    // What a kill during the next group commit leaves: part of a frame, then garbage
    // where a whole frame with a bad checksum would be.
    let partition_dir = options.dir.join("topics").join(&topic).join("0");
    let last = segments(&partition_dir).pop().expect("a segment");
    let whole = std::fs::metadata(&last).expect("segment").len();
    for torn in [
        &[0x2a, 0, 0, 0, 0x11, 0x22][..],
        &[0x10, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9][..],
    ] {
        let mut bytes = std::fs::read(&last).expect("read segment");
        bytes.extend_from_slice(torn);
        std::fs::write(&last, bytes).expect("tear the segment");

        let log = open(&options);
        assert_eq!(std::fs::metadata(&last).expect("segment").len(), whole, "the torn tail is cut off");
        assert_eq!(log.watermarks(&tp).await.expect("watermarks"), (0, 25));
        assert_eq!(read_all(&log, &tp, 0, 25).await, acknowledged, "every acknowledged record is intact");
        log.close().await.expect("close");
    }

    // A damaged saved index is ignored: the segment is scanned instead.
    let segments_now = segments(&partition_dir);
    assert!(segments_now.len() > 2, "the records span several segments: {segments_now:?}");
    let index = segments_now[0].with_extension("idx");
    assert!(index.is_file(), "closing saved the index of the first segment");
    let mut bytes = std::fs::read(&index).expect("index");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&index, bytes).expect("damage the index");
    let log = open(&options);
    assert_eq!(read_all(&log, &tp, 0, 25).await, acknowledged, "intact without the saved index");
    log.close().await.expect("close");

    // Appends after the recovery land where the torn write was, and survive.
    let log = open(&options);
    let more = publish(&log, vec![outgoing(&topic, "after", None)]).await;
    assert_eq!(more[0].2, 25);
    log.close().await.expect("close");
    let log = open(&options);
    let all = read_all(&log, &tp, 0, 26).await;
    assert_eq!(all[25].key, "after");
    log.close().await.expect("close");
    std::fs::remove_dir_all(&options.dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_segments_and_moves_the_start_offset() {
    // By size: 1 KiB segments, at most 4 KiB retained per partition.
    let options =
        DurableOptions { segment_bytes: 1024, retention_bytes: 4096, ..DurableOptions::new(data_dir()) };
    let log = open(&options);
    let topic = create_topic(&log, "retention", 1).await;
    let tp = TopicPartition::new(topic.clone(), 0);
    let partition_dir = options.dir.join("topics").join(&topic).join("0");
    for batch in 0..20 {
        let records = (0..10).map(|i| outgoing(&topic, &format!("k{batch}-{i}"), None)).collect();
        publish(&log, records).await;
    }
    // Retention runs in the background while publishing goes on, so wait for it to
    // have caught up with the last publish.
    let on_disk =
        || segments(&partition_dir).iter().map(|s| std::fs::metadata(s).map_or(0, |m| m.len())).sum::<u64>();
    let first_segment = || {
        let first = segments(&partition_dir).first().cloned()?;
        first.file_stem()?.to_string_lossy().parse::<i64>().ok()
    };
    // The low watermark is the first remaining segment. Both are read while retention
    // may still delete a segment, so they are compared once retention has settled.
    let (low, high) = wait_for(
        "retention to bring the partition within 4 KiB + one segment, the low watermark at its first segment",
        DEADLINE,
        || async {
            let (low, high) = log.watermarks(&tp).await.ok()?;
            let settled = low > 0 && on_disk() <= 4096 + 1024 && first_segment() == Some(low);
            settled.then_some((low, high))
        },
    )
    .await;
    assert_eq!(high, 200, "retention never takes offsets back");

    // Readers and groups asking for deleted offsets start at the low watermark.
    let from_zero = read_all(&log, &tp, 0, 1).await;
    assert_eq!(from_zero[0].offset, low);
    let mut consumer = log.subscribe("g", &[&topic]).await.expect("subscribe");
    let first_consumed = consume(&mut *consumer, 1).await;
    assert!(
        first_consumed[0].offset >= low,
        "consumed {} before the low watermark {low}",
        first_consumed[0].offset
    );
    consumer.close().await.expect("leave");

    // New records keep counting up, and the start offset survives a reopen.
    let more = publish(&log, vec![outgoing(&topic, "late", None)]).await;
    assert_eq!(more[0].2, 200);
    log.close().await.expect("close");
    drop(log);
    let log = open(&options);
    assert_eq!(log.watermarks(&tp).await.expect("watermarks").1, 201);
    assert!(log.watermarks(&tp).await.expect("watermarks").0 >= low);
    log.close().await.expect("close");

    // By time: with a retention of 1 ms every closed segment goes.
    let by_time =
        DurableOptions { retention: Duration::from_millis(1), retention_bytes: u64::MAX, ..options.clone() };
    let log = open(&by_time);
    wait_for("time retention to leave only the active segment", DEADLINE, || async {
        (segments(&partition_dir).len() == 1).then_some(())
    })
    .await;
    let (low, high) = log.watermarks(&tp).await.expect("watermarks");
    assert_eq!(high, 201);
    assert!(low > 0 && low <= high, "low watermark {low} of {high}");
    log.close().await.expect("close");
    std::fs::remove_dir_all(&options.dir).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_refuses_every_later_append_and_says_why() {
    // Tiny segments, so the next append must create a file in the partition directory,
    // which is gone: the write fails the way a full disk would make it fail.
    let options = DurableOptions { segment_bytes: 1024, ..DurableOptions::new(data_dir()) };
    let log = open(&options);
    let topic = create_topic(&log, "failing", 1).await;
    let tp = TopicPartition::new(topic.clone(), 0);
    let big = |key: &str| {
        let mut record = outgoing(&topic, key, None);
        record.payload = vec![b'x'; 800].into();
        record
    };
    publish(&log, vec![big("k0")]).await;
    std::fs::remove_dir_all(options.dir.join("topics").join(&topic)).expect("remove the partition directory");

    let refused = log.publish(vec![big("k1")]).await;
    assert!(
        matches!(refused, Err(nearline_eventlog::Error::Unavailable(_))),
        "the failed append: {refused:?}"
    );
    let why = tokio::time::timeout(DEADLINE, log.failed()).await.expect("the log reports its failure");
    assert!(!why.is_empty(), "a reason");
    let later = log.publish(vec![outgoing(&topic, "k2", None)]).await;
    assert!(matches!(later, Err(nearline_eventlog::Error::Unavailable(_))), "a later append: {later:?}");
    // What was acknowledged before is still readable.
    assert_eq!(log.watermarks(&tp).await.expect("watermarks"), (0, 1));
    assert_eq!(read_all(&log, &tp, 0, 1).await[0].key, "k0");
    log.close().await.expect("close");
    std::fs::remove_dir_all(&options.dir).expect("cleanup");
}
