//! [`Problem`]: why a use case (shared by the API, the dashboard and the CLI) did not do what
//! it was asked, in the words the clients expect, with a [`Kind`] that each adapter maps to
//! its own answer: an HTTP status and body for the API, a status and a message for a page.
//!
//! The words are upstream's where a compatible route answers (`"Unauthorized"`, `"Invalid
//! request body"`), and extra fields (`code`, `details`, `issues`) travel with them, so a page
//! and the API refuse the same thing in the same words.

use serde_json::{json, Map, Value};

/// What kind of refusal a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or a value is out of range.
    Invalid,
    /// The credential is missing, unknown, expired or badly signed.
    Unauthenticated,
    /// The caller is not allowed to do this.
    Denied,
    /// What the request names does not exist (or is another tenant's).
    NotFound,
    /// It conflicts with what exists (a taken email, the last owner, a stale snapshot).
    Conflict,
    /// A body or value beyond its size limit.
    TooLarge,
    /// Well-formed, but cannot be done now or ever (a spent one-time token).
    Unprocessable,
    /// The database could not be reached: retry, nothing was refused.
    Unavailable,
    /// A broken invariant; the cause is logged where it is answered.
    Internal,
}

/// A refusal: its kind, upstream's message, and any extra fields of the wire body.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub kind: Kind,
    pub message: String,
    /// Fields beside `error` in the wire body (`code`, `details`, `issues`, …).
    pub fields: Map<String, Value>,
    /// Whether a client retrying could help (`x-should-retry`), when that is known.
    pub retry: Option<bool>,
}

impl Problem {
    pub fn new(kind: Kind, message: impl Into<String>) -> Problem {
        Problem {
            kind,
            message: message.into(),
            fields: Map::new(),
            retry: None,
        }
    }

    /// Adds a field to the body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Problem {
        self.fields.insert(key.into(), value.into());
        self
    }

    pub fn should_retry(mut self, retry: bool) -> Problem {
        self.retry = Some(retry);
        self
    }

    pub fn invalid(message: impl Into<String>) -> Problem {
        Problem::new(Kind::Invalid, message)
    }

    /// Upstream's zod failure: `"Invalid request body"` with one issue.
    pub fn invalid_body(issue: impl Into<String>) -> Problem {
        Problem::invalid("Invalid request body")
            .with("issues", json!([{ "message": issue.into() }]))
    }

    pub fn unauthenticated(message: impl Into<String>) -> Problem {
        Problem::new(Kind::Unauthenticated, message)
    }

    pub fn denied(message: impl Into<String>) -> Problem {
        Problem::new(Kind::Denied, message)
    }

    /// The route builders' authorization failure.
    pub fn scope_denied() -> Problem {
        Problem::denied("Unauthorized")
            .with("code", "unauthorized")
            .with("param", "access_token")
            .with("type", "authorization")
    }

    pub fn not_found(message: impl Into<String>) -> Problem {
        Problem::new(Kind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Problem {
        Problem::new(Kind::Conflict, message)
    }

    pub fn too_large(message: impl Into<String>) -> Problem {
        Problem::new(Kind::TooLarge, message)
    }

    /// The database could not be reached (the cause is logged where it happened).
    pub fn unavailable() -> Problem {
        Problem::new(Kind::Unavailable, "Service unavailable").with("code", "database_unavailable")
    }

    pub fn unprocessable(message: impl Into<String>) -> Problem {
        Problem::new(Kind::Unprocessable, message)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Problem {
        Problem::new(Kind::Internal, cause.to_string())
    }

    /// The first `details[].message`, where upstream-shaped query errors name what is wrong.
    pub fn detail(&self) -> Option<&str> {
        self.fields
            .get("details")
            .and_then(|d| d.get(0))
            .and_then(|d| d.get("message"))
            .and_then(Value::as_str)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}
