//! Ingest: takes impressions and plays from client apps over gRPC and HTTP, validates them, and publishes them to the event log keyed by request id.
//!
//! The crate is a library: [`run`] serves the service until shutdown; the `nearline`
//! binary wires it to its configuration, database and event log.
//!
//! - [`event`] decodes JSON, NDJSON and protobuf bodies, [`validate`] holds the rules;
//! - `publish` hands accepted batches to the log within a bounded in-flight budget;
//! - [`catalog`] is the `videos` table on Postgres or SQLite;
//! - `http` and `grpc` are the two APIs over one [`Ingest`].

pub mod catalog;
mod error;
pub mod event;
mod grpc;
mod http;
mod metrics;
mod openapi;
mod publish;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use nearline_eventlog::EventLog;
use nearline_proto::events::v1::Event;
use nearline_runtime::auth::Authenticator;
use nearline_runtime::config::IngestConfig;
use nearline_runtime::server::{self, Listeners, ServiceApis};
use nearline_runtime::{Config, Readiness};
use nearline_storage::Database;
use tokio_util::sync::CancellationToken;

pub use error::{ApiError, FieldError};
pub use openapi::DOCUMENT as OPENAPI_DOCUMENT;
pub use publish::Topics;

use crate::catalog::Catalog;
use crate::event::{Decoded, Format};
use crate::publish::Publisher;
use crate::validate::{TimeBounds, Violation};

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serving failed.
    #[error(transparent)]
    Server(#[from] server::Error),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] nearline_storage::Error),
    /// The impressions and plays topics are not co-partitioned.
    #[error(
        "topics {impressions} ({impressions_partitions} partitions) and {plays} ({plays_partitions} partitions) \
         must have the same partition count so that impressions and plays of one request land on the same \
         partition; recreate one of them"
    )]
    NotCoPartitioned {
        /// The impressions topic.
        impressions: String,
        /// Its partition count.
        impressions_partitions: i32,
        /// The plays topic.
        plays: String,
        /// Its partition count.
        plays_partitions: i32,
    },
    /// A topic is missing or the log refused to describe it.
    #[error("checking topic {topic}: {source} (create the topics with `nearline migrate`)")]
    Topic {
        /// The topic.
        topic: String,
        /// Why.
        source: nearline_eventlog::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The ingest service's state, shared by its HTTP and gRPC APIs; cheap to clone.
#[derive(Debug, Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: IngestConfig,
    auth: Authenticator,
    publisher: Publisher,
    catalog: Catalog,
}

/// Bytes of request bodies that may be held at once, per event of the in-flight budget:
/// about twice a typical JSON event, so that the body budget and the event budget run
/// out at about the same load.
const BODY_BYTES_PER_EVENT: usize = 1024;

impl Ingest {
    /// The service over `database` and `log`, publishing to `topics`.
    pub fn new(config: &Config, database: Database, log: Arc<dyn EventLog>, topics: Topics) -> Self {
        metrics::describe();
        let ingest = &config.ingest;
        // Room for at least a few maximal bodies, so one large request is never refused
        // by an idle server.
        let body_bytes = (ingest.max_in_flight_events.saturating_mul(BODY_BYTES_PER_EVENT))
            .max(ingest.body_limit_bytes.saturating_mul(4));
        Self {
            inner: Arc::new(Inner {
                config: ingest.clone(),
                auth: Authenticator::new(&config.auth),
                publisher: Publisher::new(
                    log,
                    topics,
                    ingest.max_in_flight_events,
                    body_bytes.div_ceil(1024),
                ),
                catalog: Catalog::new(database),
            }),
        }
    }

    /// The HTTP routes (`/v1/events`, `/v1/videos/{id}`, `/openapi.json`), without the
    /// shared endpoints and layers that [`server::serve`] adds.
    pub fn router(&self) -> axum::Router {
        http::router(self.clone(), self.inner.auth.clone())
    }

    /// The HTTP and gRPC APIs, ready for [`server::serve`].
    pub fn apis(&self) -> ServiceApis {
        ServiceApis {
            name: "ingest",
            grpc: tonic::service::Routes::new(grpc::service(self.clone(), &self.inner.auth)),
            grpc_service_names: vec!["nearline.ingest.v1.IngestService"],
            http: self.router(),
        }
    }

    /// Checks that both topics exist and are co-partitioned; returns their partition
    /// count. While the log is unreachable it keeps trying, until `shutdown`.
    pub async fn check_topics(&self, shutdown: &CancellationToken) -> Result<Option<i32>> {
        let topics = self.inner.publisher.topics();
        let Some(impressions) = self.partitions(&topics.impressions, shutdown).await? else {
            return Ok(None);
        };
        let Some(plays) = self.partitions(&topics.plays, shutdown).await? else { return Ok(None) };
        if impressions != plays {
            return Err(Error::NotCoPartitioned {
                impressions: topics.impressions.clone(),
                impressions_partitions: impressions,
                plays: topics.plays.clone(),
                plays_partitions: plays,
            });
        }
        Ok(Some(impressions))
    }

