//! HTTP tests, in-process through the router, each on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod admin;
mod engine;
mod errors;
mod health;
mod keys;
mod orgs;
mod projects;
mod public_tokens;
mod realtime;
mod runs;
mod serving;
mod tokens;
mod user_actor;
