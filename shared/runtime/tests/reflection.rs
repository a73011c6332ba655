//! gRPC reflection lists only the services a port serves (plus health and reflection),
//! not every nearline service in the descriptor set.

use nearline_runtime::Readiness;
use nearline_runtime::config::IngestConfig;
use nearline_runtime::server::{self, Listeners, ServiceApis};
use tokio_util::sync::CancellationToken;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn reflection_lists_what_the_port_serves() {
    let config = IngestConfig { http_port: 0, grpc_port: 0, ..IngestConfig::default() }.server();
    let listeners = Listeners::bind(&config).await.expect("bound");
    let grpc = listeners.grpc_addr();
    let apis = ServiceApis {
        name: "reflection-test",
        grpc: tonic::service::Routes::default(),
        grpc_service_names: vec!["nearline.ingest.v1.IngestService"],
        http: axum::Router::new(),
    };
    let shutdown = CancellationToken::new();
    let serving = {
        let (config, shutdown) = (config.clone(), shutdown.clone());
        tokio::spawn(async move { server::serve(apis, listeners, &config, Readiness::new(), shutdown).await })
    };

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
    shutdown.cancel();
    serving.await.expect("joined").expect("clean stop");
}
