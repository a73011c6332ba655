//! Billboard: picks the homepage billboard title and each title's artwork with bandits that learn from joined plays.
//!
//! The crate is a library: [`run`] serves the service until shutdown; the `nearline`
//! binary wires it to its configuration, database and event log.

pub mod policy;
pub mod sim;

use std::sync::Arc;

use nearline_eventlog::EventLog;
use nearline_runtime::server::{self, Listeners, ServiceApis};
use nearline_runtime::{Config, Readiness};
use nearline_storage::Database;
use tokio_util::sync::CancellationToken;

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving failed.
    #[error(transparent)]
    Server(#[from] server::Error),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] nearline_storage::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Serves the billboard service on `listeners` until `shutdown` is cancelled.
pub async fn run(
    config: Arc<Config>,
    database: Database,
    _log: Arc<dyn EventLog>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<()> {
    let readiness = Readiness::new();
    let apis = ServiceApis {
        name: "billboard",
        grpc: tonic::service::Routes::default(),
        grpc_service_names: Vec::new(),
        http: axum::Router::new(),
    };
    database.ping().await?;
    readiness.set_ready();
    server::serve(apis, listeners, &config.billboard.server(), readiness, shutdown).await?;
    Ok(())
}
