//! Migrations apply on both backends and applying them twice changes nothing.

use nearline_runtime::config::{DatabaseConfig, DatabaseUrl};
use nearline_storage::{Database, connect_postgres, connect_sqlite};
use nearline_testkit::TestDatabase;

const TABLES: [&str; 7] = [
    "videos",
    "partition_progress",
    "impression_members",
    "play_members",
    "cell_counts",
    "unattributed_members",
    "unattributed_counts",
];

#[tokio::test]
async fn postgres_migrations_apply_twice() {
    let test_db = TestDatabase::create().await;
    let config = DatabaseConfig { url: DatabaseUrl::new(test_db.url.clone()), ..DatabaseConfig::default() };
    let pool = connect_postgres(&config, false).await.expect("connect");
    let database = Database::Postgres(pool.clone());
    database.migrate().await.expect("first run");
    let applied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&pool).await.unwrap();
    database.migrate().await.expect("second run");
    let again: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&pool).await.unwrap();
    assert_eq!(applied, again, "the second run applied nothing new");
    for table in TABLES {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(exists, "table {table} exists");
    }
}

#[tokio::test]
async fn postgres_database_is_created_when_missing() {
    let server = nearline_testkit::postgres_server_url();
    let name = nearline_testkit::unique_name("nearline_created");
    let test_db = TestDatabase::create().await;
    let url = test_db.url.replace(&test_db.name, &name);
    assert!(url.contains(&name), "URL {url} names the new database ({server})");
    let config = DatabaseConfig { url: DatabaseUrl::new(url), ..DatabaseConfig::default() };
    let pool = connect_postgres(&config, true).await.expect("created and connected");
    Database::Postgres(pool).migrate().await.expect("migrated");
}

#[tokio::test]
async fn sqlite_migrations_apply_twice() {
    let dir = std::env::temp_dir().join(nearline_testkit::unique_name("nearline_sqlite"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nearline.db");
    let path = path.to_str().unwrap();
    for run in ["first", "second"] {
        // Reopen the file each time, as two `nearline migrate` runs would.
        let pool = connect_sqlite(path).await.expect("open");
        Database::Sqlite(pool.clone()).migrate().await.unwrap_or_else(|e| panic!("{run} run: {e}"));
        for table in TABLES {
            let found: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
                    .bind(table)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            assert_eq!(found, 1, "table {table} exists after the {run} run");
        }
        pool.close().await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Artworks that billboard stored in its own table before the catalog carried them are
/// folded into `videos.artworks` (sorted, as billboard read them), and the table goes.
async fn billboard_artworks_fold_into_the_catalog(database: Database, dir: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(dir);
    let all = sqlx::migrate::Migrator::new(path).await.expect("read migrations");
    let before: Vec<_> = all.migrations.iter().filter(|m| m.version < 20261201000020).cloned().collect();
    let before = sqlx::migrate::Migrator::with_migrations(before);
    let setup = "INSERT INTO videos (video_id, title, kind) VALUES (1, 'a', 'movie'), (2, 'b', 'movie');
        INSERT INTO billboard_artworks (video_id, artwork_id) VALUES (1, 'st-hero'), (1, 'st-duo');";
    match &database {
        Database::Postgres(pool) => {
            before.run(pool).await.expect("earlier migrations");
            sqlx::raw_sql(setup).execute(pool).await.expect("seed");
        }
        Database::Sqlite(pool) => {
            before.run(pool).await.expect("earlier migrations");
            sqlx::raw_sql(setup).execute(pool).await.expect("seed");
        }
    }
    database.migrate().await.expect("the rest");
    let query = "SELECT video_id, artworks FROM videos ORDER BY video_id";
    let (rows, table): (Vec<(i64, String)>, bool) = match &database {
        Database::Postgres(pool) => (
            sqlx::query_as(query).fetch_all(pool).await.unwrap(),
            sqlx::query_scalar("SELECT to_regclass('billboard_artworks') IS NOT NULL")
                .fetch_one(pool)
                .await
                .unwrap(),
        ),
        Database::Sqlite(pool) => (
            sqlx::query_as(query).fetch_all(pool).await.unwrap(),
            sqlx::query_scalar(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'billboard_artworks'",
            )
            .fetch_one(pool)
            .await
            .unwrap(),
        ),
    };
    let parsed: Vec<(i64, Vec<String>)> =
        rows.into_iter().map(|(id, a)| (id, serde_json::from_str(&a).expect("a JSON array"))).collect();
    assert_eq!(parsed, [(1, vec!["st-duo".to_string(), "st-hero".to_string()]), (2, vec![])]);
    assert!(!table, "billboard_artworks is dropped");
}

#[tokio::test]
async fn billboard_artworks_fold_into_the_catalog_on_postgres() {
    let test_db = TestDatabase::create().await;
    let config = DatabaseConfig { url: DatabaseUrl::new(test_db.url.clone()), ..DatabaseConfig::default() };
    let pool = connect_postgres(&config, false).await.expect("connect");
    billboard_artworks_fold_into_the_catalog(Database::Postgres(pool), "postgres").await;
}

#[tokio::test]
async fn billboard_artworks_fold_into_the_catalog_on_sqlite() {
    let pool = connect_sqlite(":memory:").await.expect("open");
    billboard_artworks_fold_into_the_catalog(Database::Sqlite(pool), "sqlite").await;
}
