//! The topic names attribution reads (impressions, plays) and writes (outcomes, late).

/// Topic names the worker reads and writes.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Impressions (group-consumed).
    pub impressions: String,
    /// Plays (read per owned partition).
    pub plays: String,
    /// Bandit rewards.
    pub outcomes: String,
    /// Too-late events.
    pub late: String,
}

impl Default for Topics {
    fn default() -> Self {
        use nearline_eventlog::topics;
        Self {
            impressions: topics::IMPRESSIONS.into(),
            plays: topics::PLAYS.into(),
            outcomes: topics::OUTCOMES.into(),
            late: topics::LATE.into(),
        }
    }
}
