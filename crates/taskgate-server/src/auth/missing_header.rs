//! Upstream answers a request to `/api/*` without an `Authorization` header from its rate
//! limiter, before any route runs, with a problem+json 401. The same paths
//! upstream exempts are exempt here, as are taskgate's own unauthenticated documents.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const EXEMPT_PREFIXES: &[&str] = &[
    "/api/v1/auth/jwt/claims",
    "/api/v1/authorization-code",
    "/api/v1/token",
    "/api/v1/packets/",
    "/api/v2/packets/",
    "/api/openapi.json",
    "/api/docs",
];

const BODY: &str = r#"{
  "title": "Unauthorized",
  "status": 401,
  "type": "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/401",
  "detail": "No authorization header provided",
  "error": "No authorization header provided"
}"#;

pub async fn require_authorization_header(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let guarded = path.starts_with("/api/") && req.method() != axum::http::Method::OPTIONS;
    if guarded
        && !req.headers().contains_key(header::AUTHORIZATION)
        && !EXEMPT_PREFIXES.iter().any(|p| path.starts_with(p))
    {
        let mut resp = (StatusCode::UNAUTHORIZED, BODY).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        return resp;
    }
    next.run(req).await
}
