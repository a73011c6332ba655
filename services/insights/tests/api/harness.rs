//! Starting the service on port 0 over a fresh database of either backend, and calling it.

use std::sync::Arc;
use std::time::Duration;

use nearline_proto::insights::v1::insights_service_client::InsightsServiceClient;
use nearline_runtime::Config;
use nearline_runtime::config::Secret;
use nearline_runtime::server::Listeners;
use nearline_storage::Database;
use nearline_testkit::{TestDatabase, wait_for};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::fixture;

/// The storage backend a scenario runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Postgres,
    Sqlite,
}

/// A fresh, migrated database of `backend`.
pub(crate) async fn database(backend: Backend) -> Database {
    let database = match backend {
        Backend::Postgres => {
            let test = TestDatabase::create().await;
            Database::Postgres(sqlx::PgPool::connect(&test.url).await.expect("connect to the test database"))
        }
        Backend::Sqlite => Database::Sqlite(
            nearline_storage::connect_sqlite(":memory:").await.expect("open in-memory SQLite"),
        ),
    };
    database.migrate().await.expect("migrate");
    database
}

/// A fresh database of `backend` holding the known rows.
pub(crate) async fn seeded(backend: Backend) -> Database {
    let database = database(backend).await;
    fixture::seed(&database).await.expect("seed the known rows");
    database
}

/// Test configuration: free ports, a 7-day maximum range, the given tokens.
pub(crate) fn config(tokens: &[&str]) -> Config {
    let mut config = Config::default();
    config.insights.http_port = 0;
    config.insights.grpc_port = 0;
    config.insights.max_range = Duration::from_secs(7 * 24 * 3600);
    config.auth.tokens = tokens.iter().map(|t| Secret::new(*t)).collect();
    config
}

/// A running service; stopped when dropped.
pub(crate) struct Server {
    pub(crate) http: String,
    pub(crate) grpc: String,
    token: Option<String>,
    shutdown: CancellationToken,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts the service over `database` with `config` and waits until it is ready.
pub(crate) async fn start(database: Database, config: Config) -> Server {
    let token = config.auth.tokens.first().map(|t| t.expose().to_string());
    let listeners = Listeners::bind(&config.insights.server()).await.expect("bind port 0");
    let http = format!("http://{}", listeners.http_addr());
    let grpc = format!("http://{}", listeners.grpc_addr());
    let shutdown = CancellationToken::new();
    let log = Arc::new(nearline_eventlog::memory::MemoryLog::new());
    tokio::spawn(nearline_insights::run(Arc::new(config), database, log, listeners, shutdown.clone()));
    let client = reqwest::Client::new();
    let ready = format!("{http}/readyz");
    wait_for("insights to be ready", Duration::from_secs(10), || async {
        client.get(&ready).send().await.ok().filter(|r| r.status().is_success())
    })
    .await;
    Server { http, grpc, token, shutdown, client }
}

impl Server {
    /// `GET path` with the configured token (if any); status and JSON body.
    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let mut request = self.client.get(format!("{}{path}", self.http));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    /// `GET path` without any token.
    pub(crate) async fn get_anonymous(&self, path: &str) -> (u16, String) {
        let response = self.client.get(format!("{}{path}", self.http)).send().await.expect("HTTP request");
        (response.status().as_u16(), response.text().await.expect("body"))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"));
        (status, body)
    }

    /// A gRPC client of the service.
    pub(crate) async fn grpc_client(&self) -> InsightsServiceClient<Channel> {
        InsightsServiceClient::connect(self.grpc.clone()).await.expect("gRPC connect")
    }
}

/// Asserts a 400 naming `param`, and returns the message.
pub(crate) fn assert_invalid((status, body): (u16, Value), param: &str) -> String {
    assert_eq!(status, 400, "expected 400 for {param}, got {status}: {body}");
    assert_eq!(body["error"], "invalid_argument", "{body}");
    assert_eq!(body["parameter"], param, "{body}");
    let message = body["message"].as_str().expect("message").to_string();
    assert!(message.starts_with(&format!("{param}: ")), "message does not name {param}: {message}");
    message
}

/// Asserts two rates are equal up to rounding.
pub(crate) fn assert_rate(actual: &Value, expected: f64) {
    let actual = actual.as_f64().unwrap_or_else(|| panic!("expected a take rate, got {actual}"));
    assert!((actual - expected).abs() < 1e-9, "take rate {actual} != {expected}");
}
