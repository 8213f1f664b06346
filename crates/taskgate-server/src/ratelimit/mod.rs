//! The API rate limiter: every `/api/*` request (but the exempt ones) takes a token from a
//! bucket chosen by its credential, before any route runs, as upstream's limiter does:
//!
//! - a secret key (current or in its grace window): its environment's bucket (the root's for
//!   a branch), under its organization's limit or the default;
//! - a public JWT acting for a user (`act.sub`): `jwt-actor:<envId>:<sub>`, so an agent whose
//!   token changes every turn still has one bucket; a JWT without `act`: its own bucket;
//!   both under the JWT window;
//! - anything else (an unknown key, a personal access token): a bucket of its own, keyed by
//!   the SHA-256 of the header, under the default limit.
//!
//! Every limited answer carries `x-ratelimit-limit`, `x-ratelimit-remaining` and
//! `x-ratelimit-reset` (milliseconds since the epoch, which the SDK waits for before retrying
//! a 429). A request without an `Authorization` header is answered 401 here, also as upstream.

pub mod local;
pub mod shared;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use taskgate_api::ratelimit::RateLimitExceeded;
use taskgate_core::bearer::{self, TokenKind, MAX_BEARER_LEN};
use taskgate_core::hash::{digest_hex, sha256};
use taskgate_core::ratelimit::{Decision, LimitConfig};

use self::local::{LocalBuckets, Slot};
use self::shared::SharedBuckets;
use crate::auth::cache::VerifiedJwt;
use crate::auth::env_key::{cached_key, resolve_key, ResolvedKey};
use crate::auth::jwt::{verified_public_jwt, ResolvedJwt};
use crate::error::ApiResult;
use crate::state::AppState;
use taskgate_config::RateLimits;

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

/// A limit, with its `x-ratelimit-limit` header made once (every limited answer carries it).
#[derive(Debug)]
pub struct Limit {
    pub config: LimitConfig,
    header: HeaderValue,
}

impl Limit {
    pub fn new(config: LimitConfig) -> Self {
        Limit {
            header: HeaderValue::from(config.limit()),
            config,
        }
    }
}

/// A secret key's environment's bucket, as the key's cache entry keeps it: the organization's
/// limit (or the default) and, once a request is counted in it, this node's bucket, held so
/// that counting the next skips the map of buckets.
#[derive(Debug)]
pub struct EnvBucket {
    limit: Arc<Limit>,
    slot: OnceLock<Arc<Slot>>,
}

/// The limiter of one node: its own buckets, and Redis's when configured.
pub struct RateLimiter {
    /// The default limit and the JWT window, shared with every bucket that uses them.
    default: Arc<Limit>,
    jwt: Arc<Limit>,
    local: LocalBuckets,
    shared: Option<Arc<SharedBuckets>>,
}

/// The bucket a request counts against.
struct Bucket {
    key: BucketKey,
    limit: Arc<Limit>,
}

/// A bucket's identifier. A secret key's is its environment's id and a JWT's is kept with
/// its verification, both borrowed from the lookup the route then reuses.
enum BucketKey {
    Environment(ResolvedKey),
    Jwt(ResolvedJwt),
    Other(String),
}

impl BucketKey {
    fn as_str(&self) -> &str {
        match self {
            BucketKey::Environment(r) => &r.entry.root.auth.environment.id,
            BucketKey::Jwt(r) => &r.verified.rate_limit_key,
            BucketKey::Other(key) => key,
        }
    }
}

/// One request counted: the answer, under which limit, and the credential the limiter
/// resolved, which the route finds in the request's extensions.
struct Checked {
    decision: Decision,
    limit: Arc<Limit>,
    resolved: Option<Resolved>,
}

enum Resolved {
    Key(ResolvedKey),
    Jwt(ResolvedJwt),
}

impl Checked {
    fn new(decision: Decision, bucket: Bucket) -> Self {
        let resolved = match bucket.key {
            BucketKey::Environment(resolved) => Some(Resolved::Key(resolved)),
            BucketKey::Jwt(resolved) => Some(Resolved::Jwt(resolved)),
            BucketKey::Other(_) => None,
        };
        Checked {
            decision,
            limit: bucket.limit,
            resolved,
        }
    }
}

