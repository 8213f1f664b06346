//! CORS for browser clients, which hold public access tokens: any
//! origin may call and may read every response header (the run token headers, Electric's
//! headers). No cookies are involved, so `*` grants nothing a bearer token does not.
//!
//! HTML is the exception: the dashboard's pages (and the API reference page) are for this
//! origin's own browser tabs, answered with the signed-in user's cookie, and no other origin
//! has any business reading them. They get no CORS headers at all.
//!
//! Written as one small layer that adds constant headers to the response, because a realtime
//! long-poll holds its request open for up to a minute and the general-purpose layer this
//! replaces kept about 35 KiB of resident memory per open request: with 1,000 open
//! subscriptions, `bench/runs.mjs` measured 138 MiB with it and 103 MiB with this. It is a
//! [`tower::Layer`] rather than a `from_fn` middleware so that a request does not pay for
//! boxing the route and its future once more.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    CONTENT_TYPE, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
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

/// Whether a response is an HTML page.
fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"))
}

/// The `Access-Control-Allow-Headers` a preflight answers `req` with.
fn allowed_headers(req: &Request) -> HeaderValue {
    // The Fetch standard never lets `*` cover `Authorization`, which every client sends:
    // name the requested headers back instead.
    req.headers()
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .filter(|v| v.len() <= MAX_REQUEST_HEADERS_LEN)
        .cloned()
        .unwrap_or(ANY)
}

/// A preflight's answer.
fn preflight(allowed_headers: HeaderValue) -> Response {
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    add_common(h);
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, ANY);
    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed_headers);
    h.insert(ACCESS_CONTROL_MAX_AGE, MAX_AGE_SECONDS);
    resp
}

/// Answers a preflight (any `OPTIONS` request) itself, and adds the CORS headers to every
/// other response.
#[derive(Clone, Copy, Debug, Default)]
pub struct CorsLayer;

impl<S> tower::Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Cors<S> {
        Cors { inner }
    }
}

/// The service of [`CorsLayer`].
#[derive(Clone, Debug)]
pub struct Cors<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Cors<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.method() == Method::OPTIONS {
            CorsFuture::Preflight {
                allowed_headers: allowed_headers(&req),
            }
        } else {
            CorsFuture::Route {
                inner: self.inner.call(req),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A preflight's answer, or the route's with the CORS headers added.
    #[project = CorsProj]
    pub enum CorsFuture<F> {
        Preflight { allowed_headers: HeaderValue },
        Route { #[pin] inner: F },
    }
}

impl<F, E> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CorsProj::Preflight { allowed_headers } => {
                Poll::Ready(Ok(preflight(allowed_headers.clone())))
            }
            CorsProj::Route { inner } => {
                let mut resp = ready!(inner.poll(cx))?;
                let h = resp.headers_mut();
                if is_html(h) {
                    return Poll::Ready(Ok(resp));
                }
                add_common(h);
                h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, ANY);
                Poll::Ready(Ok(resp))
            }
        }
    }
}
