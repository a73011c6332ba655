//! The learned state in the database: the statistics, the model version and the
//! consumer offsets, saved together in one transaction per flush; and the keys of the
//! outcomes applied, which make the first outcome per (request_id, video_id) win across
//! restarts and re-emissions.
//!
//! Statements are written once with `$n` placeholders, which both Postgres and SQLite
//! accept, and run on whichever backend the deployment uses.

use std::collections::{BTreeMap, HashMap};

use nearline_storage::Database;

use crate::lease::{self, Lease};
use crate::policy::{Arm, Cell, Counter, Daypart, Discount, Observation, Statistics};

/// Runs `sqlx::query_as::<_, $ty>($sql)` with binds on either backend, fetching all rows.
macro_rules! fetch_all {
    ($db:expr, $ty:ty, $sql:expr $(, $bind:expr)*) => {
        match $db {
            nearline_storage::Database::Postgres(p) => sqlx::query_as::<_, $ty>($sql)$(.bind($bind))*.fetch_all(p).await,
            nearline_storage::Database::Sqlite(p) => sqlx::query_as::<_, $ty>($sql)$(.bind($bind))*.fetch_all(p).await,
        }
    };
}

/// Like [`fetch_all!`], fetching at most one row.
macro_rules! fetch_optional {
    ($db:expr, $ty:ty, $sql:expr $(, $bind:expr)*) => {
        match $db {
            nearline_storage::Database::Postgres(p) => sqlx::query_as::<_, $ty>($sql)$(.bind($bind))*.fetch_optional(p).await,
            nearline_storage::Database::Sqlite(p) => sqlx::query_as::<_, $ty>($sql)$(.bind($bind))*.fetch_optional(p).await,
        }
    };
}

/// Like [`fetch_all!`], executing a statement; the number of rows it affected.
macro_rules! execute {
    ($db:expr, $sql:expr $(, $bind:expr)*) => {
        match $db {
            nearline_storage::Database::Postgres(p) => sqlx::query($sql)$(.bind($bind))*.execute(p).await.map(|r| r.rows_affected()),
            nearline_storage::Database::Sqlite(p) => sqlx::query($sql)$(.bind($bind))*.execute(p).await.map(|r| r.rows_affected()),
        }
    };
}

/// Runs `$body` (a block evaluating to `Result<T, sqlx::Error>`, using `$tx` as the
/// executor via `&mut *$tx`) in one transaction on either backend; commits on `Ok`.
macro_rules! in_transaction {
    ($db:expr, $tx:ident, $body:block) => {
        match $db {
            nearline_storage::Database::Postgres(pool) => {
                async {
                    let mut $tx = pool.begin().await?;
                    let value = $body?;
                    $tx.commit().await?;
                    Ok::<_, sqlx::Error>(value)
                }
                .await
            }
            nearline_storage::Database::Sqlite(pool) => {
                async {
                    let mut $tx = pool.begin().await?;
                    let value = $body?;
                    $tx.commit().await?;
                    Ok::<_, sqlx::Error>(value)
                }
                .await
            }
        }
    };
}

pub(crate) use {execute, fetch_all, fetch_optional, in_transaction};

/// How long applied keys are kept, behind the newest applied outcome's event time:
/// far longer than attribution's allowed lateness, after which nothing is re-emitted.
const SEEN_RETENTION_MS: i64 = 7 * 24 * 3_600_000;

/// The model version and when it last learned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelInfo {
    /// Incremented by every flush that applied an outcome.
    pub version: u64,
    /// Wall-clock time of that flush, ms since the Unix epoch (0: never).
    pub learned_at_ms: i64,
    /// Event time of the newest outcome applied (0: none).
    pub last_event_ms: i64,
}

/// Everything the learner restores at start-up.
#[derive(Debug, Default)]
pub struct State {
    /// The statistics.
    pub stats: Statistics,
    /// Version and times.
    pub info: ModelInfo,
    /// Next offset to read per partition of the outcomes topic.
    pub offsets: HashMap<i32, i64>,
}

