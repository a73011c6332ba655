-- The video catalog (owned by ingest) and per-partition stream progress (attribution).
-- Same tables as on Postgres, in SQLite's types.

CREATE TABLE IF NOT EXISTS videos (
    video_id     INTEGER PRIMARY KEY CHECK (video_id > 0),
    title        TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('movie', 'series')),
    genres       TEXT NOT NULL DEFAULT '[]',
    launch_at_ms INTEGER,
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX IF NOT EXISTS videos_launch_at ON videos (launch_at_ms);

CREATE TABLE IF NOT EXISTS partition_progress (
    consumer_group       TEXT    NOT NULL,
    topic                TEXT    NOT NULL,
    partition            INTEGER NOT NULL,
    committed_offset     INTEGER NOT NULL,
    oldest_needed_offset INTEGER NOT NULL,
    watermark_ms         INTEGER NOT NULL,
    updated_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (consumer_group, topic, partition)
);
