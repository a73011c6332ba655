//! Known catalog, counts and progress, the same on Postgres and SQLite; the expected
//! answers in the tests are worked out by hand from these rows. Shared with the
//! dashboard fixture example through `#[path]`.

/// 2026-11-20T10:00:00Z, an epoch boundary: the start of the performance range.
pub(crate) const T0: &str = "2026-11-20T10:00:00Z";
/// Two hours later: the end of the performance range.
pub(crate) const T2H: &str = "2026-11-20T12:00:00Z";

/// The rows; plain literals, so one script serves both backends.
pub(crate) const SEED_SQL: &str = r#"
INSERT INTO videos (video_id, title, kind, genres, launch_at_ms) VALUES
    (101, 'Stranger Lights', 'series', '["drama","scifi"]', 1780272000000),
    (102, 'Dark Harbor',     'movie',  '["thriller","crime"]', 1780272900000),
    (103, 'Quiet Hours',     'movie',  '["drama","crime"]', 1777593600000),
    (104, 'Ice Road',        'movie',  '["crime"]', 1775001600000),
    (105, 'Summer Loop',     'movie',  '["crime","comedy"]', 1772323200000),
    (106, 'Laugh Track',     'movie',  '["comedy"]', 1778803200000),
    (107, 'Old Crime',       'movie',  '["crime"]', 1704067200000),
    (108, 'Harbor Lights',   'series', '["drama"]', NULL);

-- Title 101 around T0 = 1795168800000 (epochs of 30 min).
INSERT INTO cell_counts (video_id, epoch_start_ms, country, device, canvas, impressions, plays) VALUES
    (101, 1795167000000, 'US', 'tv',     'row',       100, 50),
    (101, 1795168800000, 'US', 'tv',     'row',        10,  3),
    (101, 1795168800000, 'US', 'mobile', 'billboard',   5,  1),
    (101, 1795168800000, 'CA', 'tv',     'row',         4,  0),
    (101, 1795170600000, 'US', 'tv',     'row',         6,  2),
    (101, 1795170600000, 'CA', 'tv',     'billboard',   0,  0),
    (101, 1795172400000, 'BR', 'web',    'search',      3,  3),
    (101, 1795176000000, 'US', 'tv',     'row',         7,  7),
    (102, 1795168800000, 'US', 'tv',     'row',        40,  4),
    (102, 1795170600000, 'CA', 'web',    'row',        10,  1),
    (103, 1795168800000, 'US', 'tv',     'billboard',   2,  2),
    (104, 1795172400000, 'US', 'mobile', 'row',        20,  8),
    (999, 1795168800000, 'US', 'tv',     'row',         1,  0);

-- Launch hours: 102 from 1780272000000 (launched 00:15, age 0 from the 00:00 epoch),
-- and its comparables 103, 104, 105 at the same ages.
INSERT INTO cell_counts (video_id, epoch_start_ms, country, device, canvas, impressions, plays) VALUES
    (102, 1780272000000, 'US', 'tv', 'row',  10, 2),
    (102, 1780273800000, 'US', 'tv', 'row',  10, 3),
    (102, 1780275600000, 'US', 'tv', 'row',   8, 2),
    (103, 1777593600000, 'US', 'tv', 'row',  10, 1),
    (103, 1777597200000, 'US', 'tv', 'row',  10, 2),
    (103, 1777600800000, 'US', 'tv', 'row',  10, 3),
    (104, 1775001600000, 'US', 'tv', 'row',  15, 3),
    (104, 1775003400000, 'CA', 'tv', 'row',   5, 1),
    (104, 1775005200000, 'US', 'tv', 'row',  20, 6),
    (105, 1772323200000, 'US', 'tv', 'row',  10, 3),
    (105, 1772326800000, 'US', 'tv', 'row',   5, 2),
    (105, 1772330400000, 'US', 'tv', 'row',   4, 2);

INSERT INTO unattributed_counts (video_id, epoch_start_ms, country, device, plays) VALUES
    (101, 1795168800000, 'US', 'tv',     2),
    (101, 1795170600000, 'CA', 'mobile', 1),
    (101, 1795179600000, 'US', 'tv',     5);

-- Attribution's progress: complete until min(watermark) - 6 h = 2026-11-21T06:00:00Z.
INSERT INTO partition_progress (consumer_group, topic, partition, committed_offset, oldest_needed_offset, watermark_ms) VALUES
    ('nearline-attribution', 'nearline.impressions.v1', 0, 10, 5, 1795262400000),
    ('nearline-attribution', 'nearline.impressions.v1', 1, 10, 5, 1795266000000),
    ('someone-else',         'nearline.impressions.v1', 0, 10, 5, 1767225600000);
"#;

/// Loads [`SEED_SQL`] into a migrated database, with the roll-ups of its cells.
pub(crate) async fn seed(database: &nearline_storage::Database) -> Result<(), sqlx::Error> {
    load(database, SEED_SQL).await
}

/// Loads rows given as plain SQL into a migrated database, with the roll-ups of its cells.
pub(crate) async fn load(
    database: &nearline_storage::Database,
    sql: &'static str,
) -> Result<(), sqlx::Error> {
    match database {
        nearline_storage::Database::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop)?,
        nearline_storage::Database::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop)?,
    }
    // The cells were written directly, not through attribution: roll them up as it would.
    nearline_storage::rollups::rebuild(database).await
}
