//! taskgate's domain, with no IO: key and token formats, the scope grammar and roles, HS256
//! JWTs, user-actor tokens, rotation rules, sealing secrets, the run engine's state machine,
//! task errors, and the clock.
//! Everything here is a pure function of its inputs (time included), so it is tested without
//! a database or a server. The wire contract it implements is trigger.dev v4's.

pub mod bearer;
pub mod branch;
pub mod crypto;
pub mod duration;
pub mod engine;
pub mod env;
pub mod errors;
pub mod hash;
pub mod ids;
pub mod jwt;
pub mod keys;
pub mod pat;
pub mod problem;
pub mod ratelimit;
pub mod return_path;
pub mod role;
pub mod rotation;
pub mod run;
pub mod schedule;
pub mod scope;
pub mod signin;
pub mod task_error;
pub mod text;
pub mod time;
pub mod uat;
pub mod vault;
pub mod webhook;

pub use crypto::MasterKey;
pub use env::EnvType;
pub use problem::Problem;
pub use role::Role;
pub use scope::{Ability, Resource, Scope};
pub use time::Clock;
pub use uat::UatClaims;
