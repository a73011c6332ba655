//! The gRPC side: the service's routes plus health and reflection.

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tower_http::classify::GrpcFailureClass;
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
    // Reflection lists only what this port serves (the descriptor set holds all four
    // services' protos, which their messages still resolve against).
    let served: Vec<&str> = apis
        .grpc_service_names
        .iter()
        .copied()
        .chain([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ])
        .collect();
    let reflection = || {
        served.iter().fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(nearline_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET),
            |builder, name| builder.with_service_name(*name),
        )
    };
    let reflection_v1 = reflection().build_v1().map_err(|e| Error::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(|e| Error::Reflection(e.to_string()))?;

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
            .layer(TraceLayer::new_for_grpc().on_failure(log_failure))
            .layer(PropagateRequestIdLayer::x_request_id())
            .add_routes(routes)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(without_nagle(listener), shutdown.cancelled_owned())
            .await
            .map_err(|e| Error::Serve { what: "gRPC", reason: e.to_string() });
        health_follows_readiness.abort();
        result
    })
}

/// The accepted connections with Nagle's algorithm off. tonic sets `TCP_NODELAY` only on
/// listeners it binds itself; on ours a response's small HTTP/2 frames waited for the
/// peer's delayed acknowledgement, which held a decision over gRPC at ~1.4 ms (HTTP: 0.3).
fn without_nagle(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt as _;
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        if let Err(e) = stream.set_nodelay(true) {
            // Only slower, not wrong: serve the connection anyway.
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a gRPC connection");
        }
        Ok(stream)
    })
}

/// Logs a failed gRPC call: at debug for what a client caused or asked for (an unknown
/// method, a missing title, a bad argument, a spent budget), at error for the rest.
fn log_failure(failure: GrpcFailureClass, latency: std::time::Duration, _span: &tracing::Span) {
    use tonic::Code;
    match failure {
        GrpcFailureClass::Code(code) => {
            let code = Code::from(code.get());
            let routine = matches!(
                code,
                Code::Cancelled
                    | Code::InvalidArgument
                    | Code::NotFound
                    | Code::AlreadyExists
                    | Code::PermissionDenied
                    | Code::ResourceExhausted
                    | Code::FailedPrecondition
                    | Code::OutOfRange
                    | Code::Unimplemented
                    | Code::Unauthenticated
            );
            if routine {
                tracing::debug!(?code, ?latency, "gRPC call answered with a client error");
            } else {
                tracing::error!(?code, ?latency, "gRPC call failed");
            }
        }
        GrpcFailureClass::Error(error) => tracing::error!(%error, ?latency, "gRPC call failed"),
    }
}
