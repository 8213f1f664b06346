//! The dashboard driven in-process through the whole router (API and pages), on SQLite and on
//! PostgreSQL, with a manual clock.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions report failures by panicking"
)]

mod admin;
mod alerts;
mod apikeys;
mod cli_login;
mod common;
mod deployments;
mod errors;
mod queues;
mod runs;
mod schedules;
mod signin;
mod team;
mod tokens;
mod waits;
