//! The roll-ups agree with the cells: for random facts written by attribution's store
//! (in batches, with repeats), every insights query answered from the roll-ups (every
//! one of them: all dimensions, country, device and region, title totals; hourly and daily)
//! equals the same query answered from the cells alone: series and totals at every
//! granularity, grouped and filtered, and top titles (hence every ranking of them, by
//! plays, impressions or take rate with `min_impressions`). The same queries are asked
//! again after more facts arrive, late ones included (as backfill writes them), so a
//! day cached by the first round must be read again exactly when it changed. On SQLite
//! for many random cases and on Postgres for a few.

use std::sync::Arc;

use nearline_attribution::join::{Cell, CellDims, CellMember, RequestId};
use nearline_attribution::store::{Facts, ProgressKey, Store};
use nearline_insights::query::RangeRules;
use nearline_insights::query::{
    self, Dimension, Filters, Granularity, Metric, PerformanceQuery, TimeRange, TitleCounts,
};
use nearline_insights::repository::Repository;
use nearline_insights::{Insights, Settings};
use nearline_storage::Database;
use proptest::prelude::*;

const EPOCH: i64 = 30 * 60_000;
/// 2026-11-20T00:00:00Z, a day boundary.
const T0: i64 = 1_795_132_800_000;
/// Three days of epochs.
const EPOCHS: i64 = 3 * 48;

fn dims(i: u8) -> &'static CellDims {
    // Interned for the life of the test process, as the join does.
    static ALL: std::sync::OnceLock<Vec<&'static CellDims>> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        let mut all = Vec::new();
        for country in ["US", "BR"] {
            for device in ["tv", "web"] {
                for canvas in ["row", "billboard"] {
                    for region in ["us-east", "eu-west"] {
                        let dims = CellDims {
                            country: country.into(),
                            device: device.into(),
                            canvas: canvas.into(),
                            region: region.into(),
                        };
                        all.push(&*Box::leak(Box::new(dims)));
                    }
                }
            }
        }
        all
    });
    all[usize::from(i) % all.len()]
}

/// A fact: (played, video, epoch offset, dims, request).
type Spec = (bool, i64, i64, u8, u16);

fn member(&(_, video, epoch, d, request): &Spec) -> CellMember {
    let cell = Cell { video_id: video, epoch: T0 / EPOCH + epoch, dims: dims(d) };
    CellMember { cell, request_id: RequestId::Text(Arc::from(format!("r{request}"))) }
}

async fn write(database: &Database, facts: &[Spec], batches: usize) {
    let key = ProgressKey { group: "g".into(), topics: vec!["i".into(), "p".into()] };
    let store = Store::new(database.clone(), key, EPOCH);
    for chunk in facts.chunks(facts.len().div_ceil(batches).max(1)) {
        let impressions: Vec<CellMember> = chunk.iter().map(member).collect();
        let plays: Vec<CellMember> = chunk.iter().filter(|s| s.0).map(member).collect();
        let facts = Facts {
            impressions: &impressions,
            plays: &plays,
            unattributed: &[],
            retract_unattributed: false,
        };
        store.write(facts, &[]).await.expect("written");
    }
}

/// A query: (video, from epoch, epochs long, granularity, group_by bits, filter bits).
type QuerySpec = (i64, i64, i64, u8, u8, u8);

fn performance(&(video, from, len, granularity, group, filter): &QuerySpec) -> PerformanceQuery {
    let from_ms = T0 + from * EPOCH;
    let range = TimeRange { from_ms, to_ms: from_ms + len.max(1) * EPOCH };
    let granularity = [Granularity::Epoch, Granularity::Hour, Granularity::Day][usize::from(granularity % 3)];
    let group_by = Dimension::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| group & (1 << i) != 0)
        .map(|(_, d)| d)
        .collect();
    PerformanceQuery { video_id: video, range, granularity, group_by, filters: filters(filter) }
}

fn filters(bits: u8) -> Filters {
    let pick = |bit: u8, value: &str| if bits & bit != 0 { vec![value.to_owned()] } else { Vec::new() };
    Filters {
        country: pick(1, "US"),
        device: pick(2, "web"),
        canvas: pick(4, "billboard"),
        region: pick(8, "eu-west"),
    }
}

fn sorted(mut titles: Vec<TitleCounts>) -> Vec<TitleCounts> {
    titles.sort_by_key(|t| t.video_id);
    titles
}

