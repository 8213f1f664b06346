//! The API rate limiter as a layer: every `/api/*` request (but the exempt ones) takes a
//! token from the bucket its credential picks ([`taskgate_auth::ratelimit`]), before any
//! route runs, as upstream's limiter does.
//!
//! Every limited answer carries `x-ratelimit-limit`, `x-ratelimit-remaining` and
//! `x-ratelimit-reset` (milliseconds since the epoch, which the SDK waits for before retrying
//! a 429). A request without an `Authorization` header is answered 401 here, also as upstream.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use taskgate_api::ratelimit::RateLimitExceeded;
use taskgate_auth::ratelimit::{Bucket, Checked, Limit, Resolved};
use taskgate_core::ratelimit::Decision;

use crate::state::AppState;

/// Paths under `/api/` (written without it) that are never limited nor need a header:
/// upstream's exemptions that taskgate serves (the CLI's login, packet handshakes,
/// deployments, callbacks) and taskgate's own documents.
const EXEMPT_PREFIXES: &[&str] = &[
    "v1/auth/jwt/claims",
    "v1/authorization-code",
    "v1/token",
    "v1/timezones",
    "v1/packets/",
    "v2/packets/",
    "openapi.json",
    "docs",
];

const MISSING_HEADER: &str = r#"{
  "title": "Unauthorized",
  "status": 401,
  "type": "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/401",
  "detail": "No authorization header provided",
  "error": "No authorization header provided"
}"#;

