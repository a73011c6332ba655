//! Integration tests of the insights service over HTTP and gRPC, on a real Postgres (a
//! fresh database per test) and, for the scenarios written for both, on SQLite.

mod fixture;
mod harness;

mod auth;
mod errors;
mod grpc;
mod launch;
mod performance;
mod regions;
mod top;
