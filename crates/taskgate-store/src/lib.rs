//! Storage for taskgate: one trait per aggregate, the records they hold, the single
//! [`StoreError`] every backend maps its failures to, and the [`conformance`] suite that
//! every backend runs from its own tests so that SQLite and PostgreSQL cannot drift apart.
//!
//! Methods are whole use cases, each in one transaction (`rotate_api_key`, `create_project`);
//! no `begin`/`commit` crosses this boundary. Secrets never reach a store in plaintext: keys
//! arrive as a SHA-256 lookup hash plus an AEAD-sealed copy (see `taskgate_core::crypto`).

pub mod conformance;
mod engine;
mod error;
mod errors;
mod events;
mod model;
mod runs;
mod traits;

pub use engine::*;
pub use error::{StoreError, StoreResult};
pub use errors::*;
pub use events::{ChangeEvent, ChangeFanout, ChangeHook};
pub use model::*;
pub use runs::*;
pub use traits::*;
