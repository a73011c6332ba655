//! Helpers for nearline's integration tests.
//!
//! Tests run against a real Postgres and a real Kafka-protocol broker; `scripts/test.sh`
//! starts both and passes their addresses in `DATABASE_URL` and `NEARLINE_TEST_KAFKA`.
//! A test that needs one of them and does not find it fails with a message that says
//! how to run it, rather than silently passing.

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};

/// Bootstrap address of the test broker, from `NEARLINE_TEST_KAFKA`.
///
/// # Panics
/// When the variable is not set: run the tests through `scripts/test.sh`.
pub fn kafka_bootstrap() -> String {
    std::env::var("NEARLINE_TEST_KAFKA").unwrap_or_else(|_| {
        panic!(
            "NEARLINE_TEST_KAFKA is not set: run the tests with scripts/test.sh, which starts the test broker"
        )
    })
}

/// URL of the Postgres server tests create their databases on, from `DATABASE_URL`.
///
/// # Panics
/// When the variable is not set: run the tests through `scripts/test.sh`.
pub fn postgres_server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL is not set: run the tests with scripts/test.sh, which finds or starts Postgres")
    })
}

/// A name no other test uses, for topics, groups and databases.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh, empty Postgres database that belongs to one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of the new database.
    pub url: String,
    /// Its name.
    pub name: String,
}

impl TestDatabase {
    /// Creates a new empty database on the server at `DATABASE_URL`.
    pub async fn create() -> TestDatabase {
        let server = postgres_server_url();
        let name = unique_name("nearline_test");
        let mut admin = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Postgres at {server}: {e}"));
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let url = with_database(&server, &name);
        TestDatabase { url, name }
    }
}

/// Replaces the database name in a Postgres URL.
fn with_database(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    // The path starts at the first '/' after "scheme://authority".
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// Polls `condition` until it returns `Some`, or panics naming `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_database_in_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/x?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5432", "t1"), "postgres://h:5432/t1");
    }
}
