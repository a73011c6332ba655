//! `nearline serve attribution`: the streaming worker plus its gRPC API.

use std::sync::Arc;

use nearline_eventlog::EventLog;
use nearline_proto::attribution::v1::attribution_service_server::AttributionServiceServer;
use nearline_runtime::auth::Authenticator;
use nearline_runtime::config::AttributionConfig;
use nearline_runtime::server::{self, Listeners, ServiceApis};
use nearline_runtime::{Config, Readiness};
use nearline_storage::Database;
use tokio_util::sync::CancellationToken;

use crate::catalog::CatalogCache;
use crate::grpc::AttributionApi;
use crate::join::JoinConfig;
use crate::status::StatusBoard;
use crate::store::{ProgressKey, Store};
use crate::topics::Topics;
use crate::worker::{self, WorkerConfig};
use crate::{Error, Result};

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The join durations of the configuration.
pub fn join_config(config: &AttributionConfig) -> JoinConfig {
    JoinConfig {
        epoch_len_ms: millis(config.epoch_len),
        skew_ms: millis(config.skew),
        attribution_window_ms: millis(config.attribution_window),
        allowed_lateness_ms: millis(config.allowed_lateness),
        reward_window_ms: millis(config.reward_window),
        reward_grace_ms: millis(config.reward_grace),
        ..JoinConfig::default()
    }
}

/// The store of the configured group and topics.
pub fn store(config: &AttributionConfig, database: Database, topics: &Topics) -> Store {
    let key = ProgressKey {
        group: config.consumer_group.clone(),
        topics: topics.sources().into_iter().map(|s| s.name).collect(),
    };
    Store::new(database, key, millis(config.epoch_len))
}

/// The topics of the configuration: the standard names, with `kafka.mirrored_regions`.
pub fn topics(config: &Config) -> Topics {
    Topics::default().with_mirrored_regions(&config.kafka.mirrored_regions)
}

/// Checks that every source topic exists and all are co-partitioned with the local
/// impressions topic; the join is wrong otherwise. A mirrored topic that is missing
/// names the region, as the mirror (not nearline) creates it.
pub async fn check_topics(log: &dyn EventLog, topics: &Topics) -> Result<i32> {
    let impressions = log.partition_count(&topics.impressions).await?;
    for source in topics.sources().into_iter().skip(1) {
        let counted = log.partition_count(&source.name).await;
        let partitions = match counted {
            Ok(partitions) => partitions,
            Err(nearline_eventlog::Error::UnknownTopic(_)) if source.region.is_some() => {
                return Err(Error::MirrorMissing {
                    region: source.region.unwrap_or_default(),
                    topic: source.name,
                });
            }
            Err(error) => return Err(error.into()),
        };
        if partitions != impressions {
            return Err(Error::NotCoPartitioned {
                impressions_topic: topics.impressions.clone(),
                impressions,
                plays_topic: source.name,
                plays: partitions,
            });
        }
    }
    Ok(impressions)
}

/// Serves attribution until `shutdown`: the worker joins the stream, the gRPC API
/// reports progress. If the worker fails, the service stops.
pub async fn run(
    config: Arc<Config>,
    database: Database,
    log: Arc<dyn EventLog>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<()> {
    crate::metrics::describe();
    let topics = topics(&config);
    let partitions = check_topics(log.as_ref(), &topics).await?;
    let catalog = CatalogCache::empty();
    // Start with the catalog loaded so the first outcomes are enriched; an unreachable
    // database fails here, before the worker takes partitions.
    let titles = catalog.refresh(&database).await.map_err(Error::Database)?;
    tracing::info!(titles, "video catalog loaded");
    let store = store(&config.attribution, database.clone(), &topics);
    let status = StatusBoard::default();
    let worker_config = WorkerConfig {
        join: join_config(&config.attribution),
        group: config.attribution.consumer_group.clone(),
        topics: topics.clone(),
        batch_interval: config.attribution.batch_interval,
        max_batch_inputs: 200_000,
    };
    worker_config.join.validate()?;

    let api = AttributionApi {
        store: store.clone(),
        status: status.clone(),
        log: log.clone(),
        topics,
        allowed_lateness_ms: worker_config.join.allowed_lateness_ms,
    };
    let auth = Authenticator::new(&config.auth);
    let apis = ServiceApis {
        name: "attribution",
        grpc: tonic::service::Routes::new(tonic::service::interceptor::InterceptedService::new(
            AttributionServiceServer::new(api),
            auth.interceptor(),
        )),
        grpc_service_names: vec!["nearline.attribution.v1.AttributionService"],
        http: axum::Router::new(),
    };

    let stop = shutdown.child_token();
    tokio::spawn(catalog.clone().keep_fresh(database, config.attribution.catalog_refresh, stop.clone()));
    // Ready only once the worker owns its partitions with their state replayed, and not
    // while it cannot write (the worker keeps it up to date).
    let readiness = Readiness::new();
    let worker = {
        let (stop, readiness) = (stop.clone(), readiness.clone());
        tokio::spawn(async move {
            let result =
                worker::run(log, store, catalog, worker_config, status, readiness, stop.clone()).await;
            // A failed worker takes the service down so the orchestrator restarts it.
            stop.cancel();
            result
        })
    };
    tracing::info!(partitions, "attribution started");
    let served = server::serve(apis, listeners, &config.attribution.server(), readiness, stop.clone()).await;
    stop.cancel();
    let worked = worker.await.map_err(|e| Error::Worker(e.to_string()))?;
    worked?;
    served?;
    Ok(())
}
