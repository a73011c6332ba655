//! Workers that crash (aborted mid-stream) or join a running group: counts stay exact.

use std::time::Duration;

use nearline_attribution::grpc::AttributionApi;
use nearline_attribution::status::StatusBoard;
use nearline_proto::attribution::v1::GetProgressRequest;
use nearline_proto::attribution::v1::attribution_service_server::AttributionService as _;
use nearline_testkit::wait_for;

use crate::harness::{Backend, Harness, on_both_backends, settle};
use crate::workload::{Ev, HOUR, PARTITIONS, T0, reference, sentinels, workload};

on_both_backends!(
    killed_workers_still_give_exact_counts,
    a_second_worker_joining_mid_stream_keeps_counts_exact
);

async fn killed_workers_still_give_exact_counts(backend: Backend) {
    let mut harness = Harness::on(backend).await;
    let mut events = workload(7, 1200);
    let tail = sentinels(T0 + 5 * HOUR);
    let expected_events: Vec<Ev> = events.iter().chain(&tail).cloned().collect();
    let expected = reference(&expected_events, &harness.config.join);
    assert!(
        expected.cells.values().filter(|(_, plays)| *plays > 0).count() > 10
            && expected.unattributed.len() > 10,
        "the workload exercises attributed and unattributed plays"
    );
    let chunks: Vec<Vec<Ev>> = events.chunks(events.len() / 4 + 1).map(<[Ev]>::to_vec).collect();

    let mut stored_before = 0;
    for chunk in &chunks {
        harness.publish(chunk).await;
        let (worker, _stop) = harness.spawn_worker();
        // Kill (abort, no clean shutdown) once this worker has stored some progress.
        let target = stored_before + 1;
        wait_for("the worker to store progress", Duration::from_secs(60), || async {
            (harness.stored_offsets().await >= target).then_some(())
        })
        .await;
        worker.abort();
        let _ = worker.await;
        stored_before = harness.stored_offsets().await;
    }
    let (worker, stop) = harness.spawn_worker();
    harness.wait_drained().await;
    settle(&mut harness, tail, &mut events).await;
    stop.cancel();
    worker.await.expect("joined").expect("clean stop");
    harness.assert_counts(&events).await;
    assert_eq!(harness.reconcile(T0 - HOUR, T0 + 6 * HOUR).await, vec![], "reconcile finds no difference");

    // GetProgress reports every partition caught up, watermarks at the sentinels.
    let api = AttributionApi {
        store: harness.store.clone(),
        status: StatusBoard::default(),
        log: harness.log.clone(),
        topics: harness.topics.clone(),
        allowed_lateness_ms: harness.config.join.allowed_lateness_ms,
    };
    let progress =
        api.get_progress(tonic::Request::new(GetProgressRequest {})).await.expect("progress").into_inner();
    assert_eq!(progress.partitions.len(), PARTITIONS as usize);
    for partition in &progress.partitions {
        assert_eq!(partition.lag, 0, "partition {} is caught up", partition.partition);
        assert_eq!(partition.watermark_ms, T0 + 15 * HOUR, "partition {} watermark", partition.partition);
        assert_eq!(partition.impressions_watermark_ms, Some(T0 + 15 * HOUR));
        assert_eq!(partition.plays_watermark_ms, Some(T0 + 15 * HOUR));
        let kinds: Vec<_> = partition.sources.iter().map(|s| (s.kind.as_str(), s.region.as_str())).collect();
        assert_eq!(kinds, [("impressions", ""), ("plays", "")], "the local topics are the only sources");
        for source in &partition.sources {
            assert_eq!(source.watermark_ms, Some(T0 + 15 * HOUR), "{}", source.topic);
            assert_eq!((source.watermark_lag_ms, source.lag), (Some(0), 0), "{}", source.topic);
        }
    }
    let complete_until = T0 + 15 * HOUR - harness.config.join.allowed_lateness_ms;
    assert_eq!(progress.complete_until_ms, Some(complete_until));
    let stored = nearline_storage::progress::complete_until(
        &harness.database,
        &harness.config.group,
        harness.config.join.allowed_lateness_ms,
    )
    .await
    .expect("stored progress");
    assert_eq!(stored, Some(complete_until), "insights' definition agrees");
}

async fn a_second_worker_joining_mid_stream_keeps_counts_exact(backend: Backend) {
    let mut harness = Harness::on(backend).await;
    let mut events = workload(11, 1000);
    let (first_half, second_half) = events.split_at(events.len() / 2);

    harness.publish(first_half).await;
    let (first, first_stop) = harness.spawn_worker();
    wait_for("the first worker to store progress", Duration::from_secs(60), || async {
        (harness.stored_offsets().await > 0).then_some(())
    })
    .await;
    let (second, second_stop, second_status) = harness.spawn_worker_with_status();
    harness.publish(second_half).await;
    harness.wait_drained().await;
    wait_for("the second worker to own partitions", Duration::from_secs(30), || async {
        (!second_status.snapshot().is_empty()).then_some(())
    })
    .await;
    settle(&mut harness, sentinels(T0 + 5 * HOUR), &mut events).await;
    first_stop.cancel();
    second_stop.cancel();
    first.await.expect("joined").expect("first stops cleanly");
    second.await.expect("joined").expect("second stops cleanly");
    harness.assert_counts(&events).await;
    assert_eq!(harness.reconcile(T0 - HOUR, T0 + 6 * HOUR).await, vec![], "reconcile finds no difference");
}
