//! The SQLite writer: one transaction of prepared inserts (SQLite has no UNNEST, and
//! in-process statements are cheap), counting only members that were really new.

use std::collections::HashMap;
use std::sync::LazyLock;

use nearline_storage::rollups::Rollup;
use sqlx::SqlitePool;

use super::{Facts, PartitionProgress, ProgressKey, progress_rows};
use crate::join::CellMember;

pub(super) const LOAD_PROGRESS: &str = "SELECT topic, committed_offset, oldest_needed_offset, watermark_ms \
     FROM partition_progress WHERE consumer_group = ?1 AND partition = ?2 AND topic IN (SELECT value FROM json_each(?3))";

pub(super) const PARTITIONS: &str =
    "SELECT DISTINCT partition FROM partition_progress WHERE consumer_group = ?1 ORDER BY partition";

const INSERT_MEMBER: [&str; 2] = [
    "INSERT OR IGNORE INTO impression_members (video_id, epoch_start_ms, country, device, canvas, region, request_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    "INSERT OR IGNORE INTO play_members (video_id, epoch_start_ms, country, device, canvas, region, request_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
];

/// Adds to a cell's counts, and (the same upsert, the row's start bound as ?2 and the
/// dimensions a roll-up drops as '') to its rows in every roll-up: the cells first,
/// then [`Rollup::ALL`] in order.
static ADD_COUNTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let upsert = |table: &str| {
        format!(
            "INSERT INTO {table} (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (video_id, epoch_start_ms, country, device, canvas, region) DO UPDATE SET
                impressions = impressions + excluded.impressions, plays = plays + excluded.plays"
        )
    };
    std::iter::once("cell_counts").chain(Rollup::ALL.iter().map(|r| r.table())).map(upsert).collect()
});

const INSERT_UNATTRIBUTED: &str =
    "INSERT OR IGNORE INTO unattributed_members (video_id, epoch_start_ms, country, device, region, request_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

const ADD_UNATTRIBUTED: &str =
    "INSERT INTO unattributed_counts (video_id, epoch_start_ms, country, device, region, plays)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (video_id, epoch_start_ms, country, device, region) DO UPDATE SET plays = plays + excluded.plays";

const RETRACT_UNATTRIBUTED: &str = "DELETE FROM unattributed_members WHERE video_id = ?1 AND request_id = ?2
     RETURNING epoch_start_ms, country, device, region";

const SUBTRACT_UNATTRIBUTED: &str = "UPDATE unattributed_counts SET plays = plays - 1
     WHERE video_id = ?1 AND epoch_start_ms = ?2 AND country = ?3 AND device = ?4 AND region = ?5";

const SAVE_PROGRESS: &str = "INSERT INTO partition_progress
        (consumer_group, topic, partition, committed_offset, oldest_needed_offset, watermark_ms, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
     ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
        committed_offset = excluded.committed_offset,
        oldest_needed_offset = excluded.oldest_needed_offset,
        watermark_ms = excluded.watermark_ms,
        updated_at = excluded.updated_at";

type CellKey = (i64, i64, String, String, String, String);

pub(super) async fn write(
    pool: &SqlitePool,
    key: &ProgressKey,
    epoch_len_ms: i64,
    facts: Facts<'_>,
    progress: &[PartitionProgress],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    // (impressions, plays) newly added per cell.
    let mut added: HashMap<CellKey, (i64, i64)> = HashMap::new();
    for (which, members) in [facts.impressions, facts.plays].into_iter().enumerate() {
        for CellMember { cell, request_id } in members {
            let epoch_start_ms = cell.epoch * epoch_len_ms;
            let inserted = sqlx::query(INSERT_MEMBER[which])
                .bind(cell.video_id)
                .bind(epoch_start_ms)
                .bind(&*cell.dims.country)
                .bind(&*cell.dims.device)
                .bind(&*cell.dims.canvas)
                .bind(&*cell.dims.region)
                .bind(request_id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 1 {
                let key = (
                    cell.video_id,
                    epoch_start_ms,
                    cell.dims.country.to_string(),
                    cell.dims.device.to_string(),
                    cell.dims.canvas.to_string(),
                    cell.dims.region.to_string(),
                );
                let counts = added.entry(key).or_default();
                if which == 0 {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
            }
        }
    }
    for ((video_id, epoch_start_ms, country, device, canvas, region), (impressions, plays)) in added {
        let dims = [country.as_str(), device.as_str(), canvas.as_str(), region.as_str()];
        let rows = std::iter::once((epoch_start_ms, dims))
            .chain(Rollup::ALL.iter().map(|r| (r.start_of(epoch_start_ms), r.key_dims(dims))));
        for (sql, (start_ms, [country, device, canvas, region])) in ADD_COUNTS.iter().zip(rows) {
            sqlx::query(sql.as_str())
                .bind(video_id)
                .bind(start_ms)
                .bind(country)
                .bind(device)
                .bind(canvas)
                .bind(region)
                .bind(impressions)
                .bind(plays)
                .execute(&mut *tx)
                .await?;
        }
    }

    if facts.retract_unattributed {
        for CellMember { cell, request_id } in facts.plays {
            let removed: Vec<(i64, String, String, String)> = sqlx::query_as(RETRACT_UNATTRIBUTED)
                .bind(cell.video_id)
                .bind(request_id.to_string())
                .fetch_all(&mut *tx)
                .await?;
            for (epoch_start_ms, country, device, region) in removed {
                sqlx::query(SUBTRACT_UNATTRIBUTED)
                    .bind(cell.video_id)
                    .bind(epoch_start_ms)
                    .bind(country)
                    .bind(device)
                    .bind(region)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }

    let mut unattributed: HashMap<(i64, i64, String, String, String), i64> = HashMap::new();
    for member in facts.unattributed {
        let epoch_start_ms = member.key.epoch * epoch_len_ms;
        let inserted = sqlx::query(INSERT_UNATTRIBUTED)
            .bind(member.key.video_id)
            .bind(epoch_start_ms)
            .bind(&*member.key.dims.country)
            .bind(&*member.key.dims.device)
            .bind(&*member.key.dims.region)
            .bind(member.request_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted == 1 {
            let key = (
                member.key.video_id,
                epoch_start_ms,
                member.key.dims.country.to_string(),
                member.key.dims.device.to_string(),
                member.key.dims.region.to_string(),
            );
            *unattributed.entry(key).or_default() += 1;
        }
    }
    for ((video_id, epoch_start_ms, country, device, region), plays) in unattributed {
        sqlx::query(ADD_UNATTRIBUTED)
            .bind(video_id)
            .bind(epoch_start_ms)
            .bind(country)
            .bind(device)
            .bind(region)
            .bind(plays)
            .execute(&mut *tx)
            .await?;
    }

    for (topic, partition, source, watermark_ms) in progress_rows(key, progress) {
        sqlx::query(SAVE_PROGRESS)
            .bind(&key.group)
            .bind(topic)
            .bind(partition)
            .bind(source.committed)
            .bind(source.oldest_needed)
            .bind(watermark_ms)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
