//! [`ApiJson`], the JSON body extractor of every route, and [`ApiQuery`], its query-string
//! counterpart: malformed JSON, wrong types, bad query parameters and oversized bodies
//! become JSON 400/413 answers with a clear message, never a 500 or a plain-text body.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body, rejected with taskgate's error body.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A query string, rejected with taskgate's error body (axum's own answer is plain text).
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "Invalid query: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Maps axum's JSON rejections to the wire errors.
pub fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::invalid_body(e.body_text()),
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("Invalid JSON"),
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::bad_request("Expected a JSON body with Content-Type: application/json")
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
        }
        other => ApiError::bad_request(other.body_text()),
    }
}

/// Parses a body that may be empty or not JSON at all into a JSON value (`Null` when empty).
pub fn parse_lenient(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|_| ApiError::bad_request("Invalid JSON"))
}

/// Headers an API answer ends up with: its content type, the rate limiter's three and CORS's
/// three.
const ANSWER_HEADERS: usize = 7;

/// A JSON answer serialised into one buffer of `capacity` bytes, for hot routes whose answers
/// are small and of known size: axum's `Json` starts at 128 bytes and grows, which costs a
/// reallocation and a copy for anything larger.
pub fn json_response<T: serde::Serialize>(value: &T, capacity: usize) -> axum::response::Response {
    use axum::http::header::CONTENT_TYPE;
    use axum::http::HeaderValue;
    use axum::response::IntoResponse;

    let mut body = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => {
            // Room for what the layers add to an API answer (the rate limiter's three headers,
            // CORS's three) without growing the map on the way out.
            let mut headers = axum::http::HeaderMap::with_capacity(ANSWER_HEADERS);
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let mut resp = axum::response::Response::new(axum::body::Body::from(body));
            *resp.headers_mut() = headers;
            resp
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}
