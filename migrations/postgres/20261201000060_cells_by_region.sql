-- Cells by region (issue 17): the region an impression was logged in becomes a cell
-- dimension like country, and a play's region a dimension of its unattributed slice, so
-- insights answers per region as well as globally (a `region` filter and group). Every
-- member and count table gains `region` in its primary key; what was counted before
-- regions were kept holds ''. The roll-ups keep the cells' columns: cell_counts_* and
-- country_device_counts_* keep the region (a country is served from one region or a few,
-- so the latter barely grows), title_counts_* drop it ('') and stay one row per title
-- and hour or day. Adding a column with a constant default rewrites no table on
-- Postgres 11+; the primary keys' indexes are rebuilt.

ALTER TABLE impression_members ADD COLUMN region TEXT NOT NULL DEFAULT '',
    DROP CONSTRAINT impression_members_pkey,
    ADD PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region, request_id);
ALTER TABLE play_members ADD COLUMN region TEXT NOT NULL DEFAULT '',
    DROP CONSTRAINT play_members_pkey,
    ADD PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region, request_id);
ALTER TABLE unattributed_members ADD COLUMN region TEXT NOT NULL DEFAULT '',
    DROP CONSTRAINT unattributed_members_pkey,
    ADD PRIMARY KEY (video_id, epoch_start_ms, country, device, region, request_id);
ALTER TABLE cell_counts ADD COLUMN region TEXT NOT NULL DEFAULT '',
    DROP CONSTRAINT cell_counts_pkey,
    ADD PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region);
ALTER TABLE cell_counts_hourly ADD COLUMN region TEXT NOT NULL DEFAULT '',
    DROP CONSTRAINT cell_counts_hourly_pkey,
    ADD PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region);
ALTER TABLE cell_counts_daily ADD COLUMN region TEXT NOT NULL DEFAULT '',
    DROP CONSTRAINT cell_counts_daily_pkey,
    ADD PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region);
ALTER TABLE country_device_counts_hourly ADD COLUMN region TEXT NOT NULL DEFAULT '',
    DROP CONSTRAINT country_device_counts_hourly_pkey,
    ADD PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region) INCLUDE (impressions, plays);
ALTER TABLE country_device_counts_daily ADD COLUMN region TEXT NOT NULL DEFAULT '',
    DROP CONSTRAINT country_device_counts_daily_pkey,
    ADD PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region) INCLUDE (impressions, plays);
ALTER TABLE title_counts_hourly ADD COLUMN region TEXT NOT NULL DEFAULT '',
    DROP CONSTRAINT title_counts_hourly_pkey,
    ADD PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region) INCLUDE (impressions, plays);
ALTER TABLE title_counts_daily ADD COLUMN region TEXT NOT NULL DEFAULT '',
    DROP CONSTRAINT title_counts_daily_pkey,
    ADD PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region) INCLUDE (impressions, plays);
ALTER TABLE unattributed_counts ADD COLUMN region TEXT NOT NULL DEFAULT '',
    DROP CONSTRAINT unattributed_counts_pkey,
    ADD PRIMARY KEY (video_id, epoch_start_ms, country, device, region);

-- The covering indexes carry the region too, so reads stay index-only.
DROP INDEX cell_counts_title_cover;
CREATE INDEX cell_counts_title_cover
    ON cell_counts (video_id, epoch_start_ms) INCLUDE (country, device, canvas, region, impressions, plays);
DROP INDEX cell_counts_hourly_title_cover;
CREATE INDEX cell_counts_hourly_title_cover
    ON cell_counts_hourly (video_id, epoch_start_ms) INCLUDE (country, device, canvas, region, impressions, plays);
DROP INDEX cell_counts_daily_title_cover;
CREATE INDEX cell_counts_daily_title_cover
    ON cell_counts_daily (video_id, epoch_start_ms) INCLUDE (country, device, canvas, region, impressions, plays);
DROP INDEX country_device_counts_hourly_epoch;
CREATE INDEX country_device_counts_hourly_epoch
    ON country_device_counts_hourly (epoch_start_ms, video_id) INCLUDE (country, device, canvas, region, impressions, plays);
DROP INDEX country_device_counts_daily_epoch;
CREATE INDEX country_device_counts_daily_epoch
    ON country_device_counts_daily (epoch_start_ms, video_id) INCLUDE (country, device, canvas, region, impressions, plays);
DROP INDEX title_counts_hourly_epoch;
CREATE INDEX title_counts_hourly_epoch
    ON title_counts_hourly (epoch_start_ms, video_id) INCLUDE (country, device, canvas, region, impressions, plays);
DROP INDEX title_counts_daily_epoch;
CREATE INDEX title_counts_daily_epoch
    ON title_counts_daily (epoch_start_ms, video_id) INCLUDE (country, device, canvas, region, impressions, plays);
