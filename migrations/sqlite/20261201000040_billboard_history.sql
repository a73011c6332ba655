-- Billboard's learning history, owned by the billboard service: per serving policy,
-- canvas and 30-minute epoch of impression time, the outcomes the learner applied (and
-- how many of them were explored picks). What the dashboard charts as take rate over
-- time per policy. Written in the learner's transaction with the statistics and the
-- offsets, so each outcome is in it exactly once, like the statistics.
-- Same table as on Postgres, in SQLite's types.
CREATE TABLE IF NOT EXISTS billboard_history (
    policy         TEXT   NOT NULL,
    canvas         TEXT   NOT NULL,
    epoch_ms       INTEGER NOT NULL,
    outcomes       INTEGER NOT NULL,
    plays          INTEGER NOT NULL,
    explored       INTEGER NOT NULL,
    explored_plays INTEGER NOT NULL,
    PRIMARY KEY (policy, canvas, epoch_ms)
);
