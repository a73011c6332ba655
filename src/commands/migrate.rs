//! `nearline migrate`: database migrations and Kafka topics, idempotently.

use anyhow::Context as _;
use nearline_eventlog::EventLog as _;
use nearline_runtime::Config;
use nearline_storage::Database;

use crate::backends;
use crate::cli::MigrateArgs;

/// Applies migrations and creates topics; what already exists is left alone.
pub(crate) async fn migrate(args: MigrateArgs, config: &Config) -> anyhow::Result<()> {
    if args.embedded {
        let path = &config.embedded.sqlite_path;
        // Not under a running `serve --embedded`: it migrated at start and does not
        // expect the schema to change beneath it. The lock is the one it holds.
        let _lock = (!path.starts_with(':'))
            .then(|| {
                let what = format!("the embedded SQLite database {path}");
                nearline_eventlog::durable::lock_beside(std::path::Path::new(path), &what)
                    .context("another nearline process uses this SQLite file; stop it before migrating")
            })
            .transpose()?;
        let pool = nearline_storage::connect_sqlite(path).await?;
        Database::Sqlite(pool).migrate().await?;
        println!("SQLite database {path} is up to date");
        return Ok(());
    }

    let pool = nearline_storage::connect_postgres(&config.database, true).await?;
    Database::Postgres(pool).migrate().await?;
    println!("Postgres database {} is up to date", config.database.url.masked());

    let log = backends::kafka(config)?;
    let specs = backends::topic_specs(config.kafka.partitions, config.kafka.replication);
    log.create_topics(&specs).await.context("creating Kafka topics")?;
    for spec in &specs {
        let partitions = log.partition_count(&spec.name).await?;
        println!("Kafka topic {} has {partitions} partition(s)", spec.name);
    }
    Ok(())
}
