//! CORS for browser clients, which hold public access tokens: any
//! origin may call and may read every response header (the run token headers, Electric's
//! headers). No cookies are involved, so `*` grants nothing a bearer token does not.
//!
//! Written as one middleware that adds constant headers to the response, because a realtime
//! long-poll holds its request open for up to a minute and the general-purpose layer this
//! replaces kept about 35 KiB of resident memory per open request: with 1,000 open
//! subscriptions, `bench/runs.mjs` measured 138 MiB with it and 103 MiB with this.

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const ANY: HeaderValue = HeaderValue::from_static("*");
const VARY_ON: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);
/// How long a browser may reuse a preflight answer.
const MAX_AGE_SECONDS: HeaderValue = HeaderValue::from_static("7200");
/// Longest `Access-Control-Request-Headers` echoed back; a longer list is answered with `*`.
const MAX_REQUEST_HEADERS_LEN: usize = 2048;

fn add_common(headers: &mut HeaderMap) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, ANY);
    headers.append(VARY, VARY_ON);
}

/// Answers a preflight (any `OPTIONS` request) itself, and adds the CORS headers to every
/// other response.
pub async fn cors(req: Request, next: Next) -> Response {
    if req.method() == Method::OPTIONS {
        let mut resp = StatusCode::OK.into_response();
        let h = resp.headers_mut();
        add_common(h);
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, ANY);
        // The Fetch standard never lets `*` cover `Authorization`, which every client sends:
        // name the requested headers back instead.
        let requested = req
            .headers()
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .filter(|v| v.len() <= MAX_REQUEST_HEADERS_LEN)
            .cloned()
            .unwrap_or(ANY);
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested);
        h.insert(ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECONDS);
        return resp;
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    add_common(h);
    h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, ANY);
    resp
}
