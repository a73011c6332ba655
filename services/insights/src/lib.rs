//! Insights: answers internal dashboards about title performance, top titles and launch early reads from the attributed counts.
//!
//! The crate is a library: [`run`] serves the service until shutdown; the `nearline`
//! binary wires it to its configuration, database and event log.
//!
//! - [`query`]: validation and planning of queries, pure;
//! - [`launch`]: comparable launches, median and interquartile range, pure;
//! - [`repository`]: the fixed SQL over Postgres or SQLite;
//! - [`service`]: the queries, shared by [`http`] and [`grpc`];
//! - [`cache`]: a small result cache keyed by query and `complete_until`;
//! - [`error`]: the one error type, answered over both;
//! - `dashboard` and `billboard_proxy`: the dashboard pages, and billboard's read
//!   endpoints relayed for its billboard page.

pub mod cache;
pub mod days;
pub mod error;
mod evict;
pub mod grpc;
pub mod http;
pub mod launch;
pub mod planner;
pub mod query;
pub mod repository;
pub mod results;
pub mod service;

mod billboard_proxy;
mod dashboard;

use std::sync::Arc;

use nearline_eventlog::EventLog;
use nearline_runtime::auth::Authenticator;
use nearline_runtime::server::{self, Listeners, ServiceApis};
use nearline_runtime::{Config, Readiness};
use nearline_storage::Database;
use tokio_util::sync::CancellationToken;

pub use service::{Insights, Settings};

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

/// The service's gRPC and HTTP APIs over `database`, before the shared endpoints are added.
pub fn apis(config: &Config, database: Database) -> ServiceApis {
    let repository = if config.insights.read_rollups {
        repository::Repository::new(database)
    } else {
        repository::Repository::cells_only(database)
    };
    let insights = Insights::new(repository, Settings::from_config(config));
    let auth = Authenticator::new(&config.auth);
    ServiceApis {
        name: "insights",
        grpc: tonic::service::Routes::new(grpc::service(insights.clone(), &auth)),
        grpc_service_names: vec!["nearline.insights.v1.InsightsService"],
        http: http::router(insights, auth)
            .merge(billboard_proxy::router(&config.insights.billboard_url, config.insights.request_timeout)),
    }
}

/// Serves the insights service on `listeners` until `shutdown` is cancelled.
pub async fn run(
    config: Arc<Config>,
    database: Database,
    _log: Arc<dyn EventLog>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<()> {
    let readiness = Readiness::new();
    database.ping().await?;
    let apis = apis(&config, database);
    readiness.set_ready();
    server::serve(apis, listeners, &config.insights.server(), readiness, shutdown).await?;
    Ok(())
}