type StatsRow = (i64, String, String, String, String, f64, f64, i64, i64, i64);

/// Reads the saved state of consumer `group` on `topic`.
pub async fn load(database: &Database, group: &str, topic: &str) -> Result<State, sqlx::Error> {
    let rows: Vec<StatsRow> = fetch_all!(
        database,
        StatsRow,
        "SELECT video_id, artwork_id, country, device, daypart, weight, reward, at_ms, impressions, plays \
         FROM billboard_arm_stats"
    )?;
    let mut stats = Statistics::default();
    for (video_id, artwork, country, device, daypart, weight, reward, at_ms, impressions, plays) in rows {
        let Some(daypart) = Daypart::parse(&daypart) else { continue };
        stats.insert(
            Arm::new(video_id, &artwork),
            Cell { country: country.into(), device: device.into(), daypart },
            Counter { weight, reward, at_ms, impressions: impressions as u64, plays: plays as u64 },
        );
    }
    let info: Option<(i64, i64, i64)> = fetch_optional!(
        database,
        (i64, i64, i64),
        "SELECT version, learned_at_ms, last_event_ms FROM billboard_model WHERE id = 1"
    )?;
    let info = info
        .map(|(version, learned_at_ms, last_event_ms)| ModelInfo {
            version: version as u64,
            learned_at_ms,
            last_event_ms,
        })
        .unwrap_or_default();
    Ok(State { stats, info, offsets: load_offsets(database, group, topic).await? })
}

/// The saved model version (0 before anything was learned): whether [`load`] would
/// return something new.
pub async fn load_version(database: &Database) -> Result<u64, sqlx::Error> {
    let version: Option<(i64,)> =
        fetch_optional!(database, (i64,), "SELECT version FROM billboard_model WHERE id = 1")?;
    Ok(version.map_or(0, |(v,)| v as u64))
}

/// Next offset to read per partition, as saved with the statistics.
pub async fn load_offsets(
    database: &Database,
    group: &str,
    topic: &str,
) -> Result<HashMap<i32, i64>, sqlx::Error> {
    let offsets: Vec<(i32, i64)> = fetch_all!(
        database,
        (i32, i64),
        "SELECT partition, committed_offset FROM partition_progress WHERE consumer_group = $1 AND topic = $2",
        group,
        topic
    )?;
    Ok(offsets.into_iter().collect())
}

/// A batch of outcomes read since the last flush.
#[derive(Debug, Default)]
pub struct Batch {
    /// Outcomes that decoded, in log order per partition.
    pub observations: Vec<Observation>,
    /// Next offset to read per partition, after the batch.
    pub offsets: BTreeMap<i32, i64>,
    /// The history tag of each observation, by index.
    pub tags: Vec<Option<crate::history::Tag>>,
}

/// What a saved batch changed.
#[derive(Debug, Default)]
pub struct Saved {
    /// Counters as saved, to install in memory.
    pub counters: Vec<(Arm, Cell, Counter)>,
    /// Outcomes applied.
    pub applied: u64,
    /// Outcomes whose key was already applied.
    pub duplicates: u64,
    /// The model info after the batch.
    pub info: ModelInfo,
}

