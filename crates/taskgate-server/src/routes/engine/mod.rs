//! The `/engine/v1/dev/*` routes that `trigger.dev dev` runs against: its settings, the
//! long-poll dequeue, an attempt's start, heartbeat and completion, the latest snapshot,
//! debug logs, presence and disconnect; and the `/engine/v1/runs/*` waits task code calls. Handlers authenticate the environment's secret key,
//! read the body and call the engine ([`taskgate_engine`]), which answers in the CLI's
//! shapes.
//!
//! The CLI posts JSON without a JSON content type (`text/plain;charset=UTF-8`), so bodies are
//! read as bytes and parsed whatever their content type.

pub mod attempts;
pub mod dequeue;
pub mod presence;
pub mod waits;

use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// Largest body an engine route reads (a completion carries the run's output, so the payload
/// limit applies there; the rest are small).
pub const MAX_ENGINE_BODY_BYTES: usize = 64 * 1024;

/// Parses a JSON body whatever its content type; an empty body is the type's default.
pub fn lenient_body<T: DeserializeOwned + Default>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid_body(e.to_string()))
}

/// Parses a required JSON body whatever its content type.
pub fn required_body<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("Request body is empty"));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid_body(e.to_string()))
}
