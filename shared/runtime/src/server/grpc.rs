//! The gRPC side: the service's routes plus health and reflection.

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use super::{Error, Result, ServiceApis};
use crate::config::ServerConfig;
use crate::readiness::Readiness;

/// Builds the gRPC server future for `apis`.
pub(super) fn server(
    apis: &ServiceApis,
    listener: TcpListener,
    config: &ServerConfig,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = Result<()>> + use<>> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(nearline_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Reflection(e.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(nearline_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Error::Reflection(e.to_string()))?;

    let service = apis.name;
    let names = apis.grpc_service_names.clone();
    let routes = apis.grpc.clone();
    let timeout = config.request_timeout;
    Ok(async move {
        // Health follows readiness for the whole server ("") and each service.
        let health_follows_readiness = tokio::spawn(async move {
            let mut ready = readiness.subscribe();
            loop {
                let status = if *ready.borrow_and_update() {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                let ready_value = if status == ServingStatus::Serving { 1.0 } else { 0.0 };
                metrics::gauge!("nearline_ready", "service" => service).set(ready_value);
                for name in std::iter::once("").chain(names.iter().copied()) {
                    reporter.set_service_status(name, status).await;
                }
                if ready.changed().await.is_err() {
                    return;
                }
            }
        });
        let result = tonic::transport::Server::builder()
            .timeout(timeout)
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(TraceLayer::new_for_grpc())
            .layer(PropagateRequestIdLayer::x_request_id())
            .add_routes(routes)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled_owned())
            .await
            .map_err(|e| Error::Serve { what: "gRPC", reason: e.to_string() });
        health_follows_readiness.abort();
        result
    })
}
