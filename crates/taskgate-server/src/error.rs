//! [`ApiError`], the one error every handler returns with `?`, and its wire form:
//! `{"error": "<upstream's words>"}` plus optional fields (`code`, `issues`, `deniedScopes`).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use taskgate_core::problem::{Kind, Problem};
use taskgate_store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Map<String, Value>,
    /// `x-should-retry` for the official SDK.
    pub should_retry: Option<bool>,
}

impl ApiError {
    /// `{"error": message}` with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(message.into()));
        Self {
            status,
            body,
            should_retry: None,
        }
    }

    /// Adds a field to the body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.body.insert(key.into(), value.into());
        self
    }

    pub fn should_retry(mut self, retry: bool) -> Self {
        self.should_retry = Some(retry);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// The route builders' authorization failure.
    pub fn scope_denied() -> Self {
        Self::forbidden("Unauthorized")
            .with("code", "unauthorized")
            .with("param", "access_token")
            .with("type", "authorization")
    }

    /// The database could not be reached: 503, so that no client concludes its key was revoked.
    pub fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable")
            .with("code", "database_unavailable")
    }

    /// An opaque 500; the cause is logged here, once.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }

    /// 400 `{"error":"Invalid request body","issues":[…]}` (upstream's zod failure shape).
    pub fn invalid_body(issue: impl Into<String>) -> Self {
        Self::bad_request("Invalid request body")
            .with("issues", json!([{ "message": issue.into() }]))
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Self::unavailable()
            }
            StoreError::NotFound => Self::not_found("Not found"),
            StoreError::Conflict { kind } => Self::new(StatusCode::CONFLICT, "Conflict")
                .with("code", "conflict")
                .with("constraint", kind.name()),
            other => Self::internal(other),
        }
    }
}

impl From<Problem> for ApiError {
    /// A use case's or the engine's refusal as an answer: its kind picks the status, its
    /// words and fields are the body. An internal problem is logged here, once.
    fn from(p: Problem) -> Self {
        let status = match p.kind {
            Kind::Invalid => StatusCode::BAD_REQUEST,
            Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
            Kind::Denied => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => return Self::internal(p.message),
        };
        let mut e = Self::new(status, p.message);
        e.body.extend(p.fields);
        e.should_retry = p.retry;
        e
    }
}

impl From<taskgate_engine::Error> for ApiError {
    fn from(err: taskgate_engine::Error) -> Self {
        Problem::from(err).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(Value::Object(self.body))).into_response();
        if let Some(retry) = self.should_retry {
            resp.headers_mut().insert(
                "x-should-retry",
                HeaderValue::from_static(if retry { "true" } else { "false" }),
            );
        }
        resp
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
