//! Serving one service's gRPC and HTTP APIs.
//!
//! Binding is separate from serving so that callers (and tests) can bind port 0 and
//! learn the real addresses first. [`serve`] adds what every service has: gRPC health
//! and reflection (v1 and v1alpha, so grpcurl works), `/livez`, `/readyz`, `/metrics`,
//! request ids, trace spans, timeouts and body limits, and drains both servers on
//! shutdown within the grace period.

mod connections;
mod grpc;
mod http;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::readiness::Readiness;

pub use http::AppError;

/// Errors of the server runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A port could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// `gRPC` or `HTTP`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reflection could not be built from the descriptor set.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(String),
    /// A server failed while serving.
    #[error("{what} server failed: {reason}")]
    Serve {
        /// `gRPC` or `HTTP`.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// In-flight requests did not finish within the grace period.
    #[error("{service}: requests still in flight after the {grace:?} grace period; stopped anyway")]
    GraceExceeded {
        /// The service.
        service: &'static str,
        /// The grace period.
        grace: std::time::Duration,
    },
}

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A service's own APIs, before the shared endpoints and layers are added.
#[derive(Debug)]
pub struct ServiceApis {
    /// Short service name used in logs and metrics labels (`ingest`, ...).
    pub name: &'static str,
    /// The service's gRPC services. Set message size limits on each generated server.
    pub grpc: tonic::service::Routes,
    /// Fully qualified gRPC service names reported by health once ready.
    pub grpc_service_names: Vec<&'static str>,
    /// The service's HTTP routes (`/v1/...`, pages).
    pub http: axum::Router,
}

/// Bound sockets of a service, ready to serve.
#[derive(Debug)]
pub struct Listeners {
    grpc: TcpListener,
    http: TcpListener,
}

impl Listeners {
    /// Binds the configured gRPC and HTTP addresses (port 0 picks a free port).
    pub async fn bind(config: &ServerConfig) -> Result<Self> {
        let bind = |what, addr| async move {
            TcpListener::bind(addr).await.map_err(|source| Error::Bind { what, addr, source })
        };
        Ok(Self {
            grpc: bind("gRPC", config.grpc_addr()).await?,
            http: bind("HTTP", config.http_addr()).await?,
        })
    }

    /// Actual gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().expect("a bound listener has an address")
    }

    /// Actual HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("a bound listener has an address")
    }
}

/// Serves `apis` on `listeners` until `shutdown` is cancelled, then drains within the
/// grace period. Health reports SERVING only while `readiness` is set.
pub async fn serve(
    apis: ServiceApis,
    listeners: Listeners,
    config: &ServerConfig,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<()> {
    let name = apis.name;
    // Install the recorder before the first request is counted.
    crate::telemetry::metrics_handle();
    let grpc_addr = listeners.grpc_addr();
    let http_addr = listeners.http_addr();
    // Withdraw readiness as soon as shutdown begins, so traffic moves away while we drain.
    let drain = {
        let readiness = readiness.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            readiness.set_not_ready();
        })
    };

    let grpc = grpc::server(&apis, listeners.grpc, config, readiness.clone(), shutdown.clone())?;
    let router = http::router(name, apis.http, config, readiness.clone());
    let limits = connections::Limits {
        max_connections: config.max_connections,
        header_read_timeout: config.header_read_timeout,
    };
    let http = async {
        connections::serve(name, listeners.http, router, limits, shutdown.clone()).await;
        Ok::<(), Error>(())
    };
    tracing::info!(service = name, %grpc_addr, %http_addr, "serving");

    let both = async { tokio::try_join!(grpc, http).map(|_| ()) };
    tokio::pin!(both);
    let result = tokio::select! {
        result = &mut both => result,
        () = shutdown.cancelled() => {
            match tokio::time::timeout(config.grace_period, &mut both).await {
                Ok(result) => result,
                Err(_) => Err(Error::GraceExceeded { service: name, grace: config.grace_period }),
            }
        }
    };
    drain.abort();
    tracing::info!(service = name, "stopped serving");
    result
}
