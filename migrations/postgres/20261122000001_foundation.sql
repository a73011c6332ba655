-- The video catalog (owned by ingest) and per-partition stream progress (attribution).

CREATE TABLE IF NOT EXISTS videos (
    video_id     BIGINT PRIMARY KEY CHECK (video_id > 0),
    title        TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('movie', 'series')),
    -- JSON array of genre names, the same representation as on SQLite.
    genres       TEXT NOT NULL DEFAULT '[]',
    -- Launch time, ms since the Unix epoch; NULL when not launched yet or unknown.
    launch_at_ms BIGINT,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS videos_launch_at ON videos (launch_at_ms);

-- Where each consumer group is on each partition: the offset committed to Kafka after
-- the effects up to it were written, the oldest offset its in-memory state still needs
-- (recovery replays from there), and the partition's event-time watermark.
CREATE TABLE IF NOT EXISTS partition_progress (
    consumer_group       TEXT    NOT NULL,
    topic                TEXT    NOT NULL,
    partition            INTEGER NOT NULL,
    committed_offset     BIGINT  NOT NULL,
    oldest_needed_offset BIGINT  NOT NULL,
    watermark_ms         BIGINT  NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
