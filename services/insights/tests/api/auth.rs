//! Bearer tokens guard `/v1/*` and gRPC when configured; the dashboard and the OpenAPI
//! description stay open.

use nearline_proto::insights::v1 as pb;

use super::fixture::{T0, T2H};
use super::harness::{Backend, config, seeded, start};

const TOKEN: &str = "insights-test-token-0123456789";

#[tokio::test]
async fn tokens_guard_the_api_but_not_the_pages() {
    let server = start(seeded(Backend::Postgres).await, config(&[TOKEN])).await;
    let path = format!("/v1/titles/101/performance?from={T0}&to={T2H}");

    let (status, _) = server.get_anonymous(&path).await;
    assert_eq!(status, 401);
    let (status, body) = server.get(&path).await;
    assert_eq!(status, 200, "{body}");

    for open in [
        "/dashboard",
        "/dashboard/",
        "/dashboard/assets/app.js",
        "/dashboard/assets/uPlot.iife.min.js",
        "/openapi.json",
    ] {
        let (status, _) = server.get_anonymous(open).await;
        assert_eq!(status, 200, "{open} should be open");
    }
    let (_, openapi) = server.get_anonymous("/openapi.json").await;
    let openapi: serde_json::Value = serde_json::from_str(&openapi).expect("OpenAPI is JSON");
    assert!(openapi["paths"]["/v1/titles/{video_id}/performance"].is_object(), "{openapi}");

    let mut client = server.grpc_client().await;
    let status = client
        .search_titles(pb::SearchTitlesRequest { search: "harbor".into(), limit: 0 })
        .await
        .expect_err("no token");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let mut request = tonic::Request::new(pb::SearchTitlesRequest { search: "harbor".into(), limit: 0 });
    request.metadata_mut().insert("authorization", format!("Bearer {TOKEN}").parse().expect("header"));
    let titles = client.search_titles(request).await.expect("with the token").into_inner().titles;
    assert_eq!(titles.iter().map(|t| t.video_id).collect::<Vec<_>>(), vec![102, 108]);
}
