//! `nearline serve`: one service or all four in one process.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use nearline_eventlog::EventLog;
use nearline_runtime::server::Listeners;
use nearline_runtime::{Config, Shutdown};
use nearline_storage::Database;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::backends;
use crate::cli::{ServeArgs, ServiceName};

pub(crate) const ALL: [ServiceName; 4] =
    [ServiceName::Ingest, ServiceName::Attribution, ServiceName::Insights, ServiceName::Billboard];

/// Runs the chosen services until SIGTERM / SIGINT, or until one of them fails (which
/// stops the others).
pub(crate) async fn serve(args: ServeArgs, config: Arc<Config>) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals().context("installing signal handlers")?;
    let services: Vec<ServiceName> = match args.service {
        ServiceName::All => ALL.to_vec(),
        one => vec![one],
    };
    let suite = Suite::start(config, args.embedded, &services, shutdown).await?;
    // The addresses go to stdout (logs go to stderr) so scripts and tests can read them.
    let mut stdout = std::io::stdout().lock();
    suite.print_addresses(&mut stdout)?;
    drop(stdout);
    suite.wait().await
}

/// Services bound and running in this process, over one set of backends.
pub(crate) struct Suite {
    /// Per service, its HTTP and gRPC addresses.
    pub(crate) addresses: Vec<(ServiceName, SocketAddr, SocketAddr)>,
    /// The database the services use.
    pub(crate) database: Database,
    shutdown: Shutdown,
    backends: backends::Backends,
    log: Arc<dyn EventLog>,
    tasks: JoinSet<(ServiceName, anyhow::Result<()>)>,
    log_failure: Option<tokio::task::JoinHandle<String>>,
}

impl Suite {
    /// Opens the backends, binds every service (a taken port fails the whole start,
    /// before anything runs) and starts them; they stop when `shutdown` triggers.
    pub(crate) async fn start(
        config: Arc<Config>,
        embedded: bool,
        services: &[ServiceName],
        shutdown: Shutdown,
    ) -> anyhow::Result<Self> {
        let backends = backends::open(&config, embedded).await?;
        let (database, log) = (backends.database.clone(), Arc::clone(&backends.log));
        let mut bound = Vec::new();
        for &service in services {
            let server = server_config(&config, service);
            let listeners = match Listeners::bind(&server).await {
                Ok(listeners) => listeners,
                Err(error) => {
                    backends.close().await?;
                    return Err(anyhow::Error::from(error).context(format!("starting {}", name(service))));
                }
            };
            bound.push((service, listeners));
        }
        let addresses: Vec<_> = bound.iter().map(|(s, l)| (*s, l.http_addr(), l.grpc_addr())).collect();
        // Insights relays billboard's read endpoints for the dashboard: when billboard
        // runs in this process, that is the address it really got (port 0 picks one).
        let config = match addresses.iter().find(|(s, _, _)| *s == ServiceName::Billboard) {
            Some((_, http, _)) if services.contains(&ServiceName::Insights) => {
                let mut patched = Config::clone(&config);
                patched.insights.billboard_url = format!("http://{http}");
                Arc::new(patched)
            }
            _ => config,
        };
        let mut tasks = JoinSet::new();
        for (service, listeners) in bound {
            let (config, database, log, token) =
                (config.clone(), database.clone(), log.clone(), shutdown.token());
            tasks
                .spawn(async move { (service, run(service, config, database, log, listeners, token).await) });
        }
        // A failed embedded log accepts nothing more: stop everything, so the process
        // exits with an error and a restart recovers from the files (as with a lost
        // broker, the services alone cannot mend it).
        let log_failure = backends.durable().cloned().map(|durable| {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let why = durable.failed().await;
                tracing::error!(error = %why, "the embedded event log failed; stopping");
                shutdown.trigger();
                why
            })
        });
        Ok(Self { addresses, database, shutdown, backends, log, tasks, log_failure })
    }

    /// `name http://addr  grpc://addr` per service.
    pub(crate) fn print_addresses(&self, out: &mut impl Write) -> std::io::Result<()> {
        for (service, http, grpc) in &self.addresses {
            writeln!(out, "{:<12} http://{http}  grpc://{grpc}", name(*service))?;
        }
        out.flush()
    }

    /// Waits until every service has stopped, then closes the backends.
    pub(crate) async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let (service, result) = joined.context("a service task panicked")?;
            if let Err(error) = result {
                tracing::error!(service = name(service), error = %error, "service failed; stopping the others");
                self.shutdown.trigger();
                first_error.get_or_insert(error.context(format!("{} failed", name(service))));
            }
        }
        if let Some(watcher) = self.log_failure {
            if watcher.is_finished() {
                let why = watcher.await.context("the event log watcher panicked")?;
                first_error.get_or_insert(anyhow::anyhow!(
                    "the embedded event log failed: {why}; restart to recover from its files"
                ));
            } else {
                watcher.abort();
            }
        }
        // Every service has stopped: ingest answered its last request (each acknowledged
        // batch already on disk or in Kafka) and attribution flushed and committed. Only
        // now is the log closed.
        drop(self.log);
        let closed = self.backends.close().await;
        match (first_error, closed) {
            (Some(error), _) => Err(error),
            (None, closed) => closed,
        }
    }
}

async fn run(
    service: ServiceName,
    config: Arc<Config>,
    database: Database,
    log: Arc<dyn EventLog>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    match service {
        ServiceName::Ingest => nearline_ingest::run(config, database, log, listeners, shutdown).await?,
        ServiceName::Attribution => {
            nearline_attribution::run(config, database, log, listeners, shutdown).await?
        }
        ServiceName::Insights => nearline_insights::run(config, database, log, listeners, shutdown).await?,
        ServiceName::Billboard => nearline_billboard::run(config, database, log, listeners, shutdown).await?,
        ServiceName::All => unreachable!("expanded into the four services"),
    }
    Ok(())
}

fn server_config(config: &Config, service: ServiceName) -> nearline_runtime::config::ServerConfig {
    match service {
        ServiceName::Ingest => config.ingest.server(),
        ServiceName::Attribution => config.attribution.server(),
        ServiceName::Insights => config.insights.server(),
        ServiceName::Billboard => config.billboard.server(),
        ServiceName::All => unreachable!("expanded into the four services"),
    }
}

pub(crate) fn name(service: ServiceName) -> &'static str {
    match service {
        ServiceName::Ingest => "ingest",
        ServiceName::Attribution => "attribution",
        ServiceName::Insights => "insights",
        ServiceName::Billboard => "billboard",
        ServiceName::All => "all",
    }
}
