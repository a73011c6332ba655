//! Database connections and migrations.
//!
//! The distributed deployment keeps its state in Postgres, the embedded one in a SQLite
//! file; both have the same tables, created by the migrations under `migrations/postgres`
//! and `migrations/sqlite` at the workspace root, which are compiled into the binary.
//! Applying migrations is idempotent: running `nearline migrate` twice changes nothing.

pub mod progress;
pub mod rollups;

use std::str::FromStr;
use std::time::Duration;

use nearline_runtime::config::DatabaseConfig;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, SqlitePool};

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached or created.
    #[error("cannot connect to {what} at {location}: {source}")]
    Connect {
        /// `Postgres` or `SQLite`.
        what: &'static str,
        /// Where, with any password masked.
        location: String,
        /// The driver error.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("migrating {what} failed: {source}")]
    Migrate {
        /// `Postgres` or `SQLite`.
        what: &'static str,
        /// The migration error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The database of either deployment.
#[derive(Debug, Clone)]
pub enum Database {
    /// Distributed: shared Postgres.
    Postgres(PgPool),
    /// Embedded: a SQLite file.
    Sqlite(SqlitePool),
}

impl Database {
    /// Applies the migrations of this backend; a no-op when they are all applied.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Database::Postgres(pool) => POSTGRES_MIGRATIONS
                .run(pool)
                .await
                .map_err(|source| Error::Migrate { what: "Postgres", source }),
            Database::Sqlite(pool) => {
                SQLITE_MIGRATIONS.run(pool).await.map_err(|source| Error::Migrate { what: "SQLite", source })
            }
        }
    }

    /// Forgets every consumer's stored stream progress (for an event log that starts
    /// empty, so the stored offsets point at records it never had).
    pub async fn forget_stream_progress(&self) -> Result<()> {
        const FORGET: &str = "DELETE FROM partition_progress";
        match self {
            Database::Postgres(pool) => sqlx::query(FORGET).execute(pool).await.map(drop)?,
            Database::Sqlite(pool) => sqlx::query(FORGET).execute(pool).await.map(drop)?,
        }
        Ok(())
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        match self {
            Database::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
            Database::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
        }
        Ok(())
    }
}

/// Connects to Postgres, creating the database first when `create_if_missing` is set
/// (for `nearline migrate`; services expect it to exist).
pub async fn connect_postgres(config: &DatabaseConfig, create_if_missing: bool) -> Result<PgPool> {
    let url = config.url.as_str();
    let connect_error = |source| Error::Connect { what: "Postgres", location: config.url.masked(), source };
    if create_if_missing && !Postgres::database_exists(url).await.map_err(connect_error)? {
        tracing::info!(url = %config.url.masked(), "creating database");
        Postgres::create_database(url).await.map_err(connect_error)?;
    }
    PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .connect(url)
        .await
        .map_err(connect_error)
}

/// Opens (creating when missing) the SQLite database file at `path`; `:memory:` gives a
/// private in-memory database.
pub async fn connect_sqlite(path: &str) -> Result<SqlitePool> {
    let connect_error = |source| Error::Connect { what: "SQLite", location: path.to_string(), source };
    let in_memory = path == ":memory:";
    let options = if in_memory {
        SqliteConnectOptions::from_str("sqlite::memory:").map_err(connect_error)?
    } else {
        SqliteConnectOptions::new().filename(path).create_if_missing(true)
    }
    // WAL lets readers (insights) run while the join writes.
    .journal_mode(SqliteJournalMode::Wal)
    .synchronous(SqliteSynchronous::Normal)
    .busy_timeout(Duration::from_secs(10))
    .foreign_keys(true);
    SqlitePoolOptions::new()
        // An in-memory database lives in one connection; keep exactly that one.
        .max_connections(if in_memory { 1 } else { 8 })
        .min_connections(if in_memory { 1 } else { 0 })
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options)
        .await
        .map_err(connect_error)
}