async fn check(database: Database, facts: Vec<Spec>, batches: usize, split: usize, queries: Vec<QuerySpec>) {
    database.migrate().await.expect("migrated");
    let catalog = "INSERT INTO videos (video_id, title, kind) VALUES (1, 'a', 'movie'), (2, 'b', 'movie'), (3, 'c', 'movie')";
    match &database {
        Database::Postgres(pool) => sqlx::query(catalog).execute(pool).await.map(drop),
        Database::Sqlite(pool) => sqlx::query(catalog).execute(pool).await.map(drop),
    }
    .expect("catalog");
    // One repository and one service for both rounds, so their caches carry over.
    let cached = Repository::new(database.clone());
    let settings = Settings {
        rules: RangeRules { epoch_ms: EPOCH, max_range_ms: 30 * 86_400_000 },
        allowed_lateness_ms: 0,
        consumer_group: "g".into(),
        launch_lookback_ms: 0,
    };
    let insights = Insights::new(Repository::new(database.clone()), settings);
    let (rollups, cells) = (Repository::uncached(database.clone()), Repository::cells_only(database.clone()));
    let (first, later) = facts.split_at(split.min(facts.len()));
    for (round, facts) in [first, later].into_iter().enumerate() {
        if !facts.is_empty() {
            write(&database, facts, batches).await;
        }
        for spec in &queries {
            let q = performance(spec);
            let bucket = q.granularity.bucket_ms(EPOCH);
            let from_cells = query::build_series(cells.performance(&q, bucket).await.unwrap(), &q.group_by);
            let from_rollups =
                query::build_series(rollups.performance(&q, bucket).await.unwrap(), &q.group_by);
            assert_eq!(from_rollups, from_cells, "performance {q:?}");
            let from_cache = query::build_series(cached.performance(&q, bucket).await.unwrap(), &q.group_by);
            assert_eq!(from_cache, from_cells, "performance with the day cache, round {round}, {q:?}");
            let served = insights.performance(q.clone()).await.unwrap();
            assert_eq!(
                (served.series.points.clone(), served.totals),
                from_cells,
                "performance from the service's results, round {round}, {q:?}"
            );

            let top_rollups = sorted(rollups.title_counts(q.range, &q.filters).await.unwrap());
            let top_cells = sorted(cells.title_counts(q.range, &q.filters).await.unwrap());
            assert_eq!(top_rollups, top_cells, "top titles {:?} {:?}", q.range, q.filters);
            for (metric, min_impressions) in
                [(Metric::Plays, 0), (Metric::Impressions, 0), (Metric::TakeRate, 2)]
            {
                assert_eq!(
                    query::rank(top_rollups.clone(), metric, min_impressions, 10),
                    query::rank(top_cells.clone(), metric, min_impressions, 10)
                );
            }
        }
    }
}

fn facts() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec((any::<bool>(), 1i64..4, 0..EPOCHS, any::<u8>(), 0u16..400), 1..200)
}

fn queries() -> impl Strategy<Value = Vec<QuerySpec>> {
    prop::collection::vec((1i64..4, 0..EPOCHS, 1..EPOCHS + 4, any::<u8>(), any::<u8>(), any::<u8>()), 1..8)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn rollups_answer_like_cells_on_sqlite(
        facts in facts(), batches in 1usize..4, split in 0usize..200, queries in queries(),
    ) {
        runtime().block_on(async {
            let path = std::env::temp_dir().join(format!("{}.sqlite", nearline_testkit::unique_name("rollups")));
            let pool = nearline_storage::connect_sqlite(path.to_str().unwrap()).await.expect("sqlite");
            check(Database::Sqlite(pool), facts, batches, split, queries).await;
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn rollups_answer_like_cells_on_postgres(
        facts in facts(), batches in 1usize..4, split in 0usize..200, queries in queries(),
    ) {
        runtime().block_on(async {
            let test_db = nearline_testkit::TestDatabase::create().await;
            let pool = sqlx::PgPool::connect(&test_db.url).await.expect("postgres");
            check(Database::Postgres(pool), facts, batches, split, queries).await;
        });
    }
}

/// `nearline migrate` rolls up counts that existed before the roll-ups did.
#[tokio::test]
async fn migrating_rolls_up_existing_counts() {
    let path =
        std::env::temp_dir().join(format!("{}.sqlite", nearline_testkit::unique_name("rollups_migrate")));
    let pool = nearline_storage::connect_sqlite(path.to_str().unwrap()).await.expect("sqlite");
    let database = Database::Sqlite(pool.clone());
    database.migrate().await.expect("migrated");
    // Counts as an older version wrote them: cells only.
    sqlx::query("DELETE FROM cell_counts_hourly").execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM cell_counts_daily").execute(&pool).await.unwrap();
    for rollup in nearline_storage::rollups::Rollup::ALL {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {}", rollup.table())))
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO cell_counts (video_id, epoch_start_ms, country, device, canvas, impressions, plays) \
         VALUES (7, 1795132800000, 'US', 'tv', 'row', 3, 1), \
         (7, 1795134600000, 'US', 'tv', 'row', 2, 2), (7, 1795219200000, 'US', 'tv', 'row', 5, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE description IN ('rollups', 'rollups by dimensions')")
        .execute(&pool)
        .await
        .unwrap();
    database.migrate().await.expect("migrated again");
    let hourly: Vec<(i64, i64, i64)> =
        sqlx::query_as("SELECT epoch_start_ms, impressions, plays FROM cell_counts_hourly ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(hourly, [(1_795_132_800_000, 5, 3), (1_795_219_200_000, 5, 0)]);
    let daily: Vec<(i64, i64, i64)> =
        sqlx::query_as("SELECT epoch_start_ms, impressions, plays FROM cell_counts_daily ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(daily, [(1_795_132_800_000, 5, 3), (1_795_219_200_000, 5, 0)]);
    let totals: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT epoch_start_ms, country, impressions, plays FROM title_counts_daily ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(totals, [(1_795_132_800_000, String::new(), 5, 3), (1_795_219_200_000, String::new(), 5, 0)]);
    let by_country_device: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT country, device, canvas FROM country_device_counts_hourly ORDER BY epoch_start_ms",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(by_country_device[0], ("US".into(), "tv".into(), String::new()));
}
