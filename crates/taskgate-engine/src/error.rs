//! [`Error`]: why the engine refused or could not do something, in the words the clients
//! expect. Each transport maps it to its own answer (HTTP status, `x-should-retry`).

use taskgate_core::Problem;
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
    /// The caller's credential (a callback URL's mac) is wrong.
    #[error("{0}")]
    Unauthenticated(String),
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
    #[error("Payload too large: the limit is {0} bytes")]
    PayloadTooLarge(usize),

    #[error("Packet too large: the limit is {0} bytes")]
    PacketTooLarge(usize),

    #[error("{0}")]
    Denied(&'static str),
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

impl From<Error> for Problem {
    /// The engine's refusals in upstream's words; those a retry cannot help say so
    /// (`x-should-retry: false`), so the SDK and CLI fail fast.
    fn from(err: Error) -> Problem {
        match err {
            Error::Invalid(m) => Problem::invalid(m),
            Error::InvalidBody(issue) => Problem::invalid_body(issue),
            e @ Error::RunNotFound => Problem::not_found(e.to_string()).should_retry(false),
            Error::NotFound(what) => Problem::not_found(what),
            Error::Unauthenticated(m) => Problem::unauthenticated(m),
            Error::StaleSnapshot { at_start: true } => {
                Problem::conflict("Snapshot changed inside startRunAttempt").should_retry(false)
            }
            Error::StaleSnapshot { at_start: false } => {
                Problem::invalid("Snapshot ID doesn't match the latest snapshot")
                    .should_retry(false)
            }
            e @ Error::Finished => Problem::invalid(e.to_string()).should_retry(false),
            Error::Refused(m) => Problem::invalid(m).should_retry(false),
            e @ Error::MaxAttempts => Problem::invalid(e.to_string()).should_retry(false),
            e @ Error::PayloadTooLarge(_) => Problem::too_large(e.to_string()),
            e @ Error::PacketTooLarge(_) => Problem::too_large(e.to_string()).should_retry(false),
            Error::Denied(m) => Problem::denied(m).should_retry(false),
            e @ Error::OutputTooLarge(_) => Problem::too_large(e.to_string()).should_retry(false),
            Error::QueueFull(m) => Problem::unprocessable(m).should_retry(false),
            Error::Unprocessable(m) => Problem::unprocessable(m),
            Error::Store(e) => e.into(),
            Error::Internal(cause) => Problem::internal(cause),
        }
    }
}