    async fn partitions(&self, topic: &str, shutdown: &CancellationToken) -> Result<Option<i32>> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.inner.publisher.log().partition_count(topic).await {
                Ok(count) => return Ok(Some(count)),
                Err(nearline_eventlog::Error::Unavailable(reason)) => {
                    tracing::warn!(topic, %reason, "event log unavailable at start-up; retrying in {backoff:?}");
                }
                Err(source) => return Err(Error::Topic { topic: topic.to_owned(), source }),
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                () = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(Duration::from_secs(5)),
            }
        }
    }

    /// Decodes, validates and publishes one request body; the number of events accepted.
    pub async fn accept_body(&self, format: Format, body: &[u8]) -> Result<usize, ApiError> {
        let config = &self.inner.config;
        let decoded = event::decode(format, body, &config.default_region, config.max_batch_events).map_err(
            |error| match error {
                event::DecodeError::Malformed { position, reason } => {
                    ApiError::Malformed { position, reason }
                }
                event::DecodeError::TooManyEvents { count, max } => ApiError::TooManyEvents { count, max },
            },
        )?;
        self.accept(decoded).await
    }

    /// Validates and publishes a batch of protobuf events; the number accepted.
    pub async fn accept_events(&self, mut events: Vec<Event>) -> Result<usize, ApiError> {
        let config = &self.inner.config;
        if events.len() > config.max_batch_events {
            return Err(ApiError::TooManyEvents { count: events.len(), max: config.max_batch_events });
        }
        for event in &mut events {
            event::fill_region(event, &config.default_region);
        }
        self.accept(Decoded { events, violations: Vec::new() }).await
    }

    async fn accept(&self, decoded: Decoded) -> Result<usize, ApiError> {
        let config = &self.inner.config;
        let bounds = TimeBounds::now(config.max_event_age, config.max_future_skew);
        let invalid = merge(decoded.violations, validate::check_batch(&decoded.events, &bounds));
        if !invalid.is_empty() {
            count_invalid(&decoded.events, &invalid);
            return Err(ApiError::InvalidEvents(invalid));
        }
        self.inner.publisher.publish(decoded.events).await
    }

    fn body_limit(&self) -> usize {
        self.inner.config.body_limit_bytes
    }

    fn publisher(&self) -> &Publisher {
        &self.inner.publisher
    }

    fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }
}

/// Decoding violations plus those validation found in fields decoding had not already
/// reported (a mistyped field would otherwise be reported twice, the second time about
/// the placeholder that stood in for it).
fn merge(mut decoding: Vec<Violation>, validation: Vec<Violation>) -> Vec<Violation> {
    let reported = |v: &Violation| {
        decoding
            .iter()
            .any(|d| d.index == v.index && (d.field == v.field || d.field == "type" || d.field == "event"))
    };
    let extra: Vec<Violation> = validation.into_iter().filter(|v| !reported(v)).collect();
    decoding.extend(extra);
    // Stable: within an event, decoding order then validation order.
    decoding.sort_by_key(|v| v.index);
    decoding
}

fn count_invalid(events: &[Event], invalid: &[Violation]) {
    for (index, event) in events.iter().enumerate() {
        let bad = invalid.iter().any(|v| v.index == index);
        metrics::rejected(metrics::type_label(event), if bad { "invalid" } else { "invalid_batch" }, 1);
    }
}

/// Serves the ingest service on `listeners` until `shutdown` is cancelled, publishing to
/// nearline's topics.
pub async fn run(
    config: Arc<Config>,
    database: Database,
    log: Arc<dyn EventLog>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<()> {
    run_with_topics(config, database, log, Topics::default(), listeners, shutdown).await
}

/// [`run`] with other topic names (tests give each run its own topics).
pub async fn run_with_topics(
    config: Arc<Config>,
    database: Database,
    log: Arc<dyn EventLog>,
    topics: Topics,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<()> {
    let readiness = Readiness::new();
    database.ping().await?;
    let ingest = Ingest::new(&config, database, log, topics);
    // Not ready, and not serving, until the topics are known to be co-partitioned.
    let Some(partitions) = ingest.check_topics(&shutdown).await? else { return Ok(()) };
    tracing::info!(partitions, "impressions and plays topics are co-partitioned");
    readiness.set_ready();
    server::serve(ingest.apis(), listeners, &config.ingest.server(), readiness, shutdown).await?;
    Ok(())
}
