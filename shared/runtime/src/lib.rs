//! What every nearline service stands on.
//!
//! - [`config`]: layered configuration (defaults, TOML file, `NEARLINE__*` environment),
//!   validated in full before anything starts;
//! - [`telemetry`]: tracing (text or JSON, OTLP export) and Prometheus metrics;
//! - [`shutdown`]: the cancellation tree driven by SIGTERM / SIGINT;
//! - [`readiness`]: the latch behind `/readyz` and gRPC health;
//! - [`server`]: serving a service's gRPC and HTTP APIs with health, reflection,
//!   request ids, traces, timeouts, body limits and graceful shutdown.

pub mod auth;
pub mod config;
pub mod errors;
pub mod readiness;
pub mod server;
pub mod shutdown;
pub mod telemetry;

pub use config::Config;
pub use readiness::Readiness;
pub use shutdown::Shutdown;