static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Whether `rest`, a path after its `/api/`, is exempt (upstream's list, with its
/// `deployments` and callback patterns). Every API request asks, so this splits bytes rather
/// than characters and allocates nothing.
fn exempt(rest: &str) -> bool {
    if EXEMPT_PREFIXES.iter().any(|p| rest.starts_with(p)) {
        return true;
    }
    // At most the six segments of the longest pattern.
    let mut parts: [&[u8]; 7] = [b""; 7];
    let mut n = 0;
    for segment in rest.as_bytes().split(|b| *b == b'/') {
        if n == parts.len() {
            return false;
        }
        parts[n] = segment;
        n += 1;
    }
    match &parts[..n] {
        // /api/v{n}/deployments…
        [v, b"deployments", ..] => v.strip_prefix(b"v").is_some_and(is_number),
        // /api/v1/runs/{id}/attempts
        [b"v1", b"runs", _, b"attempts"] => true,
        // /api/v1/waitpoints/tokens/{id}/callback/{hash}
        [b"v1", b"waitpoints", b"tokens", _, b"callback", _] => true,
        // /api/v1/artifacts/uploads/{ref}/{id}/{secret}: a deploy's bundle, whose URL is
        // its credential (upstream's goes to object storage, outside the API).
        [b"v1", b"artifacts", b"uploads", _, _, _] => true,
        // /api/v1/sessions/{id}/snapshot-url
        [b"v1", b"sessions", _, b"snapshot-url"] => true,
        _ => false,
    }
}

/// Whether requests to `path` are rate-limited (and need an `Authorization` header).
pub fn limited_path(path: &str) -> bool {
    path.strip_prefix("/api/").is_some_and(|rest| !exempt(rest))
}

fn is_number(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// What the limiter makes of a request before its route runs.
enum Admission {
    /// Not limited: the route answers as it is.
    Exempt,
    /// Answered here: 401 without a header, 429 from an empty bucket.
    Refused(Response),
    /// Counted, and the route answers with the bucket's headers.
    Admitted(Decision, Arc<Limit>),
    /// To be counted in Redis, in this bucket, or in the one the credential's lookup chooses.
    Wait(Option<Bucket>),
}

/// Decides what it can without waiting: everything but a credential the caches do not hold
/// (or a bucket in Redis).
fn admit_now(state: &AppState, req: &mut Request) -> Admission {
    if req.method() == Method::OPTIONS || !limited_path(req.uri().path()) {
        return Admission::Exempt;
    }
    let Some(authorization) = req.headers().get(header::AUTHORIZATION) else {
        return Admission::Refused(missing_header());
    };
    let Some(limiter) = &state.limiter else {
        return Admission::Exempt;
    };
    match limiter.check_now(&state.auth, authorization) {
        Ok(checked) => admit(state, checked, req),
        Err(bucket) => Admission::Wait(bucket),
    }
}

/// The rest of [`admit_now`], for a request that waits for its credential's lookup or for
/// Redis.
async fn admit_later(state: &AppState, req: &mut Request, bucket: Option<Bucket>) -> Admission {
    let (Some(limiter), Some(authorization)) =
        (&state.limiter, req.headers().get(header::AUTHORIZATION))
    else {
        return Admission::Exempt;
    };
    let checked = limiter.check(&state.auth, authorization, bucket).await;
    admit(state, checked, req)
}

/// Refuses a request its bucket has no token for, or hands the route the credential the
/// limiter resolved.
fn admit(state: &AppState, checked: Checked, req: &mut Request) -> Admission {
    let Checked {
        decision,
        limit,
        resolved,
    } = checked;
    if !decision.allowed {
        metrics::counter!("taskgate_rate_limited_total").increment(1);
        let mut resp = too_many_requests(decision, state.now_millis());
        set_headers(resp.headers_mut(), decision, &limit);
        return Admission::Refused(resp);
    }
    match resolved {
        Some(Resolved::Key(key)) => {
            req.extensions_mut().insert(key);
        }
        Some(Resolved::Jwt(jwt)) => {
            req.extensions_mut().insert(jwt);
        }
        None => {}
    }
    Admission::Admitted(decision, limit)
}

fn missing_header() -> Response {
    let mut resp = (StatusCode::UNAUTHORIZED, MISSING_HEADER).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    resp
}

/// The limiter as a layer: 401 without a header, 429 from an empty bucket, else the route's
/// answer with the bucket's headers.
///
/// A request whose credential is in the caches (nearly every one, in steady state) is
/// decided synchronously, and the route's future is polled in place; only a request that
/// waits for a lookup, a JWT's first verification or Redis is boxed.
#[derive(Clone)]
pub struct RateLimitLayer {
    state: AppState,
}

impl RateLimitLayer {
    pub fn new(state: AppState) -> Self {
        RateLimitLayer { state }
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service of [`RateLimitLayer`].
#[derive(Clone)]
pub struct RateLimited<S> {
    inner: S,
    state: AppState,
}

impl<S> tower::Service<Request> for RateLimited<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RateLimitedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        match admit_now(&self.state, &mut req) {
            Admission::Exempt => RateLimitedFuture::Route {
                inner: self.inner.call(req),
                headers: None,
            },
            Admission::Refused(resp) => RateLimitedFuture::Answered { resp: Some(resp) },
            Admission::Admitted(decision, limit) => RateLimitedFuture::Route {
                inner: self.inner.call(req),
                headers: Some((decision, limit)),
            },
            Admission::Wait(bucket) => {
                // The service that was polled ready serves this request; the clone stays.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let state = self.state.clone();
                RateLimitedFuture::LookingUp {
                    inner: Box::pin(async move {
                        match admit_later(&state, &mut req, bucket).await {
                            Admission::Refused(resp) => Ok(resp),
                            Admission::Admitted(decision, limit) => {
                                let mut resp = inner.call(req).await?;
                                set_headers(resp.headers_mut(), decision, &limit);
                                Ok(resp)
                            }
                            Admission::Exempt | Admission::Wait(_) => inner.call(req).await,
                        }
                    }),
                }
            }
        }
    }
}

type BoxedRoute = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

pin_project_lite::pin_project! {
    /// The route's answer, with the bucket's headers when it was counted; or the limiter's.
    #[project = RateLimitedProj]
    pub enum RateLimitedFuture<F> {
        Route { #[pin] inner: F, headers: Option<(Decision, Arc<Limit>)> },
        Answered { resp: Option<Response> },
        LookingUp { inner: BoxedRoute },
    }
}

impl<F> Future for RateLimitedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RateLimitedProj::Route { inner, headers } => {
                let mut resp = ready!(inner.poll(cx))?;
                if let Some((decision, limit)) = headers.take() {
                    set_headers(resp.headers_mut(), decision, &limit);
                }
                Poll::Ready(Ok(resp))
            }
            // Polled once: a future is not polled again after it is ready.
            RateLimitedProj::Answered { resp } => {
                Poll::Ready(Ok(resp.take().unwrap_or_else(missing_header)))
            }
            RateLimitedProj::LookingUp { inner } => inner.as_mut().poll(cx),
        }
    }
}

