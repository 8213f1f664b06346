//! Storage for taskgate: one trait per aggregate, the records they hold, the single
//! [`StoreError`] every backend maps its failures to, and the [`conformance`] suite that
//! every backend runs from its own tests so that SQLite and PostgreSQL cannot drift apart.
//!
//! Methods are whole use cases, each in one transaction (`rotate_api_key`, `create_project`);
//! no `begin`/`commit` crosses this boundary. Secrets never reach a store in plaintext: keys
//! arrive as a SHA-256 lookup hash plus an AEAD-sealed copy (see `taskgate_core::crypto`).

mod alerts;
pub mod conformance;
mod deploys;
mod engine;
mod error;
mod errors;
mod events;
mod model;
mod packets;
mod queues;
mod runs;
mod schedules;
mod sessions;
mod traits;
mod waits;

pub use alerts::*;
pub use deploys::*;
pub use engine::*;
pub use error::{ConflictKind, StoreError, StoreResult};
pub use errors::*;
pub use events::{ChangeEvent, ChangeFanout, ChangeHook};
pub use model::*;
pub use packets::*;
pub use queues::*;
pub use runs::*;
pub use schedules::*;
pub use sessions::*;
pub use traits::*;
pub use waits::*;

/// One column of an applied schema, in a form both backends can state, so a test can show
/// that their schemas have not drifted apart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaColumn {
    pub table: String,
    pub column: String,
    /// The declared type, lower case, with each backend's spelling of the same type mapped to
    /// one name (`double precision` and `real` are `real`; `timestamp with time zone` is
    /// `timestamptz`).
    pub sql_type: String,
    /// Whether the column accepts NULL (a primary key column never does).
    pub nullable: bool,
}
