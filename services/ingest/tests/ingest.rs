//! The ingest service end to end: over HTTP and gRPC, against the test broker
//! (`NEARLINE_TEST_KAFKA`) or the in-process log, with a fresh database per test.
//!
//! Every test runs its own service on port 0 and publishes to its own topics, so the
//! tests are independent and may run in parallel.

// Scenario files live beside this root; one test binary keeps linking librdkafka to once.
#[path = "ingest/auth.rs"]
mod auth;
#[path = "ingest/broker_down.rs"]
mod broker_down;
#[path = "ingest/catalog.rs"]
mod catalog;
#[path = "ingest/decoders.rs"]
mod decoders;
#[path = "ingest/harness.rs"]
mod harness;
#[path = "ingest/invalid.rs"]
mod invalid;
#[path = "ingest/overload.rs"]
mod overload;
#[path = "ingest/publish.rs"]
mod publish;
#[path = "ingest/startup.rs"]
mod startup;