fn set_headers(headers: &mut HeaderMap, d: Decision, limit: &Limit) {
    debug_assert_eq!(d.limit, limit.config.limit());
    let (remaining, reset) = DIGITS.with_borrow_mut(|digits| {
        (
            digits.header(d.remaining.max(0)),
            digits.reset_header(d.reset_ms),
        )
    });
    headers.insert(LIMIT.clone(), limit.header.clone());
    headers.insert(REMAINING.clone(), remaining);
    headers.insert(RESET.clone(), reset);
}

/// Bytes each thread sets aside at a time for the limiter's number headers.
const DIGITS_CHUNK: usize = 4096;

thread_local! {
    static DIGITS: std::cell::RefCell<Digits> = std::cell::RefCell::default();
}

/// Where a thread writes the limiter's number headers: each is a slice of a shared chunk, so
/// that the two on every limited answer do not cost an allocation each
/// (`HeaderValue::from(i64)` allocates). A chunk is freed when its last header is.
#[derive(Default)]
struct Digits {
    chunk: bytes::BytesMut,
    /// The last `x-ratelimit-reset` written: a bucket's changes only when it refills, so the
    /// answers of a busy bucket share one.
    reset: Option<(i64, HeaderValue)>,
}

impl Digits {
    /// `n` as a header value, written into the chunk.
    fn header(&mut self, n: i64) -> HeaderValue {
        let mut text = itoa::Buffer::new();
        let digits = text.format(n).as_bytes();
        if self.chunk.capacity() - self.chunk.len() < digits.len() {
            self.chunk = bytes::BytesMut::with_capacity(DIGITS_CHUNK);
        }
        self.chunk.extend_from_slice(digits);
        HeaderValue::from_maybe_shared(self.chunk.split().freeze())
            .unwrap_or_else(|_| HeaderValue::from(n))
    }

    /// [`Digits::header`] for a reset time, the last one's again if it is the same.
    fn reset_header(&mut self, reset_ms: i64) -> HeaderValue {
        match &self.reset {
            Some((last, header)) if *last == reset_ms => header.clone(),
            _ => {
                let header = self.header(reset_ms);
                self.reset = Some((reset_ms, header.clone()));
                header
            }
        }
    }
}

/// Upstream's 429: problem+json, pretty-printed.
fn too_many_requests(d: Decision, now_ms: i64) -> Response {
    let text = serde_json::to_string_pretty(&exceeded(d, now_ms)).unwrap_or_default();
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    resp
}

