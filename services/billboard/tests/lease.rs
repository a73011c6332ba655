//! The learner's lease on a real database: one holder at a time, taken over on expiry or
//! release, and a save by an instance that lost it writes nothing (the fence that keeps
//! two server groups of a red/black rollout from both writing the statistics).

use std::collections::HashMap;
use std::time::Duration;

use nearline_billboard::lease::Lease;
use nearline_billboard::policy::stats::{Discount, Observation};
use nearline_billboard::policy::{Arm, Cell, Daypart};
use nearline_billboard::store::{self, Batch, ModelInfo};
use nearline_storage::Database;
use nearline_testkit::TestDatabase;

const GROUP: &str = "billboard-lease-test";
const TOPIC: &str = "outcomes";
const TTL: Duration = Duration::from_secs(10);
const T: i64 = 1_800_000_000_000;

async fn postgres() -> (TestDatabase, Database) {
    let test = TestDatabase::create().await;
    let database = Database::Postgres(sqlx::PgPool::connect(&test.url).await.expect("the test database"));
    database.migrate().await.expect("migrate");
    (test, database)
}

async fn sqlite() -> Database {
    let database = Database::Sqlite(nearline_storage::connect_sqlite(":memory:").await.expect("SQLite"));
    database.migrate().await.expect("migrate");
    database
}

/// One outcome of request `request`, read at `offset` of partition 0.
fn batch(request: &str, offset: i64) -> Batch {
    let cell = Cell { country: "US".into(), device: "tv".into(), daypart: Daypart::Evening };
    Batch {
        observations: vec![Observation {
            request_id: request.into(),
            arm: Arm::new(1, "a"),
            cell,
            played: true,
            time_ms: T,
        }],
        offsets: [(0, offset + 1)].into(),
        ..Batch::default()
    }
}

async fn save(database: &Database, lease: &Lease, batch: &Batch, now_ms: i64) -> Option<u64> {
    let discount = Discount::new(7 * 24 * 3_600_000);
    let saved =
        store::save(database, lease, TOPIC, &HashMap::new(), ModelInfo::default(), batch, discount, now_ms)
            .await
            .expect("save");
    saved.map(|s| s.applied)
}

async fn one_holder_at_a_time(database: Database) {
    let (first, second) = (Lease::new(GROUP, TTL), Lease::new(GROUP, TTL));
    assert!(first.acquire(&database, T).await.unwrap(), "a free lease is taken");
    assert!(!second.acquire(&database, T + 1).await.unwrap(), "a held, unexpired lease is not");
    assert!(first.acquire(&database, T + 2).await.unwrap(), "the holder may acquire again");
    assert!(first.renew(&database, T + 3).await.unwrap());
    assert!(!second.renew(&database, T + 3).await.unwrap(), "only the holder renews");
    assert_eq!(save(&database, &first, &batch("r1", 0), T + 4).await, Some(1), "the holder saves");

    // The holder stops renewing (killed): the lease expires and the other takes it.
    let expired = T + 4 + TTL.as_millis() as i64 + 1;
    assert!(second.acquire(&database, expired).await.unwrap(), "an expired lease is taken over");
    assert_eq!(
        save(&database, &first, &batch("r2", 1), expired + 1).await,
        None,
        "a save after the lease was lost is refused"
    );
    let state = store::load(&database, GROUP, TOPIC).await.unwrap();
    assert_eq!(state.offsets, [(0, 1)].into(), "the refused save wrote no offset");
    assert_eq!(state.info.version, 1, "nor a model version");
    assert_eq!(save(&database, &second, &batch("r2", 1), expired + 2).await, Some(1));

    // Released on the way out: taken at once, no expiry to wait for.
    second.release(&database).await.unwrap();
    assert!(first.acquire(&database, expired + 3).await.unwrap(), "a released lease is free");
}

#[tokio::test]
async fn one_holder_at_a_time_postgres() {
    let (_test, database) = postgres().await;
    one_holder_at_a_time(database).await;
}

#[tokio::test]
async fn one_holder_at_a_time_sqlite() {
    one_holder_at_a_time(sqlite().await).await;
}

/// Instances racing for a free lease: exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_instances_one_wins_postgres() {
    let (_test, database) = postgres().await;
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let database = database.clone();
            tokio::spawn(async move { Lease::new(GROUP, TTL).acquire(&database, T).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.unwrap());
    }
    assert_eq!(winners, 1);
}
