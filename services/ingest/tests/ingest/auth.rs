//! With tokens configured, `/v1/*` and gRPC need a valid bearer token; the OpenAPI
//! document, health and metrics stay open.

use nearline_proto::ingest::v1::PublishRequest;
use tonic::metadata::MetadataValue;

use crate::harness::{self, Service, play};
use crate::publish::proto_play;

const TOKEN: &str = "ingest-test-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_tokens_are_refused_over_http_and_grpc() {
    let log = harness::test_kafka();
    let topics = harness::topics(&log, 1, 1).await;
    let config = harness::with_token(harness::config(), TOKEN);
    let service = Service::start(config, harness::sqlite().await, log, topics).await;
    let events = serde_json::json!({ "events": [play("a", "r")] });
    let post = |authorization: Option<String>| {
        let mut request = service.client.post(format!("{}/v1/events", service.http)).json(&events);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    let wrong = post(Some("Bearer not-the-token-0123456789".into())).await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    assert_eq!(post(Some(format!("Bearer {TOKEN}"))).await.unwrap().status(), 200);
    let video = service.client.get(format!("{}/v1/videos/1", service.http)).send().await.unwrap();
    assert_eq!(video.status(), 401, "the catalog is guarded too");
    for open in ["/openapi.json", "/livez", "/readyz", "/metrics"] {
        let response = service.client.get(format!("{}{open}", service.http)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{open} stays open");
    }

    let mut client = service.grpc_client().await;
    let request = |token: Option<&str>| {
        let mut request = tonic::Request::new(PublishRequest { events: vec![proto_play("g", "r")] });
        if let Some(token) = token {
            let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
            request.metadata_mut().insert("authorization", value);
        }
        request
    };
    assert_eq!(client.publish(request(None)).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    let wrong = client.publish(request(Some("not-the-token-0123456789"))).await.unwrap_err();
    assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    assert_eq!(client.publish(request(Some(TOKEN))).await.unwrap().into_inner().accepted, 1);
    assert_eq!(
        service.high_watermarks().await.iter().sum::<i64>(),
        2,
        "only the authenticated batches landed"
    );
}