/// The 429 body, with the wait in seconds as JavaScript prints it.
fn exceeded(d: Decision, now_ms: i64) -> RateLimitExceeded {
    let wait_ms = d.reset_ms.saturating_sub(now_ms).max(0);
    let seconds = wait_ms as f64 / 1000.0;
    let seconds_number = if wait_ms % 1000 == 0 {
        serde_json::Number::from(wait_ms / 1000)
    } else {
        serde_json::Number::from_f64(seconds).unwrap_or_else(|| serde_json::Number::from(0))
    };
    let message = format!(
        "Rate limit exceeded {}/{} requests remaining. Retry in {seconds_number} seconds.",
        d.remaining.max(0),
        d.limit
    );
    RateLimitExceeded {
        title: "Rate Limit Exceeded".into(),
        status: 429,
        kind: "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/429".into(),
        detail: message.clone(),
        reset: d.reset_ms,
        limit: d.limit,
        remaining: d.remaining,
        seconds_until_reset: seconds_number,
        error: message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_exemptions_are_exempt() {
        for path in [
            "/api/v1/token",
            "/api/v1/authorization-code",
            "/api/v1/auth/jwt/claims",
            "/api/v2/packets/run_1/payload.json",
            "/api/v3/deployments/abc/start",
            "/api/v1/runs/run_1/attempts",
            "/api/v1/waitpoints/tokens/w_1/callback/abc",
            "/api/v1/artifacts/uploads/proj_1/1-abc/secret",
            "/api/v1/sessions/s_1/snapshot-url",
            "/api/openapi.json",
            "/api/docs",
        ] {
            assert!(!limited_path(path), "{path}");
        }
        for path in [
            "/api/v1/runs",
            "/api/v1/runs/run_1/replay",
            "/api/vx/deployments",
            "/api/v/deployments",
            "/api/v1/runs/run_1/attempts/more",
            "/api/v1/waitpoints/tokens/w_1/callback",
            "/api/v1/artifacts",
            "/api/v1/projects/proj_1/runs",
            "/api/v1/auth/credential",
        ] {
            assert!(limited_path(path), "{path}");
        }
        for path in [
            "/healthz",
            "/api",
            "/apix/v1/runs",
            "/dashboard/api/v1/runs",
        ] {
            assert!(!limited_path(path), "outside the API: {path}");
        }
    }

    #[test]
    fn number_headers_are_the_numbers() {
        let mut digits = Digits::default();
        // Enough of them to fill several chunks, each still its own value.
        let values: Vec<i64> = (0..2_000).map(|i| i * 1_000_003 - 7).collect();
        let headers: Vec<HeaderValue> = values.iter().map(|&n| digits.header(n)).collect();
        for (n, header) in values.iter().zip(&headers) {
            assert_eq!(header.to_str().unwrap(), n.to_string());
        }
        assert_eq!(
            digits.header(i64::MIN).to_str().unwrap(),
            i64::MIN.to_string()
        );
    }

    #[test]
    fn a_reset_header_follows_the_reset() {
        let mut digits = Digits::default();
        for reset in [1_000, 1_000, 2_000, 1_000, 1_000] {
            let header = digits.reset_header(reset);
            assert_eq!(header.to_str().unwrap(), reset.to_string());
        }
    }

    #[test]
    fn a_429_says_when_to_retry_as_upstream_does() {
        let d = Decision {
            allowed: false,
            limit: 750,
            remaining: -1,
            reset_ms: 10_250,
        };
        let body = serde_json::to_value(exceeded(d, 7_000)).unwrap();
        assert_eq!(body["title"], "Rate Limit Exceeded");
        assert_eq!(body["status"], 429);
        assert_eq!(body["remaining"], -1, "the body keeps the bucket's -1");
        assert_eq!(body["reset"], 10_250);
        assert_eq!(body["secondsUntilReset"], 3.25);
        assert_eq!(
            body["error"],
            "Rate limit exceeded 0/750 requests remaining. Retry in 3.25 seconds."
        );
        let whole = exceeded(
            Decision {
                reset_ms: 10_000,
                ..d
            },
            7_000,
        );
        assert_eq!(
            whole.detail,
            "Rate limit exceeded 0/750 requests remaining. Retry in 3 seconds."
        );
        assert_eq!(
            serde_json::to_string(&whole.seconds_until_reset).unwrap(),
            "3"
        );
    }
}
