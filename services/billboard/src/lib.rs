//! Billboard: picks the homepage billboard title and each title's artwork with bandits that learn from joined plays.
//!
//! The crate is a library: [`run`] serves the service until shutdown; the `nearline`
//! binary wires it to its configuration, database and event log.
//!
//! - [`policy`]: the bandit policies, pure (no I/O) and property-tested;
//! - [`sim`]: a seeded simulated world the policies are measured in;
//! - [`service`]: the decisions over the catalog and model snapshots, shared by
//!   `http` and `grpc`; [`error`] is their one error type;
//! - [`catalog`]: titles, artworks and the pool; [`store`]: the learned state;
//! - [`learn`]: learning from `nearline.outcomes.v1` exactly once; [`history`]: what it
//!   learned per policy over time;
//! - [`priors`]: cold-start priors from insights' launch early reads;
//! - [`request_id`]: the request ids billboard mints.

pub mod catalog;
pub mod error;
pub mod grpc;
pub mod history;
pub mod http;
pub mod learn;
pub mod lease;
mod metrics;
pub mod policy;
pub mod priors;
pub mod request_id;
pub mod service;
pub mod sim;
pub mod store;

use std::sync::Arc;

use nearline_eventlog::EventLog;
use nearline_runtime::server::{self, Listeners, ServiceApis};
use nearline_runtime::{Config, Readiness};
use nearline_storage::Database;
use tokio_util::sync::CancellationToken;

pub use service::Billboard;

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving failed.
    #[error(transparent)]
    Server(#[from] server::Error),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] nearline_storage::Error),
    /// The catalog or the learned state could not be loaded.
    #[error("loading the billboard state: {0}")]
    Load(#[source] error::ApiError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Billboard {
    /// The HTTP and gRPC APIs, ready for [`server::serve`].
    pub fn apis(&self) -> ServiceApis {
        ServiceApis {
            name: "billboard",
            grpc: tonic::service::Routes::new(grpc::service(self.clone(), self.auth())),
            grpc_service_names: vec!["nearline.billboard.v1.BillboardService"],
            http: http::router(self.clone(), self.auth().clone()),
        }
    }
}

/// Serves the billboard service on `listeners` until `shutdown` is cancelled, learning
/// from the outcomes topic all along.
pub async fn run(
    config: Arc<Config>,
    database: Database,
    log: Arc<dyn EventLog>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<()> {
    let readiness = Readiness::new();
    database.ping().await?;
    let b = &config.billboard;
    let learn_config = learn::LearnConfig {
        group: b.consumer_group.clone(),
        topic: b.outcomes_topic.clone(),
        flush_interval: b.flush_interval,
        lease: b.learner_lease,
        // SQLite is embedded mode, whose data directory lock admits one process.
        exclusive: matches!(database, Database::Sqlite(_)),
    };
    let billboard = Billboard::open(&config, database, &learn_config.group, &learn_config.topic)
        .await
        .map_err(Error::Load)?;
    // The learner and the catalog refresh stop with the server; the learner saves what
    // it read before it returns.
    let background = shutdown.child_token();
    let learner = tokio::spawn(learn::run(billboard.clone(), log, learn_config, background.clone()));
    let refresh = tokio::spawn(refresh_catalog(billboard.clone(), b.catalog_refresh, background.clone()));
    let priors = (!b.insights_url.trim().is_empty()).then(|| {
        let priors_config = priors::PriorsConfig {
            url: b.insights_url.clone(),
            token: config.auth.tokens.first().map(|t| t.expose().to_string()),
            every: b.catalog_refresh,
        };
        tokio::spawn(priors::run(billboard.clone(), priors_config, background.clone()))
    });
    readiness.set_ready();
    let mut apis = billboard.apis();
    apis.http =
        apis.http.merge(history::router(billboard.clone(), config.attribution.consumer_group.clone()));
    let served = server::serve(apis, listeners, &b.server(), readiness, shutdown).await;
    background.cancel();
    let _ = learner.await;
    let _ = refresh.await;
    if let Some(priors) = priors {
        let _ = priors.await;
    }
    served?;
    Ok(())
}

async fn refresh_catalog(billboard: Billboard, every: std::time::Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(error) = billboard.reload_catalog().await {
            tracing::warn!(%error, "reloading the billboard catalog failed");
        }
    }
}