/// Saves a batch in one transaction: the new keys, the counters they change (starting
/// from `base`, the current counters of the batch's (arm, cell) pairs; the caller
/// installs [`Saved::counters`] only after the commit), the model version and the
/// offsets, stored under the lease's consumer group. `None`, with nothing written, when
/// this instance no longer holds `lease`: another instance learns now, and this one's
/// memory is stale.
#[allow(clippy::too_many_arguments)]
pub async fn save(
    database: &Database,
    lease: &Lease,
    topic: &str,
    base: &HashMap<(Arm, Cell), Counter>,
    info: ModelInfo,
    batch: &Batch,
    discount: Discount,
    now_ms: i64,
) -> Result<Option<Saved>, sqlx::Error> {
    let group = &lease.group;
    in_transaction!(database, tx, {
        // First, so a lost lease writes nothing (dropping the transaction rolls back).
        let held = sqlx::query(lease::RENEW)
            .bind(lease.expires(now_ms))
            .bind(group)
            .bind(&lease.holder)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if held != 1 {
            return Ok(None);
        }
        let mut changed: BTreeMap<(Arm, Cell), Counter> = BTreeMap::new();
        let mut saved = Saved { info, ..Saved::default() };
        let mut tally = crate::history::Tally::default();
        for (i, o) in batch.observations.iter().enumerate() {
            let inserted = sqlx::query(
                "INSERT INTO billboard_outcomes_seen (request_id, video_id, impression_time_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&o.request_id)
            .bind(o.arm.video_id)
            .bind(o.time_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                saved.duplicates += 1;
                continue;
            }
            saved.applied += 1;
            tally.add(batch.tags.get(i).and_then(Option::as_ref), o);
            let key = (o.arm.clone(), o.cell.clone());
            let counter = changed
                .entry(key)
                .or_insert_with(|| base.get(&(o.arm.clone(), o.cell.clone())).copied().unwrap_or_default());
            counter.observe(o.time_ms, o.played, discount);
            saved.info.last_event_ms = saved.info.last_event_ms.max(o.time_ms);
        }
        for ((arm, cell), c) in &changed {
            sqlx::query(
                "INSERT INTO billboard_arm_stats \
                 (video_id, artwork_id, country, device, daypart, weight, reward, at_ms, impressions, plays) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (video_id, artwork_id, country, device, daypart) DO UPDATE SET \
                 weight = excluded.weight, reward = excluded.reward, at_ms = excluded.at_ms, \
                 impressions = excluded.impressions, plays = excluded.plays",
            )
            .bind(arm.video_id)
            .bind(&*arm.artwork_id)
            .bind(&*cell.country)
            .bind(&*cell.device)
            .bind(cell.daypart.as_str())
            .bind(c.weight)
            .bind(c.reward)
            .bind(c.at_ms)
            .bind(c.impressions as i64)
            .bind(c.plays as i64)
            .execute(&mut *tx)
            .await?;
        }
        if saved.applied > 0 {
            saved.info.version += 1;
            saved.info.learned_at_ms = now_ms;
            sqlx::query(
                "INSERT INTO billboard_model (id, version, learned_at_ms, last_event_ms) VALUES (1, $1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, \
                 learned_at_ms = excluded.learned_at_ms, last_event_ms = excluded.last_event_ms",
            )
            .bind(saved.info.version as i64)
            .bind(saved.info.learned_at_ms)
            .bind(saved.info.last_event_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM billboard_outcomes_seen WHERE impression_time_ms < $1")
                .bind(saved.info.last_event_ms - SEEN_RETENTION_MS)
                .execute(&mut *tx)
                .await?;
        }
        crate::history::save_tally!(tx, tally);
        for (partition, offset) in &batch.offsets {
            sqlx::query(
                "INSERT INTO partition_progress \
                 (consumer_group, topic, partition, committed_offset, oldest_needed_offset, watermark_ms) \
                 VALUES ($1, $2, $3, $4, $4, $5) \
                 ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET \
                 committed_offset = excluded.committed_offset, \
                 oldest_needed_offset = excluded.oldest_needed_offset, watermark_ms = excluded.watermark_ms",
            )
            .bind(group)
            .bind(topic)
            .bind(*partition)
            .bind(*offset)
            .bind(saved.info.last_event_ms)
            .execute(&mut *tx)
            .await?;
        }
        saved.counters = changed.into_iter().map(|((a, c), k)| (a, c, k)).collect();
        Ok::<Option<Saved>, sqlx::Error>(Some(saved))
    })
}
