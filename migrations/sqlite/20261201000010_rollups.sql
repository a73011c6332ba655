-- Hourly and daily roll-ups of cell_counts, kept by attribution in the same transaction
-- as the cells (and by backfill the same way). Every request belongs to exactly one
-- cell and a cell to exactly one hour and one day (its epoch start's), so a roll-up is
-- an exact sum over disjoint cells; epoch_start_ms here is the hour's or the day's start
-- (UTC). Insights answers a query from the coarsest roll-up its range and granularity
-- allow and takes the unaligned edges from finer data.
CREATE TABLE IF NOT EXISTS cell_counts_hourly (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    canvas         TEXT   NOT NULL,
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas)
);
CREATE INDEX IF NOT EXISTS cell_counts_hourly_epoch ON cell_counts_hourly (epoch_start_ms, video_id);
CREATE INDEX IF NOT EXISTS cell_counts_hourly_title_cover ON cell_counts_hourly (video_id, epoch_start_ms, country, device, canvas, impressions, plays);

CREATE TABLE IF NOT EXISTS cell_counts_daily (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    canvas         TEXT   NOT NULL,
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas)
);
CREATE INDEX IF NOT EXISTS cell_counts_daily_epoch ON cell_counts_daily (epoch_start_ms, video_id);
CREATE INDEX IF NOT EXISTS cell_counts_daily_title_cover ON cell_counts_daily (video_id, epoch_start_ms, country, device, canvas, impressions, plays);

-- Existing counts, rolled up once (floor division, also for times before 1970).
INSERT INTO cell_counts_hourly (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
SELECT video_id, epoch_start_ms - ((epoch_start_ms % 3600000) + 3600000) % 3600000, country, device, canvas, SUM(impressions), SUM(plays)
FROM cell_counts GROUP BY 1, 2, 3, 4, 5;
INSERT INTO cell_counts_daily (video_id, epoch_start_ms, country, device, canvas, impressions, plays)
SELECT video_id, epoch_start_ms - ((epoch_start_ms % 86400000) + 86400000) % 86400000, country, device, canvas, SUM(impressions), SUM(plays)
FROM cell_counts GROUP BY 1, 2, 3, 4, 5;
