-- Roll-ups pre-grouped for the dimension sets dashboards ask for, so that a query's cost
-- follows its output rather than the cells under it: by country and device (canvas
-- dropped: a busy title has 18 rows per hour here against 54 in cell_counts_hourly) and
-- a title's totals (one row per title and hour or day: top titles and unsliced charts).
-- Same columns as cell_counts, a dropped dimension holding ''; kept by attribution in
-- the same statement as the cells, like the roll-ups of ..._rollups.sql. Insights uses
-- one only when the query neither groups nor filters by a dimension it dropped.

-- WITHOUT ROWID: rows are stored in primary key order, so a title's rows are adjacent.

CREATE TABLE IF NOT EXISTS country_device_counts_hourly (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    canvas         TEXT   NOT NULL,
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS country_device_counts_hourly_epoch ON country_device_counts_hourly (epoch_start_ms, video_id, country, device, canvas, impressions, plays);

CREATE TABLE IF NOT EXISTS country_device_counts_daily (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    canvas         TEXT   NOT NULL,
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS country_device_counts_daily_epoch ON country_device_counts_daily (epoch_start_ms, video_id, country, device, canvas, impressions, plays);

CREATE TABLE IF NOT EXISTS title_counts_hourly (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    canvas         TEXT   NOT NULL,
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS title_counts_hourly_epoch ON title_counts_hourly (epoch_start_ms, video_id, country, device, canvas, impressions, plays);

CREATE TABLE IF NOT EXISTS title_counts_daily (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    canvas         TEXT   NOT NULL,
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS title_counts_daily_epoch ON title_counts_daily (epoch_start_ms, video_id, country, device, canvas, impressions, plays);

-- Existing counts, rolled up once (floor division, also for times before 1970).
INSERT INTO country_device_counts_hourly (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
SELECT video_id, epoch_start_ms - ((epoch_start_ms % 3600000) + 3600000) % 3600000, country, device, '', SUM(impressions), SUM(plays)
FROM cell_counts GROUP BY 1, 2, 3, 4, 5;
INSERT INTO country_device_counts_daily (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
SELECT video_id, epoch_start_ms - ((epoch_start_ms % 86400000) + 86400000) % 86400000, country, device, '', SUM(impressions), SUM(plays)
FROM cell_counts GROUP BY 1, 2, 3, 4, 5;
INSERT INTO title_counts_hourly (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
SELECT video_id, epoch_start_ms - ((epoch_start_ms % 3600000) + 3600000) % 3600000, '', '', '', SUM(impressions), SUM(plays)
FROM cell_counts GROUP BY 1, 2, 3, 4, 5;
INSERT INTO title_counts_daily (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
SELECT video_id, epoch_start_ms - ((epoch_start_ms % 86400000) + 86400000) % 86400000, '', '', '', SUM(impressions), SUM(plays)
FROM cell_counts GROUP BY 1, 2, 3, 4, 5;
