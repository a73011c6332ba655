//! Backlogs: everything published before the worker starts (as after an upstream
//! outage), with hours of disorder within each topic. Each topic is judged against its
//! own watermark, so however the worker happens to interleave the two topics while
//! catching up, nothing in bounds is too late and the counts are exact.

use crate::harness::{Backend, Harness, on_both_backends};
use crate::workload::{HOUR, T0, backlog, disorderly_backlog, reference, sentinels};

on_both_backends!(
    catching_up_on_a_long_backlog_judges_nothing_too_late,
    a_backlog_with_hours_of_disorder_counts_exactly,
);

/// A backlog longer than the allowed lateness, read from the start: without pacing the
/// two topics per partition, the broker hands out one topic's partition hours ahead of
/// the other's and about 6 900 of these 24 000 in-bounds events were judged too late.
async fn catching_up_on_a_long_backlog_judges_nothing_too_late(backend: Backend) {
    let mut harness = Harness::on(backend).await;
    // Everything is published before the worker starts, as after an outage longer than
    // the allowed lateness; read unpaced, the plays would run hours ahead.
    let mut events = backlog(20_000);
    harness.publish(&events).await;
    let tail = sentinels(T0 + 10 * HOUR);
    let (worker, stop) = harness.spawn_worker();
    harness.wait_drained().await;
    harness.publish(&tail).await;
    harness.wait_drained().await;
    events.extend(tail);
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");

    assert_eq!(harness.late_records().await, 0, "no in-bounds event was judged too late");
    harness.assert_counts(&events).await;
}

/// Three days with hours of disorder within each topic: half published at full speed
/// before the worker starts, half while it runs. Nothing may be judged too late, every
/// cell must be exact and reconcile must find nothing.
async fn a_backlog_with_hours_of_disorder_counts_exactly(backend: Backend) {
    let mut harness = Harness::on(backend).await;
    let mut events = disorderly_backlog(11, 8_000);
    let (before, during) = events.split_at(events.len() / 2);
    harness.publish(before).await;
    let (worker, stop) = harness.spawn_worker();
    harness.publish(during).await;
    harness.wait_drained().await;
    let tail = sentinels(T0 + 80 * HOUR);
    harness.publish(&tail).await;
    harness.wait_drained().await;
    events.extend(tail);
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");

    // Say how far off it is before failing on the first difference.
    let late = harness.late_records().await;
    let expected = reference(&events, &harness.config.join);
    let stored = harness.counts().await;
    let exact = expected.cells.iter().filter(|(k, v)| stored.cells.get(*k) == Some(v)).count();
    eprintln!(
        "{backend:?}: {} events, {late} judged too late, {exact} of {} cells exact",
        events.len(),
        expected.cells.len()
    );
    assert_eq!(late, 0, "no in-bounds event was judged too late");
    harness.assert_counts(&events).await;
    assert_eq!(harness.reconcile(T0 - HOUR, T0 + 76 * HOUR).await, vec![], "reconcile finds no difference");
}
