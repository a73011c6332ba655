//! gRPC reflection lists only the services a port serves (plus health and reflection),
//! not every nearline service in the descriptor set.

#[path = "common/serve.rs"]
mod common;

use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn reflection_lists_what_the_port_serves() {
    let served =
        common::serve(common::config(|_| {}), axum::Router::new(), vec!["nearline.ingest.v1.IngestService"])
            .await;
    let grpc = served.grpc;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}")).unwrap().connect().await;
    let mut client = ServerReflectionClient::new(channel.expect("connects"));
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers =
        client.server_reflection_info(tokio_stream::iter([request])).await.expect("reflection").into_inner();
    let answer = answers.message().await.expect("an answer").expect("one message");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "nearline.ingest.v1.IngestService",
        ]
    );
    served.stop().await;
}
