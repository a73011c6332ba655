//! Attribution: joins plays to the impressions they came from, in event time, and turns
//! the result into idempotent set memberships from which nearline's exact counts follow.
//!
//! - [`join`]: the pure core, a state machine with no I/O that the streaming worker feeds
//!   per partition and batch backfill feeds over a bounded input (DESIGN §3–4);
//! - [`worker`]: the streaming join over the event log, writing through [`store`] and
//!   enriching outcomes from the [`catalog`];
//! - [`service`]: `nearline serve attribution`, the worker plus the gRPC progress API;
//! - [`batch`]: the same join over a bounded input, for `nearline backfill` and `reconcile`.

pub mod batch;
pub mod catalog;
pub mod error;
pub mod grpc;
pub mod join;
pub mod metrics;
pub mod service;
pub mod status;
pub mod store;
pub mod topics;
pub mod wire;
pub mod worker;

pub use error::{Error, Result};
pub use service::run;
