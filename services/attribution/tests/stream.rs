//! The streaming worker against real logs and databases: the test broker and Postgres,
//! and the in-process log and SQLite (every scenario runs on both). Whatever happens to
//! the workers (kills at random points, a second worker joining, late plays, backlogs
//! with hours of disorder), the stored counts equal a reference computed directly from
//! the DESIGN §3 definitions. Two regions with mirrored topics run on two brokers of
//! their own (`regions`).

// Scenario files live beside this root; one test binary links librdkafka once.
#[path = "stream/backlog.rs"]
mod backlog;
#[path = "stream/harness.rs"]
mod harness;
#[path = "stream/lateness.rs"]
mod lateness;
#[path = "stream/outcomes.rs"]
mod outcomes;
#[path = "stream/recovery.rs"]
mod recovery;
#[path = "stream/regions.rs"]
mod regions;
#[path = "stream/workload.rs"]
mod workload;
