-- Billboard's learning history, owned by the billboard service: per serving policy,
-- canvas and 30-minute epoch of impression time, the outcomes the learner applied (and
-- how many of them were explored picks). What the dashboard charts as take rate over
-- time per policy. Written in the learner's transaction with the statistics and the
-- offsets, so each outcome is in it exactly once, like the statistics.
CREATE TABLE IF NOT EXISTS billboard_history (
    policy         TEXT   NOT NULL,
    canvas         TEXT   NOT NULL,
    epoch_ms       BIGINT NOT NULL,
    outcomes       BIGINT NOT NULL,
    plays          BIGINT NOT NULL,
    explored       BIGINT NOT NULL,
    explored_plays BIGINT NOT NULL,
    PRIMARY KEY (policy, canvas, epoch_ms)
);
