//! The crate's error type.

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A [`crate::join::JoinConfig`] value breaks an invariant the join relies on.
    #[error("invalid join configuration: {field}: {reason}")]
    InvalidConfig {
        /// The offending field, as named in the configuration.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The event log failed.
    #[error(transparent)]
    EventLog(#[from] nearline_eventlog::Error),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[source] sqlx::Error),
    /// Impressions and plays have different partition counts, so they cannot be joined
    /// partition by partition.
    #[error(
        "{impressions_topic} has {impressions} partitions but {plays_topic} has {plays}; \
         they must be co-partitioned (same count) for the join"
    )]
    NotCoPartitioned {
        /// Impressions topic.
        impressions_topic: String,
        /// Its partitions.
        impressions: i32,
        /// Plays topic.
        plays_topic: String,
        /// Its partitions.
        plays: i32,
    },
    /// Serving the gRPC API failed.
    #[error(transparent)]
    Server(#[from] nearline_runtime::server::Error),
    /// A batch range is empty or not aligned to epochs.
    #[error("invalid range: {0}")]
    InvalidRange(String),
    /// The worker task panicked or was cancelled.
    #[error("the streaming worker stopped abnormally: {0}")]
    Worker(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
