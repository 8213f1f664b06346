//! [`Error`]: why the engine refused or could not do something, in the words the clients
//! expect. Each transport maps it to its own answer (HTTP status, `x-should-retry`).

use taskgate_store::StoreError;

/// An engine operation that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is wrong; the message says how, in upstream's words.
    #[error("{0}")]
    Invalid(String),
    /// A request body's field has the wrong shape (upstream's zod failure: "Invalid request
    /// body" with this issue).
    #[error("Invalid request body: {0}")]
    InvalidBody(String),
    /// The run named is not the caller's environment's, or does not exist. Retrying cannot
    /// help.
    #[error("Run not found")]
    RunNotFound,
    /// Something else named does not exist (the message names it).
    #[error("{0}")]
    NotFound(&'static str),
    /// The caller acted on a snapshot that is no longer the run's latest: `at_start` when it
    /// was starting an attempt (upstream answers 409 there, 400 elsewhere).
    #[error("stale snapshot")]
    StaleSnapshot { at_start: bool },
    /// The run has finished.
    #[error("Task run is already finished")]
    Finished,
    /// The run's state machine refused the event.
    #[error("{0}")]
    Refused(String),
    /// A run reached the ceiling of attempts any run gets.
    #[error("Max attempts reached")]
    MaxAttempts,
    /// A payload beyond the limit (bytes).
    #[error("Payload too large: the limit is {0} bytes, and payloads are stored inline (no object storage)")]
    PayloadTooLarge(usize),
    /// An attempt's output beyond the limit (bytes). Retrying cannot help.
    #[error("Output too large: the limit is {0} bytes")]
    OutputTooLarge(usize),
    /// The environment's queue is full. Retrying soon cannot help.
    #[error("{0}")]
    QueueFull(String),
    /// Well-formed, but cannot be done (a one-time token spent, a payload kind not served).
    #[error("{0}")]
    Unprocessable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A broken invariant (a run naming a worker that does not exist); logged where it is
    /// answered.
    #[error("{0}")]
    Internal(String),
}

/// The result of an engine operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
