//! Chaos: real `nearline serve attribution` processes with a stream running, while an
//! instance is killed with SIGKILL (a second instance takes over its partitions after
//! the session timeout), the broker is killed and restarted, and Postgres is restarted.
//! Afterwards the counts are exactly what the workload was built to give and
//! `nearline reconcile` finds no difference (DESIGN §4: instance failover is
//! transparent, offsets move only after the effects are stored).
//!
//! Each test runs its own tansu broker (so it can kill it and so the default topic names
//! are its own); they need `tansu` on the PATH, as `scripts/test.sh` provides.

#[path = "chaos/infra.rs"]
mod infra;

use std::time::Duration;

use infra::{Backends, Broker, PrivatePostgres, assert_exact, publish, sentinels, wait_drained, workload};
use nearline_testkit::{TestDatabase, wait_for};

const DRAIN: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_instances_lose_and_double_count_nothing() {
    let broker = Broker::start();
    let database = TestDatabase::create().await;
    let backends = Backends { kafka: broker.address(), database_url: database.url.clone() };
    backends.migrate();
    let (log, pool) = (backends.log(), backends.database().await);
    let work = workload(3_000);
    let chunks: Vec<_> = work.records.chunks(work.records.len() / 6 + 1).collect();

    // Two instances in one group; one of them is killed, at a different point of the
    // stream each time, and a replacement started while the other keeps consuming.
    let survivor = backends.serve_attribution();
    let mut victim = backends.serve_attribution();
    let mut rng = 0x9e37_79b9_u64;
    for (round, chunk) in chunks.iter().enumerate() {
        publish(&log, chunk).await;
        if round % 2 == 1 {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let pause = Duration::from_millis(100 + (rng >> 33) % 1_500);
            tokio::time::sleep(pause).await;
            victim.kill();
            eprintln!("round {round}: SIGKILLed one instance after {pause:?}");
            victim = backends.serve_attribution();
        }
    }
    publish(&log, &sentinels()).await;
    wait_drained(&log, &pool, DRAIN).await;
    wait_for("both instances to be ready", Duration::from_secs(60), || async {
        (survivor.is_ready().await && victim.is_ready().await).then_some(())
    })
    .await;
    assert_exact(&backends, &pool, &work).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_under_a_running_worker_loses_nothing() {
    let mut broker = Broker::start();
    let database = TestDatabase::create().await;
    let backends = Backends { kafka: broker.address(), database_url: database.url.clone() };
    backends.migrate();
    let pool = backends.database().await;
    let work = workload(2_000);
    let (first, second) = work.records.split_at(work.records.len() / 2);

    let attribution = backends.serve_attribution();
    {
        let log = backends.log();
        publish(&log, first).await;
        wait_drained(&log, &pool, DRAIN).await;
    }
    broker.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.restart();
    // A fresh client: the test's own producer is not what is being tested.
    let log = backends.log();
    publish(&log, second).await;
    publish(&log, &sentinels()).await;
    wait_drained(&log, &pool, DRAIN).await;
    assert!(attribution.is_ready().await, "the worker recovered by itself");
    assert_exact(&backends, &pool, &work).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_a_running_worker_loses_nothing() {
    let broker = Broker::start();
    let postgres = PrivatePostgres::start();
    let backends = Backends { kafka: broker.address(), database_url: postgres.url() };
    backends.migrate();
    let log = backends.log();
    let work = workload(2_000);
    let (first, second) = work.records.split_at(work.records.len() / 2);

    let attribution = backends.serve_attribution();
    {
        let pool = backends.database().await;
        publish(&log, first).await;
        wait_drained(&log, &pool, DRAIN).await;
        pool.close().await;
    }
    wait_for("attribution to be ready", Duration::from_secs(30), || async {
        attribution.is_ready().await.then_some(())
    })
    .await;

    postgres.stop();
    // Events keep coming while the database is down: the worker cannot write them.
    publish(&log, second).await;
    wait_for("/readyz to say not ready while writes fail", Duration::from_secs(30), || async {
        (!attribution.is_ready().await).then_some(())
    })
    .await;
    postgres.start_again();
    publish(&log, &sentinels()).await;
    let pool = backends.database().await;
    wait_drained(&log, &pool, DRAIN).await;
    wait_for("/readyz to recover once writes succeed", Duration::from_secs(30), || async {
        attribution.is_ready().await.then_some(())
    })
    .await;
    assert_exact(&backends, &pool, &work).await;
}
