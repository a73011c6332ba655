-- Who learns for a billboard consumer group: one instance at a time holds the lease and
-- renews it in every transaction that saves statistics, so two instances (a red/black
-- overlap, replicas) never both write them. A holder that died loses it at expires_at_ms.
CREATE TABLE IF NOT EXISTS billboard_learner_lease (
    consumer_group TEXT   PRIMARY KEY,
    holder         TEXT   NOT NULL,
    expires_at_ms  BIGINT NOT NULL
);
