//! HTTP tests, in-process through the router, each on SQLite and on PostgreSQL.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions report failures by panicking"
)]

mod common;

mod admin;
mod alerts;
mod deployments;
mod engine;
mod errors;
mod health;
mod keys;
mod orgs;
mod packets;
mod projects;
mod public_tokens;
mod queues;
mod rate_limits;
mod realtime;
mod runs;
mod schedules;
mod serving;
mod tokens;
mod trace;
mod user_actor;
mod waits;
