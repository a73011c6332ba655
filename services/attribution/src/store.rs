//! Writing the join's facts and each partition's progress, in one transaction.
//!
//! Facts are set memberships. A member row is inserted only if absent, and only newly
//! inserted members increment their cell's count, in the same transaction, so a count
//! is always exactly the size of its set however often a fact is delivered (DESIGN §3).
//! The partition progress written in the same transaction is what recovery replays from
//! (DESIGN §4), so facts and the offsets that produced them can never disagree.

mod counts;
mod postgres;
mod sqlite;

pub use counts::{CellKey, Counts, Difference, UnattributedKey, compare};

use nearline_storage::Database;
use nearline_storage::progress::NO_WATERMARK;

use crate::join::{CellMember, UnattributedMember};

/// Where one source (topic partition) of a partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceProgress {
    /// Next offset to process: every record before it has its effects written.
    pub committed: i64,
    /// Oldest offset whose event the in-memory state still needs; replay starts here.
    pub oldest_needed: i64,
    /// Largest event time read from this topic partition, if any.
    pub watermark_ms: Option<i64>,
}

/// The progress of one partition number across the topics the join reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProgress {
    /// Partition number (the same on every co-partitioned topic).
    pub partition: i32,
    /// Per source, in the order of [`ProgressKey::topics`] (local impressions, local
    /// plays, then each mirrored region's): that topic partition's progress, `None`
    /// where none is stored (the source was never written, say a region just added).
    pub sources: Vec<Option<SourceProgress>>,
}

impl PartitionProgress {
    /// The progress of the source at `index` of [`ProgressKey::topics`].
    pub fn source(&self, index: usize) -> Option<SourceProgress> {
        self.sources.get(index).copied().flatten()
    }

    /// Records whose effects are stored, over every source.
    pub fn committed_total(&self) -> i64 {
        self.sources.iter().flatten().map(|s| s.committed).sum()
    }
}

/// Facts to write, borrowed from the join's outputs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// Impression set memberships.
    pub impressions: &'a [CellMember],
    /// Attributed play set memberships.
    pub plays: &'a [CellMember],
    /// Unattributed play set memberships.
    pub unattributed: &'a [UnattributedMember],
    /// Whether each attributed play also leaves the unattributed sets (backfill only).
    ///
    /// The stream never needs this: by the time it expires a play as unattributed, any
    /// impression that could claim it is too late for the stream. Backfill can find that
    /// impression on the late topic and attribute the play; without the retraction the
    /// play would count both ways and reconcile could never agree.
    pub retract_unattributed: bool,
}

impl Facts<'_> {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.impressions.is_empty() && self.plays.is_empty() && self.unattributed.is_empty()
    }
}

/// Names the rows of `partition_progress` this store owns: one per consumer group,
/// source topic and partition. The topic name tells the sources apart, the mirrored
/// ones included (`eu-west.nearline.plays.v1`), so no other key is needed.
#[derive(Debug, Clone)]
pub struct ProgressKey {
    /// Consumer group of the join.
    pub group: String,
    /// The source topics, in the order of `crate::topics::Topics::sources`.
    pub topics: Vec<String>,
}

/// The attribution tables of either backend.
#[derive(Debug, Clone)]
pub struct Store {
    database: Database,
    key: ProgressKey,
    epoch_len_ms: i64,
}

impl Store {
    /// A store writing cells whose epochs are `epoch_len_ms` long.
    pub fn new(database: Database, key: ProgressKey, epoch_len_ms: i64) -> Self {
        Self { database, key, epoch_len_ms }
    }

    /// Writes facts and progress atomically.
    pub async fn write(&self, facts: Facts<'_>, progress: &[PartitionProgress]) -> Result<(), sqlx::Error> {
        match &self.database {
            Database::Postgres(pool) => {
                postgres::write(pool, &self.key, self.epoch_len_ms, facts, progress).await
            }
            Database::Sqlite(pool) => {
                sqlite::write(pool, &self.key, self.epoch_len_ms, facts, progress).await
            }
        }
    }

    /// The stored progress of a partition, or `None` when it was never written.
    pub async fn load(&self, partition: i32) -> Result<Option<PartitionProgress>, sqlx::Error> {
        let rows: Vec<(String, i64, i64, i64)> = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_as(postgres::LOAD_PROGRESS)
                    .bind(&self.key.group)
                    .bind(partition)
                    .bind(self.key.topics.as_slice())
                    .fetch_all(pool)
                    .await?
            }
            Database::Sqlite(pool) => {
                let topics = serde_json::to_string(&self.key.topics).expect("strings serialise");
                sqlx::query_as(sqlite::LOAD_PROGRESS)
                    .bind(&self.key.group)
                    .bind(partition)
                    .bind(topics)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(progress_from_rows(&self.key, partition, rows))
    }