impl RateLimiter {
    pub fn new(limits: RateLimits, shared: Option<Arc<SharedBuckets>>, now_ms: i64) -> Self {
        RateLimiter {
            default: Arc::new(Limit::new(limits.default)),
            jwt: Arc::new(Limit::new(limits.jwt)),
            local: LocalBuckets::new(now_ms),
            shared,
        }
    }

    pub fn shared(&self) -> Option<&Arc<SharedBuckets>> {
        self.shared.as_ref()
    }

    /// Counts one request with `authorization` in its bucket, if that needs no waiting: its
    /// credential is in the caches (or needs no lookup) and the buckets are this node's.
    /// Otherwise, for [`RateLimiter::check`]: the bucket if the caches told it (Redis counts
    /// it), `None` if the credential must be looked up first.
    fn check_now(
        &self,
        state: &AppState,
        authorization: &HeaderValue,
    ) -> Result<Checked, Option<Bucket>> {
        let now = state.now_millis();
        let bucket = self.bucket_now(state, authorization, now);
        match bucket {
            Some(bucket) if self.shared.is_none() => {
                let decision = self.take_local(&bucket, now);
                Ok(Checked::new(decision, bucket))
            }
            bucket => Err(bucket),
        }
    }

    /// Counts one request with `authorization` in `bucket`, or in the bucket its credential's
    /// lookup chooses; with the credential it looked up, if any, for the route to reuse.
    async fn check(
        &self,
        state: &AppState,
        authorization: &HeaderValue,
        bucket: Option<Bucket>,
    ) -> Checked {
        let bucket = match bucket {
            Some(bucket) => bucket,
            None => self.look_up_bucket(state, authorization).await,
        };
        let now = state.now_millis();
        let shared = match &self.shared {
            Some(shared) => {
                shared
                    .take(bucket.key.as_str(), &bucket.limit.config, now)
                    .await
            }
            None => None,
        };
        let decision = shared.unwrap_or_else(|| self.take_local(&bucket, now));
        Checked::new(decision, bucket)
    }

    /// Counts one request in this node's `bucket`, as the credential's cache entry holds it
    /// (a key's environment's or a verified JWT's).
    fn take_local(&self, bucket: &Bucket, now_ms: i64) -> Decision {
        let key = bucket.key.as_str();
        let config = &bucket.limit.config;
        let held = match &bucket.key {
            BucketKey::Environment(r) => r.entry.root.bucket.get().map(|env| &env.slot),
            BucketKey::Jwt(r) => Some(&r.verified.bucket),
            BucketKey::Other(_) => None,
        };
        match held {
            Some(held) => {
                let slot = held.get_or_init(|| self.local.hold(key, now_ms));
                self.local.take_held(slot, key, config, now_ms)
            }
            None => self.local.take(key, config, now_ms),
        }
    }

    /// Chooses the bucket, as upstream's `resolveApiRateLimitOverride`, if the caches can
    /// tell: `None` when the credential must be looked up or verified first
    /// ([`RateLimiter::look_up_bucket`]). `now_ms`: milliseconds since the epoch.
    fn bucket_now(
        &self,
        state: &AppState,
        authorization: &HeaderValue,
        now_ms: i64,
    ) -> Option<Bucket> {
        match credential(authorization) {
            Credential::SecretKey(token) => {
                match cached_key(state, authorization, token, now_ms)? {
                    Some(resolved) => {
                        let limit = resolved.entry.root.bucket.get()?.limit.clone();
                        Some(Bucket {
                            key: BucketKey::Environment(resolved),
                            limit,
                        })
                    }
                    None => Some(self.by_header(authorization)),
                }
            }
            // It has a dot: the cache is asked at the clock reading the limiter already has.
            Credential::MaybeJwt(token) => match state.cache.verified_jwt(token, now_ms) {
                Some(verified) => Some(self.jwt_bucket(authorization, verified)),
                None if std::str::from_utf8(token)
                    .is_ok_and(|t| bearer::classify(t) == TokenKind::PublicJwt) =>
                {
                    None
                }
                None => Some(self.by_header(authorization)),
            },
            Credential::Other => Some(self.by_header(authorization)),
        }
    }

