//! The gRPC API: the same answers and errors as HTTP.

use nearline_proto::insights::v1 as pb;
use tonic::Code;

use super::harness::{Backend, config, seeded, start};

const T0_MS: i64 = 1_795_168_800_000;
const T2H_MS: i64 = T0_MS + 2 * 3_600_000;

fn performance(video_id: i64, from_ms: i64, to_ms: i64, group_by: &[&str]) -> pb::TitlePerformanceRequest {
    pb::TitlePerformanceRequest {
        video_id,
        from_ms,
        to_ms,
        granularity: "epoch".into(),
        group_by: group_by.iter().map(|g| g.to_string()).collect(),
        filters: None,
    }
}

#[tokio::test]
async fn grpc_answers_like_http() {
    let server = start(seeded(Backend::Postgres).await, config(&[])).await;
    let mut client = server.grpc_client().await;

    let response = client
        .get_title_performance(performance(101, T0_MS, T2H_MS, &["country", "device"]))
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(response.title, "Stranger Lights");
    assert_eq!(response.complete_until_ms, Some(1_795_262_400_000 - 6 * 3_600_000));
    let totals = response.totals.expect("totals");
    assert_eq!((totals.impressions, totals.plays, response.unattributed_plays), (28, 9, 3));
    assert_eq!(response.series.len(), 5);
    let first = &response.series[0];
    assert_eq!(first.start_ms, T0_MS);
    assert_eq!(first.group.get("country").map(String::as_str), Some("CA"));
    assert_eq!(first.group.get("device").map(String::as_str), Some("tv"));
    assert_eq!(first.group.len(), 2);

    let mut filtered = performance(101, T0_MS, T2H_MS, &[]);
    filtered.filters = Some(pb::Filters {
        country: vec!["US".into()],
        canvas: vec!["billboard".into()],
        ..Default::default()
    });
    let response = client.get_title_performance(filtered).await.expect("ok").into_inner();
    let totals = response.totals.expect("totals");
    assert_eq!((totals.impressions, totals.plays, totals.take_rate), (5, 1, Some(0.2)));

    let top = client
        .get_top_titles(pb::TopTitlesRequest {
            from_ms: T0_MS,
            to_ms: T2H_MS,
            metric: "take_rate".into(),
            limit: 2,
            min_impressions: 5,
            filters: None,
        })
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(top.titles.iter().map(|t| (t.rank, t.video_id)).collect::<Vec<_>>(), vec![(1, 104), (2, 101)]);

    let read = client
        .get_launch_read(pb::LaunchReadRequest { video_id: 102, hours: 3 })
        .await
        .expect("ok")
        .into_inner();
    assert_eq!(read.comparable_video_ids, vec![103, 104, 105]);
    assert_eq!(read.hours.len(), 3);
    let rate = read.hours[0].comparable_take_rate.expect("spread");
    assert!((rate.median - 0.2).abs() < 1e-9);
    assert_eq!(read.hours[0].comparable_median, Some(rate.median));
    assert!(read.note.is_empty());
}

#[tokio::test]
async fn grpc_errors_name_the_field() {
    let server = start(seeded(Backend::Postgres).await, config(&[])).await;
    let mut client = server.grpc_client().await;
    let expect = |result: Result<tonic::Response<pb::TitlePerformanceResponse>, tonic::Status>,
                  code: Code,
                  field: &str| {
        let status = result.expect_err("an error");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().starts_with(field), "{status:?} does not name {field}");
    };
    expect(
        client.get_title_performance(performance(101, T0_MS, T2H_MS, &["continent"])).await,
        Code::InvalidArgument,
        "group_by",
    );
    expect(
        client.get_title_performance(performance(101, T2H_MS, T0_MS, &[])).await,
        Code::InvalidArgument,
        "from_ms",
    );
    expect(
        client.get_title_performance(performance(101, T0_MS + 60_000, T2H_MS, &[])).await,
        Code::InvalidArgument,
        "from_ms",
    );
    expect(
        client.get_title_performance(performance(101, T0_MS - 30 * 86_400_000, T2H_MS, &[])).await,
        Code::InvalidArgument,
        "to_ms",
    );
    expect(
        client.get_title_performance(performance(4242, T0_MS, T2H_MS, &[])).await,
        Code::NotFound,
        "video 4242",
    );

    let status = client
        .get_top_titles(pb::TopTitlesRequest {
            from_ms: T0_MS,
            to_ms: T2H_MS,
            metric: "views".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad metric");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().starts_with("metric"), "{status:?}");
    // As rich as ingest's: a BadRequest detail names the field.
    let details = tonic_types::StatusExt::get_error_details(&status);
    let violations = &details.bad_request().expect("a BadRequest detail").field_violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "metric");
    let status = client
        .get_launch_read(pb::LaunchReadRequest { video_id: 4242, hours: 0 })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
}
