//! Offline evaluation of billboard policies from logged decisions.
//!
//! Before a policy gets homepage traffic, someone asks what take rate it would have
//! had. Every billboard outcome carries the decision's true propensity and its full
//! `explore` block, so the answer comes from nearline's own outcomes:
//!
//! - [`record`]: logged decisions built from outcomes; [`input`] reads them from NDJSON
//!   files or the outcomes topic;
//! - [`spec`]: target policies named as configuration names them;
//! - [`target`]: a target walked through the logs, learning from delayed rewards as it
//!   would have online, with billboard's own policy core;
//! - [`direct`]: the doubly robust estimator's out-of-fold reward model;
//! - [`estimate`]: replay, IPS, SNIPS and DR with seeded bootstrap intervals
//!   ([`interval`]: bias-corrected and accelerated; [`resample`]: the Poisson bootstrap);
//! - [`evaluation`]: one evaluation, overall and per slice; [`report`]: its output;
//! - [`sim`]: logged data from billboard's simulated world, where the truth is known.
//!
//! Everything here is pure except [`input`]'s readers.

pub mod direct;
pub mod estimate;
pub mod evaluation;
pub mod input;
pub mod interval;
pub mod record;
pub mod report;
pub mod resample;
pub mod sim;
pub mod spec;
pub mod target;

pub use estimate::{Bootstrap, Estimator};
pub use evaluation::{Options, SliceField, evaluate, evaluate_with};
pub use record::{Decision, Logs, LogsBuilder};
pub use report::Report;
pub use spec::{Target, TargetKind};
pub use target::{Range, Training};

/// Errors of an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target spec is invalid.
    #[error("{0}")]
    Spec(String),
    /// The input could not be read.
    #[error("{0}")]
    Input(String),
    /// The logged data cannot support the estimate.
    #[error("{0}")]
    Unsupported(String),
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] nearline_eventlog::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
