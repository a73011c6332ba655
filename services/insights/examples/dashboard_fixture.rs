//! Serves insights over an in-memory SQLite database holding the integration tests'
//! known rows, on free ports, for the dashboard's browser test.
//!
//! Prints `listening http://127.0.0.1:PORT` on stdout once ready, then serves until
//! SIGTERM / SIGINT or until stdin closes (so a test runner that dies takes it along).
//!
//!     cargo run -p nearline-insights --example dashboard_fixture

#[path = "../tests/api/fixture.rs"]
mod fixture;

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use nearline_runtime::Config;
use nearline_runtime::server::Listeners;
use nearline_storage::Database;
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let database = Database::Sqlite(nearline_storage::connect_sqlite(":memory:").await?);
    database.migrate().await?;
    fixture::seed(&database).await.context("seeding the known rows")?;

    let mut config = Config::default();
    config.insights.http_port = 0;
    config.insights.grpc_port = 0;
    let listeners = Listeners::bind(&config.insights.server()).await?;
    let url = format!("http://{}", listeners.http_addr());
    let shutdown = CancellationToken::new();
    let log = Arc::new(nearline_eventlog::memory::MemoryLog::new());
    let server =
        tokio::spawn(nearline_insights::run(Arc::new(config), database, log, listeners, shutdown.clone()));

    let client = reqwest::Client::new();
    nearline_testkit::wait_for("insights to be ready", std::time::Duration::from_secs(10), || async {
        client.get(format!("{url}/readyz")).send().await.ok().filter(|r| r.status().is_success())
    })
    .await;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening {url}")?;
    writeln!(stdout, "dashboard {url}/dashboard?video_id=101&from={}&to={}", fixture::T0, fixture::T2H)?;
    stdout.flush()?;
    drop(stdout);

    let stdin_closed = async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        () = stdin_closed => {}
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    shutdown.cancel();
    server.await?.context("insights failed")?;
    Ok(())
}
