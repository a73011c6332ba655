-- Billboard (DESIGN §6), owned by the billboard service: the artworks of each title
-- (until the catalog carries them), the billboard pool, and what the bandits learned.

CREATE TABLE IF NOT EXISTS billboard_artworks (
    video_id   BIGINT NOT NULL CHECK (video_id > 0),
    artwork_id TEXT   NOT NULL,
    PRIMARY KEY (video_id, artwork_id)
);

-- The titles a billboard request without candidates chooses from, in order.
CREATE TABLE IF NOT EXISTS billboard_pool (
    video_id BIGINT  PRIMARY KEY CHECK (video_id > 0),
    position INTEGER NOT NULL
);

-- The whole learned state: per (arm, cell) discounted and raw counts. Every policy is
-- a function of these rows; they are written in the same transaction as the consumer
-- offsets of the outcomes they include.
CREATE TABLE IF NOT EXISTS billboard_arm_stats (
    video_id    BIGINT           NOT NULL,
    artwork_id  TEXT             NOT NULL,
    country     TEXT             NOT NULL,
    device      TEXT             NOT NULL,
    daypart     TEXT             NOT NULL,
    weight      DOUBLE PRECISION NOT NULL,
    reward      DOUBLE PRECISION NOT NULL,
    at_ms       BIGINT           NOT NULL,
    impressions BIGINT           NOT NULL,
    plays       BIGINT           NOT NULL,
    PRIMARY KEY (video_id, artwork_id, country, device, daypart)
);

-- Outcomes applied, by key: the first outcome per (request_id, video_id) wins.
CREATE TABLE IF NOT EXISTS billboard_outcomes_seen (
    request_id         TEXT   NOT NULL,
    video_id           BIGINT NOT NULL,
    impression_time_ms BIGINT NOT NULL,
    PRIMARY KEY (request_id, video_id)
);

-- Old keys are pruned by impression time, long after any re-emission could arrive.
CREATE INDEX IF NOT EXISTS billboard_outcomes_seen_time ON billboard_outcomes_seen (impression_time_ms);

-- One row: the model version and when it last learned.
CREATE TABLE IF NOT EXISTS billboard_model (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    version       BIGINT  NOT NULL,
    learned_at_ms BIGINT  NOT NULL,
    last_event_ms BIGINT  NOT NULL
);