    /// Every stored partition progress of this group (for `GetProgress` and insights).
    pub async fn load_all(&self) -> Result<Vec<PartitionProgress>, sqlx::Error> {
        let partitions: Vec<(i32,)> = match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_as(postgres::PARTITIONS).bind(&self.key.group).fetch_all(pool).await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_as(sqlite::PARTITIONS).bind(&self.key.group).fetch_all(pool).await?
            }
        };
        let mut all = Vec::with_capacity(partitions.len());
        for (partition,) in partitions {
            all.extend(self.load(partition).await?);
        }
        Ok(all)
    }
}

impl Store {
    /// How many cells whose epoch starts in `[from_ms, to_ms)` have no region: counted
    /// before cells had one (migration `..._cells_by_region.sql`). A recount of such a
    /// range would add its members again under their regions.
    pub async fn cells_without_region(&self, from_ms: i64, to_ms: i64) -> Result<i64, sqlx::Error> {
        match &self.database {
            Database::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM cell_counts \
                     WHERE region = '' AND epoch_start_ms >= $1 AND epoch_start_ms < $2",
                )
                .bind(from_ms)
                .bind(to_ms)
                .fetch_one(pool)
                .await
            }
            Database::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM cell_counts \
                     WHERE region = '' AND epoch_start_ms >= ?1 AND epoch_start_ms < ?2",
                )
                .bind(from_ms)
                .bind(to_ms)
                .fetch_one(pool)
                .await
            }
        }
    }

    /// Stored counts of the cells and unattributed slices whose epoch starts in
    /// `[from_ms, to_ms)`.
    pub async fn load_counts(&self, from_ms: i64, to_ms: i64) -> Result<Counts, sqlx::Error> {
        type CellRow = (i64, i64, String, String, String, String, i64, i64);
        type UnattributedRow = (i64, i64, String, String, String, i64);
        const CELLS_PG: &str = "SELECT video_id, epoch_start_ms, country, device, canvas, region, impressions, plays \
             FROM cell_counts WHERE epoch_start_ms >= $1 AND epoch_start_ms < $2";
        const UNATTRIBUTED_PG: &str = "SELECT video_id, epoch_start_ms, country, device, region, plays \
             FROM unattributed_counts WHERE epoch_start_ms >= $1 AND epoch_start_ms < $2";
        const CELLS_SQLITE: &str = "SELECT video_id, epoch_start_ms, country, device, canvas, region, impressions, plays \
             FROM cell_counts WHERE epoch_start_ms >= ?1 AND epoch_start_ms < ?2";
        const UNATTRIBUTED_SQLITE: &str = "SELECT video_id, epoch_start_ms, country, device, region, plays \
             FROM unattributed_counts WHERE epoch_start_ms >= ?1 AND epoch_start_ms < ?2";
        let (cells, unattributed): (Vec<CellRow>, Vec<UnattributedRow>) = match &self.database {
            Database::Postgres(pool) => (
                sqlx::query_as(CELLS_PG).bind(from_ms).bind(to_ms).fetch_all(pool).await?,
                sqlx::query_as(UNATTRIBUTED_PG).bind(from_ms).bind(to_ms).fetch_all(pool).await?,
            ),
            Database::Sqlite(pool) => (
                sqlx::query_as(CELLS_SQLITE).bind(from_ms).bind(to_ms).fetch_all(pool).await?,
                sqlx::query_as(UNATTRIBUTED_SQLITE).bind(from_ms).bind(to_ms).fetch_all(pool).await?,
            ),
        };
        Ok(Counts {
            cells: cells.into_iter().map(|(v, e, c, d, k, r, i, p)| ((v, e, c, d, k, r), (i, p))).collect(),
            unattributed: unattributed.into_iter().map(|(v, e, c, d, r, p)| ((v, e, c, d, r), p)).collect(),
        })
    }
}

fn progress_from_rows(
    key: &ProgressKey,
    partition: i32,
    rows: Vec<(String, i64, i64, i64)>,
) -> Option<PartitionProgress> {
    if rows.is_empty() {
        return None;
    }
    let mut progress = PartitionProgress { partition, sources: vec![None; key.topics.len()] };
    for (topic, committed, oldest_needed, watermark_ms) in rows {
        let watermark_ms = (watermark_ms != NO_WATERMARK).then_some(watermark_ms);
        if let Some(index) = key.topics.iter().position(|t| *t == topic) {
            progress.sources[index] = Some(SourceProgress { committed, oldest_needed, watermark_ms });
        }
    }
    Some(progress)
}

/// One row of `partition_progress` per source of each partition.
fn progress_rows<'a>(
    key: &'a ProgressKey,
    progress: &'a [PartitionProgress],
) -> impl Iterator<Item = (&'a str, i32, SourceProgress, i64)> + 'a {
    progress.iter().flat_map(move |p| {
        key.topics.iter().zip(&p.sources).filter_map(move |(topic, source)| {
            source.map(|s| (topic.as_str(), p.partition, s, s.watermark_ms.unwrap_or(NO_WATERMARK)))
        })
    })
}
