//! The Postgres writer: whole batches per statement with `UNNEST`, never row by row.

use std::sync::LazyLock;

use nearline_storage::rollups::Rollup;
use sqlx::PgPool;

use super::{Facts, PartitionProgress, ProgressKey, progress_rows};
use crate::join::{CellMember, UnattributedMember};

pub(super) const LOAD_PROGRESS: &str = "SELECT topic, committed_offset, oldest_needed_offset, watermark_ms \
     FROM partition_progress WHERE consumer_group = $1 AND partition = $2 AND topic = ANY($3)";

pub(super) const PARTITIONS: &str =
    "SELECT DISTINCT partition FROM partition_progress WHERE consumer_group = $1 ORDER BY partition";

/// Per kind (impressions, plays): inserts new members and adds exactly the newly inserted
/// ones to their cell's count and to its rows in every roll-up (see
/// `nearline_storage::rollups`), all in one statement (data-modifying CTEs always run).
/// Rows are upserted in key order so concurrent writers lock them in the same order.
static ADD_MEMBERS: LazyLock<[String; 2]> = LazyLock::new(|| {
    [add_members("impression_members", "impressions"), add_members("play_members", "plays")]
});

fn add_members(members: &str, count: &str) -> String {
    let upsert = |table: &str, start: &str, dims: &str| {
        format!(
            "INSERT INTO {table} (video_id, epoch_start_ms, country, device, canvas, region, {count})
             SELECT video_id, {start}, {dims}, count(*) FROM new
             GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
             ON CONFLICT (video_id, epoch_start_ms, country, device, canvas, region)
             DO UPDATE SET {count} = {table}.{count} + EXCLUDED.{count}"
        )
    };
    let rollups: String = Rollup::ALL
        .iter()
        .map(|r| {
            let upsert = upsert(r.table(), &r.start_sql(), &r.key_dims_sql());
            format!(",\n {} AS ({upsert} RETURNING 1)", r.table())
        })
        .collect();
    format!(
        "WITH new AS (
            INSERT INTO {members} (video_id, epoch_start_ms, country, device, canvas, region, request_id)
            SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
            ON CONFLICT DO NOTHING
            RETURNING video_id, epoch_start_ms, country, device, canvas, region){rollups}
         {}",
        upsert("cell_counts", "epoch_start_ms", "country, device, canvas, region")
    )
}

const ADD_UNATTRIBUTED: &str = "WITH new AS (
        INSERT INTO unattributed_members (video_id, epoch_start_ms, country, device, region, request_id)
        SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
        ON CONFLICT DO NOTHING
        RETURNING video_id, epoch_start_ms, country, device, region)
     INSERT INTO unattributed_counts (video_id, epoch_start_ms, country, device, region, plays)
     SELECT video_id, epoch_start_ms, country, device, region, count(*) FROM new
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
     ON CONFLICT (video_id, epoch_start_ms, country, device, region)
     DO UPDATE SET plays = unattributed_counts.plays + EXCLUDED.plays";

/// Takes the given (video, request) plays out of the unattributed sets, wherever they
/// were counted, and subtracts exactly the removed members from their slices.
const RETRACT_UNATTRIBUTED: &str = "WITH gone AS (
        DELETE FROM unattributed_members u
        USING UNNEST($1::bigint[], $2::text[]) AS p(video_id, request_id)
        WHERE u.video_id = p.video_id AND u.request_id = p.request_id
        RETURNING u.video_id, u.epoch_start_ms, u.country, u.device, u.region)
     UPDATE unattributed_counts c SET plays = c.plays - g.n
     FROM (SELECT video_id, epoch_start_ms, country, device, region, count(*) AS n FROM gone
           GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5) g
     WHERE c.video_id = g.video_id AND c.epoch_start_ms = g.epoch_start_ms
       AND c.country = g.country AND c.device = g.device AND c.region = g.region";

const SAVE_PROGRESS: &str = "INSERT INTO partition_progress
        (consumer_group, topic, partition, committed_offset, oldest_needed_offset, watermark_ms, updated_at)
     SELECT $1, * , now() FROM UNNEST($2::text[], $3::int[], $4::bigint[], $5::bigint[], $6::bigint[])
     ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
        committed_offset = EXCLUDED.committed_offset,
        oldest_needed_offset = EXCLUDED.oldest_needed_offset,
        watermark_ms = EXCLUDED.watermark_ms,
        updated_at = EXCLUDED.updated_at";

/// Column arrays of a batch of cell members.
#[derive(Default)]
struct CellColumns {
    video_id: Vec<i64>,
    epoch_start_ms: Vec<i64>,
    country: Vec<String>,
    device: Vec<String>,
    canvas: Vec<String>,
    region: Vec<String>,
    request_id: Vec<String>,
}

impl CellColumns {
    fn of(members: &[CellMember], epoch_len_ms: i64) -> Self {
        let mut columns = CellColumns::default();
        for member in members {
            columns.video_id.push(member.cell.video_id);
            columns.epoch_start_ms.push(member.cell.epoch * epoch_len_ms);
            columns.country.push(member.cell.dims.country.to_string());
            columns.device.push(member.cell.dims.device.to_string());
            columns.canvas.push(member.cell.dims.canvas.to_string());
            columns.region.push(member.cell.dims.region.to_string());
            columns.request_id.push(member.request_id.to_string());
        }
        columns
    }
}

pub(super) async fn write(
    pool: &PgPool,
    key: &ProgressKey,
    epoch_len_ms: i64,
    facts: Facts<'_>,
    progress: &[PartitionProgress],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for (sql, members) in ADD_MEMBERS.iter().zip([facts.impressions, facts.plays]) {
        if members.is_empty() {
            continue;
        }
        let c = CellColumns::of(members, epoch_len_ms);
        sqlx::query(sql.as_str())
            .bind(c.video_id)
            .bind(c.epoch_start_ms)
            .bind(c.country)
            .bind(c.device)
            .bind(c.canvas)
            .bind(c.region)
            .bind(c.request_id)
            .execute(&mut *tx)
            .await?;
    }
    if facts.retract_unattributed && !facts.plays.is_empty() {
        sqlx::query(RETRACT_UNATTRIBUTED)
            .bind(facts.plays.iter().map(|m| m.cell.video_id).collect::<Vec<_>>())
            .bind(facts.plays.iter().map(|m| m.request_id.to_string()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
    }
    if !facts.unattributed.is_empty() {
        let members: &[UnattributedMember] = facts.unattributed;
        sqlx::query(ADD_UNATTRIBUTED)
            .bind(members.iter().map(|m| m.key.video_id).collect::<Vec<_>>())
            .bind(members.iter().map(|m| m.key.epoch * epoch_len_ms).collect::<Vec<_>>())
            .bind(members.iter().map(|m| m.key.dims.country.to_string()).collect::<Vec<_>>())
            .bind(members.iter().map(|m| m.key.dims.device.to_string()).collect::<Vec<_>>())
            .bind(members.iter().map(|m| m.key.dims.region.to_string()).collect::<Vec<_>>())
            .bind(members.iter().map(|m| m.request_id.to_string()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
    }
    let rows: Vec<_> = progress_rows(key, progress).collect();
    if !rows.is_empty() {
        sqlx::query(SAVE_PROGRESS)
            .bind(&key.group)
            .bind(rows.iter().map(|r| r.0.to_string()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.2.committed).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.2.oldest_needed).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.3).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
