-- Cells by region (issue 17): the region an impression was logged in becomes a cell
-- dimension like country, and a play's region a dimension of its unattributed slice, so
-- insights answers per region as well as globally. Same change as on Postgres; SQLite
-- cannot change a primary key in place, so every member and count table is rebuilt with
-- its rows. What was counted before regions were kept lands in region ''.

CREATE TABLE impression_members_new (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    canvas         TEXT    NOT NULL,
    region         TEXT    NOT NULL DEFAULT '',
    request_id     TEXT    NOT NULL,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region, request_id)
);
INSERT INTO impression_members_new (video_id, epoch_start_ms, country, device, canvas, region, request_id)
SELECT video_id, epoch_start_ms, country, device, canvas, '', request_id FROM impression_members;
DROP TABLE impression_members;
ALTER TABLE impression_members_new RENAME TO impression_members;

CREATE TABLE play_members_new (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    canvas         TEXT    NOT NULL,
    region         TEXT    NOT NULL DEFAULT '',
    request_id     TEXT    NOT NULL,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region, request_id)
);
INSERT INTO play_members_new (video_id, epoch_start_ms, country, device, canvas, region, request_id)
SELECT video_id, epoch_start_ms, country, device, canvas, '', request_id FROM play_members;
DROP TABLE play_members;
ALTER TABLE play_members_new RENAME TO play_members;

CREATE TABLE unattributed_members_new (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    region         TEXT    NOT NULL DEFAULT '',
    request_id     TEXT    NOT NULL,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, region, request_id)
);
INSERT INTO unattributed_members_new (video_id, epoch_start_ms, country, device, region, request_id)
SELECT video_id, epoch_start_ms, country, device, '', request_id FROM unattributed_members;
DROP TABLE unattributed_members;
ALTER TABLE unattributed_members_new RENAME TO unattributed_members;
CREATE INDEX unattributed_members_request ON unattributed_members (request_id, video_id);

CREATE TABLE cell_counts_new (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    canvas         TEXT    NOT NULL,
    region         TEXT    NOT NULL DEFAULT '',
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region)
);
INSERT INTO cell_counts_new (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays)
SELECT video_id, epoch_start_ms, country, device, canvas, '', impressions, plays FROM cell_counts;
DROP TABLE cell_counts;
ALTER TABLE cell_counts_new RENAME TO cell_counts;
CREATE INDEX cell_counts_epoch ON cell_counts (epoch_start_ms, video_id);
CREATE INDEX cell_counts_title_cover ON cell_counts (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays);

CREATE TABLE cell_counts_hourly_new (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    canvas         TEXT    NOT NULL,
    region         TEXT    NOT NULL DEFAULT '',
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region)
);
INSERT INTO cell_counts_hourly_new (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays)
SELECT video_id, epoch_start_ms, country, device, canvas, '', impressions, plays FROM cell_counts_hourly;
DROP TABLE cell_counts_hourly;
ALTER TABLE cell_counts_hourly_new RENAME TO cell_counts_hourly;
CREATE INDEX cell_counts_hourly_epoch ON cell_counts_hourly (epoch_start_ms, video_id);
CREATE INDEX cell_counts_hourly_title_cover ON cell_counts_hourly (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays);

CREATE TABLE cell_counts_daily_new (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    canvas         TEXT    NOT NULL,
    region         TEXT    NOT NULL DEFAULT '',
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region)
);
INSERT INTO cell_counts_daily_new (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays)
SELECT video_id, epoch_start_ms, country, device, canvas, '', impressions, plays FROM cell_counts_daily;
DROP TABLE cell_counts_daily;
ALTER TABLE cell_counts_daily_new RENAME TO cell_counts_daily;
CREATE INDEX cell_counts_daily_epoch ON cell_counts_daily (epoch_start_ms, video_id);
CREATE INDEX cell_counts_daily_title_cover ON cell_counts_daily (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays);

CREATE TABLE country_device_counts_hourly_new (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    canvas         TEXT    NOT NULL,
    region         TEXT    NOT NULL DEFAULT '',
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region)
) WITHOUT ROWID;
INSERT INTO country_device_counts_hourly_new (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays)
SELECT video_id, epoch_start_ms, country, device, canvas, '', impressions, plays FROM country_device_counts_hourly;
DROP TABLE country_device_counts_hourly;
ALTER TABLE country_device_counts_hourly_new RENAME TO country_device_counts_hourly;
CREATE INDEX country_device_counts_hourly_epoch ON country_device_counts_hourly (epoch_start_ms, video_id, country, device, canvas, region, impressions, plays);

CREATE TABLE country_device_counts_daily_new (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    canvas         TEXT    NOT NULL,
    region         TEXT    NOT NULL DEFAULT '',
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region)
) WITHOUT ROWID;
INSERT INTO country_device_counts_daily_new (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays)
SELECT video_id, epoch_start_ms, country, device, canvas, '', impressions, plays FROM country_device_counts_daily;
DROP TABLE country_device_counts_daily;
ALTER TABLE country_device_counts_daily_new RENAME TO country_device_counts_daily;
CREATE INDEX country_device_counts_daily_epoch ON country_device_counts_daily (epoch_start_ms, video_id, country, device, canvas, region, impressions, plays);

CREATE TABLE title_counts_hourly_new (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    canvas         TEXT    NOT NULL,
    region         TEXT    NOT NULL DEFAULT '',
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region)
) WITHOUT ROWID;
INSERT INTO title_counts_hourly_new (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays)
SELECT video_id, epoch_start_ms, country, device, canvas, '', impressions, plays FROM title_counts_hourly;
DROP TABLE title_counts_hourly;
ALTER TABLE title_counts_hourly_new RENAME TO title_counts_hourly;
CREATE INDEX title_counts_hourly_epoch ON title_counts_hourly (epoch_start_ms, video_id, country, device, canvas, region, impressions, plays);

CREATE TABLE title_counts_daily_new (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    canvas         TEXT    NOT NULL,
    region         TEXT    NOT NULL DEFAULT '',
    impressions    INTEGER NOT NULL DEFAULT 0,
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, region)
) WITHOUT ROWID;
INSERT INTO title_counts_daily_new (video_id, epoch_start_ms, country, device, canvas, region, impressions, plays)
SELECT video_id, epoch_start_ms, country, device, canvas, '', impressions, plays FROM title_counts_daily;
DROP TABLE title_counts_daily;
ALTER TABLE title_counts_daily_new RENAME TO title_counts_daily;
CREATE INDEX title_counts_daily_epoch ON title_counts_daily (epoch_start_ms, video_id, country, device, canvas, region, impressions, plays);

CREATE TABLE unattributed_counts_new (
    video_id       INTEGER NOT NULL,
    epoch_start_ms INTEGER NOT NULL,
    country        TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    region         TEXT    NOT NULL DEFAULT '',
    plays          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, region)
);
INSERT INTO unattributed_counts_new (video_id, epoch_start_ms, country, device, region, plays)
SELECT video_id, epoch_start_ms, country, device, '', plays FROM unattributed_counts;
DROP TABLE unattributed_counts;
ALTER TABLE unattributed_counts_new RENAME TO unattributed_counts;