    /// Chooses the bucket of a credential the caches do not hold. Authentication here goes
    /// through the same caches as the route's, so the route looks nothing up again; a lookup
    /// that fails (the database is down) counts against the header's own bucket.
    async fn look_up_bucket(&self, state: &AppState, authorization: &HeaderValue) -> Bucket {
        match credential(authorization) {
            Credential::SecretKey(token) => match resolve_key(state, authorization, token).await {
                Some(resolved) => {
                    let limit = self.env_bucket(state, &resolved).await;
                    Bucket {
                        key: BucketKey::Environment(resolved),
                        limit,
                    }
                }
                None => self.by_header(authorization),
            },
            Credential::MaybeJwt(token) => {
                let verified = match std::str::from_utf8(token) {
                    Ok(token) => verified_public_jwt(state, token).await.ok(),
                    Err(_) => None,
                };
                match verified {
                    Some(verified) => self.jwt_bucket(authorization, verified),
                    None => self.by_header(authorization),
                }
            }
            Credential::Other => self.by_header(authorization),
        }
    }

    fn jwt_bucket(&self, authorization: &HeaderValue, verified: Arc<VerifiedJwt>) -> Bucket {
        Bucket {
            key: BucketKey::Jwt(ResolvedJwt {
                header: authorization.clone(),
                verified,
            }),
            limit: self.jwt.clone(),
        }
    }

    /// The bucket of anything that is neither a live key nor a verified JWT: the header's own,
    /// under the default limit.
    fn by_header(&self, authorization: &HeaderValue) -> Bucket {
        Bucket {
            key: BucketKey::Other(digest_hex(&sha256(authorization.as_bytes()))),
            limit: self.default.clone(),
        }
    }

    /// The limit of a secret key's organization, or the default: read once per cached key
    /// entry (concurrent first requests share the read) and kept with the environment's bucket
    /// in it; the entry is dropped when the limit changes. A failed read counts against the
    /// default and is tried again.
    async fn env_bucket(&self, state: &AppState, resolved: &ResolvedKey) -> Arc<Limit> {
        let root = &resolved.entry.root;
        let read = root
            .bucket
            .get_or_try_init(|| async {
                let limit = org_limit(state, &root.auth.environment.organization_id).await?;
                ApiResult::Ok(EnvBucket {
                    limit: limit.map_or_else(|| self.default.clone(), |c| Arc::new(Limit::new(c))),
                    slot: OnceLock::new(),
                })
            })
            .await;
        match read {
            Ok(bucket) => bucket.limit.clone(),
            Err(_) => self.default.clone(),
        }
    }
}

/// What a request's credential is, as far as choosing its bucket goes, before any lookup.
enum Credential<'a> {
    /// An environment's secret key (`tr_…`, but not a user's token), as bytes: a cached key
    /// is found by its digest, and only a lookup needs it as text.
    SecretKey(&'a [u8]),
    /// Perhaps a public JWT (it has a dot): the verified-token cache (which finds it by its
    /// bytes) or a parse tells.
    MaybeJwt(&'a [u8]),
    /// Anything else: a personal access token, garbage.
    Other,
}

fn credential(authorization: &HeaderValue) -> Credential<'_> {
    let raw = authorization.as_bytes();
    if raw.len() > MAX_BEARER_LEN {
        return Credential::Other;
    }
    let token = raw.strip_prefix(b"Bearer ").unwrap_or(raw);
    let user_token = [
        taskgate_core::pat::PAT_PREFIX,
        taskgate_core::uat::UAT_PREFIX,
        "tr_oat_",
    ]
    .iter()
    .any(|p| token.starts_with(p.as_bytes()));
    if token.starts_with(b"tr_") && !user_token {
        Credential::SecretKey(token)
    } else if token.contains(&b'.') {
        Credential::MaybeJwt(token)
    } else {
        Credential::Other
    }
}

async fn org_limit(state: &AppState, organization_id: &str) -> ApiResult<Option<LimitConfig>> {
    match state.store.org_rate_limit(organization_id).await {
        Ok(limit) => Ok(limit),
        Err(taskgate_store::StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
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
    match limiter.check_now(state, authorization) {
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
    let checked = limiter.check(state, authorization, bucket).await;
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
