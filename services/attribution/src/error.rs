//! The crate's error type, and its one mapping to a gRPC status.

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
    /// A mirrored region's topic is not in the local cluster: the mirror (MirrorMaker 2)
    /// is not set up for it yet, or `kafka.mirrored_regions` names the wrong region.
    #[error(
        "{topic} does not exist: kafka.mirrored_regions names region {region:?}, whose topics \
         a mirror (MirrorMaker 2) must copy into this cluster as <region>.<topic> first"
    )]
    MirrorMissing {
        /// The mirrored region.
        region: String,
        /// The topic that is missing.
        topic: String,
    },
    /// Serving the gRPC API failed.
    #[error(transparent)]
    Server(#[from] nearline_runtime::server::Error),
    /// A batch input file or directory cannot be read or holds an invalid event.
    #[error("--input {path}: {reason}")]
    Input {
        /// The file or directory.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A batch range is empty or not aligned to epochs.
    #[error("invalid range: {0}")]
    InvalidRange(String),
    /// The worker task panicked or was cancelled.
    #[error("the streaming worker stopped abnormally: {0}")]
    Worker(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for tonic::Status {
    /// What a gRPC caller sees: configuration and input problems say exactly what is
    /// wrong; failures of the log or the database are logged with their cause chain and
    /// answered `UNAVAILABLE` (they pass), anything else `INTERNAL`, without internals.
    fn from(error: Error) -> Self {
        let chain = nearline_runtime::errors::chain(&error);
        match error {
            Error::InvalidConfig { .. } | Error::InvalidRange(_) | Error::Input { .. } => {
                tonic::Status::invalid_argument(error.to_string())
            }
            Error::EventLog(_) | Error::Database(_) => {
                tracing::error!(error = %chain, "attribution request failed");
                tonic::Status::unavailable("attribution's storage is unavailable right now; retry")
            }
            Error::NotCoPartitioned { .. }
            | Error::MirrorMissing { .. }
            | Error::Server(_)
            | Error::Worker(_) => {
                tracing::error!(error = %chain, "attribution request failed");
                tonic::Status::internal("internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn client_errors_say_what_is_wrong_and_outages_are_unavailable() {
        let status = tonic::Status::from(Error::InvalidRange("from must be before to".into()));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("from must be before to"));
        let status = tonic::Status::from(Error::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(!status.message().contains("pool"), "no internals: {}", status.message());
    }
}
