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

/// Counts and members written before cells had a region keep every count, in region
/// `''`, in the cells and every roll-up; afterwards the same cell in a named region is a
/// cell of its own.
async fn counts_before_regions_keep_them_in_region_none(database: Database, dir: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(dir);
    let all = sqlx::migrate::Migrator::new(path).await.expect("read migrations");
    let before: Vec<_> = all.migrations.iter().filter(|m| m.version < 20261201000060).cloned().collect();
    let before = sqlx::migrate::Migrator::with_migrations(before);
    let cell = "7, 1795132800000, 'US', 'tv', 'row'";
    let setup = format!(
        "INSERT INTO impression_members (video_id, epoch_start_ms, country, device, canvas, request_id)
             VALUES ({cell}, 'r1'), ({cell}, 'r2');
         INSERT INTO play_members (video_id, epoch_start_ms, country, device, canvas, request_id)
             VALUES ({cell}, 'r1');
         INSERT INTO cell_counts (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
             VALUES ({cell}, 2, 1);
         INSERT INTO unattributed_members (video_id, epoch_start_ms, country, device, request_id)
             VALUES (7, 1795132800000, 'US', 'tv', 'r9');
         INSERT INTO unattributed_counts (video_id, epoch_start_ms, country, device, plays)
             VALUES (7, 1795132800000, 'US', 'tv', 1);"
    );
    // The roll-ups as attribution kept them then (hour and day start at the cell's epoch).
    let rollups: String = [
        ("cell_counts_hourly", "'US', 'tv', 'row'"),
        ("country_device_counts_daily", "'US', 'tv', ''"),
        ("title_counts_daily", "'', '', ''"),
    ]
    .map(|(table, dims)| {
        format!(
            "INSERT INTO {table} (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
                 VALUES (7, 1795132800000, {dims}, 2, 1);"
        )
    })
    .concat();
    let setup = sqlx::AssertSqlSafe(setup + &rollups);
    let after = sqlx::AssertSqlSafe(format!(
        "INSERT INTO cell_counts (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays)
             VALUES ({cell}, 'eu-west', 5, 0)"
    ));
    let tables = ["cell_counts", "cell_counts_hourly", "country_device_counts_daily", "title_counts_daily"];
    let read = |table: &str| {
        sqlx::AssertSqlSafe(format!("SELECT region, impressions, plays FROM {table} ORDER BY region"))
    };
    let members = "SELECT region, count(*) FROM impression_members GROUP BY region";
    let unattributed = "SELECT region, plays FROM unattributed_counts";
    type Rows = Vec<(String, i64, i64)>;
    type ByRegion = Vec<(String, i64)>;
    // The same steps on either backend's pool (their types differ, the SQL does not).
    macro_rules! upgrade_and_read {
        ($pool:expr) => {{
            let pool = $pool;
            before.run(pool).await.expect("earlier migrations");
            sqlx::raw_sql(setup).execute(pool).await.expect("seed");
            database.migrate().await.expect("the rest");
            sqlx::query(after).execute(pool).await.expect("a cell in a region");
            let mut by_table = Vec::new();
            for table in tables {
                by_table.push(sqlx::query_as(read(table)).fetch_all(pool).await.unwrap());
            }
            (
                by_table,
                sqlx::query_as(members).fetch_all(pool).await.unwrap(),
                sqlx::query_as(unattributed).fetch_all(pool).await.unwrap(),
            )
        }};
    }
    let (by_table, members, unattributed): (Vec<Rows>, ByRegion, ByRegion) = match &database {
        Database::Postgres(pool) => upgrade_and_read!(pool),
        Database::Sqlite(pool) => upgrade_and_read!(pool),
    };
    assert_eq!(by_table[0], [(String::new(), 2, 1), ("eu-west".to_string(), 5, 0)], "cell_counts");
    for (table, rows) in tables.iter().zip(&by_table).skip(1) {
        assert_eq!(rows, &[(String::new(), 2, 1)], "{table}");
    }
    assert_eq!(members, [(String::new(), 2)]);
    assert_eq!(unattributed, [(String::new(), 1)]);
}

#[tokio::test]
async fn counts_before_regions_keep_them_in_region_none_on_postgres() {
    let test_db = TestDatabase::create().await;
    let config = DatabaseConfig { url: DatabaseUrl::new(test_db.url.clone()), ..DatabaseConfig::default() };
    let pool = connect_postgres(&config, false).await.expect("connect");
    counts_before_regions_keep_them_in_region_none(Database::Postgres(pool), "postgres").await;
}

#[tokio::test]
async fn counts_before_regions_keep_them_in_region_none_on_sqlite() {
    let pool = connect_sqlite(":memory:").await.expect("open");
    counts_before_regions_keep_them_in_region_none(Database::Sqlite(pool), "sqlite").await;
}
