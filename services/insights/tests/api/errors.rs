//! Every error case of the issue over HTTP: 400 naming the parameter, 404 for unknown
//! titles (and 409 for a title without a launch time).

use super::fixture::{T0, T2H};
use super::harness::{Backend, assert_invalid, config, seeded, start};

#[tokio::test]
async fn bad_requests_name_the_parameter() {
    let server = start(seeded(Backend::Postgres).await, config(&[])).await;
    let perf = |query: &str| format!("/v1/titles/101/performance?{query}");

    let message = assert_invalid(
        server.get(&perf(&format!("from={T0}&to={T2H}&group_by=country,continent"))).await,
        "group_by",
    );
    assert!(message.contains("unknown dimension \"continent\""), "{message}");
    assert_invalid(server.get(&perf(&format!("from=yesterday&to={T2H}"))).await, "from");
    assert_invalid(server.get(&perf(&format!("from={T0}&to=2026-13-01T00:00:00Z"))).await, "to");
    let message = assert_invalid(server.get(&perf(&format!("from={T2H}&to={T0}"))).await, "from");
    assert!(message.contains("is not before to"), "{message}");
    let message =
        assert_invalid(server.get(&perf("from=2026-11-01T00:00:00Z&to=2026-11-20T00:00:00Z")).await, "to");
    assert!(message.contains("more than the maximum of 7d"), "{message}");
    let message =
        assert_invalid(server.get(&perf(&format!("from=2026-11-20T10:10:00Z&to={T2H}"))).await, "from");
    assert!(message.contains("not aligned to the 30m attribution epoch"), "{message}");
    assert_invalid(server.get(&perf(&format!("to={T2H}"))).await, "from");
    let message = assert_invalid(
        server.get(&perf(&format!("from={T0}&to={T2H}&group_by=country,,"))).await,
        "group_by",
    );
    assert!(message.contains("empty item"), "{message}");
    let message =
        assert_invalid(server.get(&format!("/v1/titles/top?from={T0}&to={T2H}&limit=0")).await, "limit");
    assert!(message.contains("at least 1"), "{message}");
    assert_invalid(server.get(&perf(&format!("from={T0}&to={T2H}&granularity=week"))).await, "granularity");
    assert_invalid(server.get(&perf(&format!("from={T0}&to={T2H}&continent=EU"))).await, "continent");
    assert_invalid(server.get(&format!("/v1/titles/abc/performance?from={T0}&to={T2H}")).await, "video_id");

    let top = |query: &str| format!("/v1/titles/top?from={T0}&to={T2H}&{query}");
    assert_invalid(server.get(&top("metric=views")).await, "metric");
    assert_invalid(server.get(&top("limit=5000")).await, "limit");
    assert_invalid(server.get(&top("min_impressions=-1")).await, "min_impressions");
    assert_invalid(server.get(&format!("/v1/titles/top?from={T2H}&to={T0}")).await, "from");

    assert_invalid(server.get("/v1/titles/102/launch?hours=100000").await, "hours");
    assert_invalid(server.get("/v1/titles?limit=101").await, "limit");
}

#[tokio::test]
async fn unknown_titles_are_not_found() {
    let server = start(seeded(Backend::Postgres).await, config(&[])).await;
    for path in
        [format!("/v1/titles/4242/performance?from={T0}&to={T2H}"), "/v1/titles/4242/launch".to_string()]
    {
        let (status, body) = server.get(&path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"], "not_found");
        assert_eq!(body["message"], "video 4242 is not in the catalog");
    }
    let (status, body) = server.get("/v1/titles/108/launch").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "not_launched");
}
