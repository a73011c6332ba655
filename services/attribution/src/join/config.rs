//! Join configuration: the DESIGN §3 durations, with their defaults.

use crate::{Error, Result};

const MINUTE_MS: i64 = 60_000;

/// The durations of DESIGN §3, in milliseconds of event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinConfig {
    /// Length of an epoch; epoch = floor(event_time / epoch_len) [30 min].
    pub epoch_len_ms: i64,
    /// How far a play may precede its impression (clock skew) [60 s].
    pub skew_ms: i64,
    /// How long after its impression a play still counts [1 h].
    pub attribution_window_ms: i64,
    /// Events older than their own topic's watermark - allowed_lateness are too late [6 h].
    pub allowed_lateness_ms: i64,
    /// A play within this time of an explored impression makes its outcome `played` [15 min].
    pub reward_window_ms: i64,
    /// How long past the reward window the outcome waits before `played = false` [2 min].
    pub reward_grace_ms: i64,
    /// Granularity of state expiry: an entry is dropped at most this much event time after
    /// its deadline. Coarser is cheaper; it never changes a fact, only when state is freed
    /// and when an unattributed play is reported [60 s].
    pub expiry_granularity_ms: i64,
}

impl Default for JoinConfig {
    fn default() -> Self {
        Self {
            epoch_len_ms: 30 * MINUTE_MS,
            skew_ms: MINUTE_MS,
            attribution_window_ms: 60 * MINUTE_MS,
            allowed_lateness_ms: 6 * 60 * MINUTE_MS,
            reward_window_ms: 15 * MINUTE_MS,
            reward_grace_ms: 2 * MINUTE_MS,
            expiry_granularity_ms: MINUTE_MS,
        }
    }
}

impl JoinConfig {
    /// Checks the invariants the join's correctness argument relies on.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: &str| Err(Error::InvalidConfig { field, reason: reason.to_owned() });
        if self.epoch_len_ms <= 0 {
            return invalid("epoch_len", "must be positive");
        }
        if self.expiry_granularity_ms <= 0 {
            return invalid("expiry_granularity", "must be positive");
        }
        for (field, value) in [
            ("skew", self.skew_ms),
            ("attribution_window", self.attribution_window_ms),
            ("allowed_lateness", self.allowed_lateness_ms),
            ("reward_window", self.reward_window_ms),
            ("reward_grace", self.reward_grace_ms),
        ] {
            if value < 0 {
                return invalid(field, "must not be negative");
            }
        }
        // Outcome timers must fire before the impression they belong to can be dropped.
        let outcome_deadline = self.reward_window_ms.saturating_add(self.reward_grace_ms);
        if outcome_deadline > self.impression_retention_ms() {
            return invalid(
                "reward_window",
                "reward_window + reward_grace must not exceed attribution_window + skew + allowed_lateness",
            );
        }
        // A play's arrival is recorded as its lag behind the plays watermark in 32 bits
        // (saturating); a saturated lag must still read as "after any outcome deadline".
        let reward_reach = self.skew_ms.saturating_add(outcome_deadline);
        if reward_reach >= i64::from(u32::MAX) {
            return invalid("reward_window", "skew + reward_window + reward_grace must be under 49 days");
        }
        Ok(())
    }

    /// An impression is kept until *both* watermarks pass `t + this`.
    ///
    /// DESIGN §3 asks for the plays watermark to pass window + lateness. One extra skew,
    /// and waiting for the impressions watermark too, make every impression a retained
    /// play was attributed to outlive that play (the play is kept until the impressions
    /// watermark passes `P.t + skew + lateness <= I.t + window + skew + lateness`), which
    /// replay recovery needs (see the `join` module docs). It never changes a fact.
    pub(crate) fn impression_retention_ms(&self) -> i64 {
        self.attribution_window_ms.saturating_add(self.skew_ms).saturating_add(self.allowed_lateness_ms)
    }

    /// A play is kept until the impressions watermark passes `t + this` (DESIGN §3).
    pub(crate) fn play_retention_ms(&self) -> i64 {
        self.skew_ms.saturating_add(self.allowed_lateness_ms)
    }

    /// Epoch of an event time.
    pub fn epoch_of(&self, event_time_ms: i64) -> i64 {
        event_time_ms.div_euclid(self.epoch_len_ms)
    }

    /// Whether a play at `play_ms` is attributable to an impression at `impression_ms`.
    pub fn attributes(&self, impression_ms: i64, play_ms: i64) -> bool {
        impression_ms.saturating_sub(self.skew_ms) <= play_ms
            && play_ms <= impression_ms.saturating_add(self.attribution_window_ms)
    }

    /// Whether such a play also earns the impression's outcome `played = true`.
    pub fn rewards(&self, impression_ms: i64, play_ms: i64) -> bool {
        self.attributes(impression_ms, play_ms)
            && play_ms <= impression_ms.saturating_add(self.reward_window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::JoinConfig;

    #[test]
    fn default_is_valid_and_matches_design() {
        let c = JoinConfig::default();
        c.validate().expect("default config is valid");
        assert_eq!(c.epoch_len_ms, 1_800_000);
        assert_eq!(c.allowed_lateness_ms, 21_600_000);
    }

    #[test]
    fn rejects_reward_longer_than_retention() {
        let c = JoinConfig { reward_window_ms: i64::MAX / 2, ..JoinConfig::default() };
        let err = c.validate().expect_err("reward window too long");
        assert!(err.to_string().contains("reward_window"), "{err}");
    }

    #[test]
    fn rejects_zero_epoch() {
        let c = JoinConfig { epoch_len_ms: 0, ..JoinConfig::default() };
        assert!(c.validate().is_err());
    }
}
