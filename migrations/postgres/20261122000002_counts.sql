-- Attribution's sets and counts (DESIGN §3). Counts are set cardinalities: a member row
-- is inserted with ON CONFLICT DO NOTHING, and only newly inserted members increment
-- their cell's count in the same transaction, so replays and duplicates change nothing.
-- A cell is (video_id, impression epoch, country, device, canvas); epochs are stored by
-- their start time in ms since the Unix epoch.

CREATE TABLE IF NOT EXISTS impression_members (
    video_id       BIGINT NOT NULL,
    epoch_start_ms BIGINT NOT NULL,
    country        TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    canvas         TEXT   NOT NULL,
    request_id     TEXT   NOT NULL,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, request_id)
);

-- Attributed plays, counted in their impression's cell.
CREATE TABLE IF NOT EXISTS play_members (
    video_id       BIGINT NOT NULL,
    epoch_start_ms BIGINT NOT NULL,
    country        TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    canvas         TEXT   NOT NULL,
    request_id     TEXT   NOT NULL,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas, request_id)
);

CREATE TABLE IF NOT EXISTS cell_counts (
    video_id       BIGINT NOT NULL,
    epoch_start_ms BIGINT NOT NULL,
    country        TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    canvas         TEXT   NOT NULL,
    impressions    BIGINT NOT NULL DEFAULT 0,
    plays          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, canvas)
);

-- Top titles scan a time range across all videos.
CREATE INDEX IF NOT EXISTS cell_counts_epoch ON cell_counts (epoch_start_ms, video_id);

-- Plays never attributed to an impression, by the play's own epoch (no canvas: a play
-- has none of its own).
CREATE TABLE IF NOT EXISTS unattributed_members (
    video_id       BIGINT NOT NULL,
    epoch_start_ms BIGINT NOT NULL,
    country        TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    request_id     TEXT   NOT NULL,
    PRIMARY KEY (video_id, epoch_start_ms, country, device, request_id)
);

CREATE TABLE IF NOT EXISTS unattributed_counts (
    video_id       BIGINT NOT NULL,
    epoch_start_ms BIGINT NOT NULL,
    country        TEXT   NOT NULL,
    device         TEXT   NOT NULL,
    plays          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, epoch_start_ms, country, device)
);
