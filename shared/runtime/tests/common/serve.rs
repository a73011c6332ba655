//! Serving a test service on port 0 with the shared runtime, for the runtime's tests.
// Each test binary includes this file and uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;

use nearline_runtime::Readiness;
use nearline_runtime::config::{IngestConfig, ServerConfig};
use nearline_runtime::server::{self, Listeners, ServiceApis};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running test service.
pub(crate) struct Served {
    pub(crate) http: SocketAddr,
    pub(crate) grpc: SocketAddr,
    pub(crate) shutdown: CancellationToken,
    pub(crate) serving: JoinHandle<server::Result<()>>,
}

/// Listening settings on port 0, for `adjust` to change.
pub(crate) fn config(adjust: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    let mut config = IngestConfig { http_port: 0, grpc_port: 0, ..IngestConfig::default() }.server();
    adjust(&mut config);
    config
}

/// Serves `http` routes and names `grpc_service_names` (ready at once) until shut down.
pub(crate) async fn serve(
    config: ServerConfig,
    http: axum::Router,
    grpc_service_names: Vec<&'static str>,
) -> Served {
    let listeners = Listeners::bind(&config).await.expect("bound");
    let (http_addr, grpc_addr) = (listeners.http_addr(), listeners.grpc_addr());
    let apis = ServiceApis {
        name: "runtime-test",
        grpc: tonic::service::Routes::default(),
        grpc_service_names,
        http,
    };
    let readiness = Readiness::new();
    readiness.set_ready();
    let shutdown = CancellationToken::new();
    let serving = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { server::serve(apis, listeners, &config, readiness, shutdown).await })
    };
    Served { http: http_addr, grpc: grpc_addr, shutdown, serving }
}

impl Served {
    /// Shuts down and waits for a clean stop.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.serving.await.expect("joined").expect("clean stop within the grace period");
    }
}
