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

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use taskgate_api::ratelimit::RateLimitExceeded;
use taskgate_core::bearer::{self, TokenKind, MAX_BEARER_LEN};
use taskgate_core::hash::{digest_hex, sha256};
use taskgate_core::ratelimit::{Decision, LimitConfig};

use self::local::LocalBuckets;
use self::shared::SharedBuckets;
use crate::auth::env_key::{resolve_key, ResolvedKey};
use crate::auth::jwt::{cached_public_jwt, verified_public_jwt, ResolvedJwt};
use crate::config::RateLimits;
use crate::error::ApiResult;
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

/// The credential the limiter resolved, handed to the route in the request's extensions.
enum Resolved {
    Key(ResolvedKey),
    Jwt(ResolvedJwt),
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

    /// Counts one request with `authorization` in its bucket; with the secret key it looked
    /// up, if any, for the route to reuse.
    async fn check(
        &self,
        state: &AppState,
        authorization: &HeaderValue,
    ) -> (Decision, Arc<Limit>, Option<Resolved>) {
        let bucket = self.bucket(state, authorization).await;
        let now = state.now_millis();
        let key = bucket.key.as_str();
        let config = &bucket.limit.config;
        let decision = match &self.shared {
            Some(shared) => match shared.take(key, config, now).await {
                Some(decision) => decision,
                None => self.local.take(key, config, now),
            },
            None => self.local.take(key, config, now),
        };
        let resolved = match bucket.key {
            BucketKey::Environment(resolved) => Some(Resolved::Key(resolved)),
            BucketKey::Jwt(resolved) => Some(Resolved::Jwt(resolved)),
            BucketKey::Other(_) => None,
        };
        (decision, bucket.limit, resolved)
    }

    /// Chooses the bucket, as upstream's `resolveApiRateLimitOverride`. Authentication here
    /// goes through the same caches as the route's, so it costs no query in steady state; a
    /// lookup that fails (the database is down) counts against the header's own bucket.
    async fn bucket(&self, state: &AppState, authorization: &HeaderValue) -> Bucket {
        let raw = authorization.as_bytes();
        let by_header = |limit: &Arc<Limit>| Bucket {
            key: BucketKey::Other(digest_hex(&sha256(raw))),
            limit: limit.clone(),
        };
        let token = std::str::from_utf8(raw)
            .ok()
            .filter(|_| raw.len() <= MAX_BEARER_LEN)
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v));
        let Some(token) = token else {
            return by_header(&self.default);
        };
        let user_token = [
            taskgate_core::pat::PAT_PREFIX,
            taskgate_core::uat::UAT_PREFIX,
            "tr_oat_",
        ]
        .iter()
        .any(|p| token.starts_with(p));
        if token.starts_with("tr_") && !user_token {
            return match resolve_key(state, authorization, token).await {
                Ok(Some(resolved)) => {
                    let limit = self.org_limit(state, &resolved).await;
                    Bucket {
                        key: BucketKey::Environment(resolved),
                        limit,
                    }
                }
                _ => by_header(&self.default),
            };
        }
        // A token verified before needs no classification (which parses it).
        let verified = cached_public_jwt(state, token);
        if verified.is_some()
            || token.contains('.') && bearer::classify(token) == TokenKind::PublicJwt
        {
            let verified = match verified {
                Some(v) => Ok(v),
                None => verified_public_jwt(state, token).await,
            };
            return match verified {
                Ok(verified) => Bucket {
                    key: BucketKey::Jwt(ResolvedJwt {
                        header: authorization.clone(),
                        verified,
                    }),
                    limit: self.jwt.clone(),
                },
                Err(_) => by_header(&self.default),
            };
        }
        by_header(&self.default)
    }

    /// The limit of a secret key's organization, or the default: read once per cached key
    /// entry (concurrent first requests share the read) and kept with it; the entry is dropped
    /// when the limit changes. A failed read counts against the default and is tried again.
    async fn org_limit(&self, state: &AppState, resolved: &ResolvedKey) -> Arc<Limit> {
        let root = &resolved.entry.root;
        let read = root
            .org_limit
            .get_or_try_init(|| async {
                org_limit(state, &root.auth.environment.organization_id)
                    .await
                    .map(|limit| limit.map(|config| Arc::new(Limit::new(config))))
            })
            .await;
        match read {
            Ok(Some(limit)) => limit.clone(),
            Ok(None) | Err(_) => self.default.clone(),
        }
    }
}

async fn org_limit(state: &AppState, organization_id: &str) -> ApiResult<Option<LimitConfig>> {
    match state.store.org_rate_limit(organization_id).await {
        Ok(limit) => Ok(limit),
        Err(taskgate_store::StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The middleware: 401 without a header, 429 from an empty bucket, else the route's answer
/// with the bucket's headers.
pub async fn limit_api_requests(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if req.method() == Method::OPTIONS || !limited_path(path) {
        return next.run(req).await;
    }
    let Some(authorization) = req.headers().get(header::AUTHORIZATION) else {
        let mut resp = (StatusCode::UNAUTHORIZED, MISSING_HEADER).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        return resp;
    };
    let Some(limiter) = &state.limiter else {
        return next.run(req).await;
    };
    let (decision, limit, resolved) = limiter.check(&state, authorization).await;
    if !decision.allowed {
        metrics::counter!("taskgate_rate_limited_total").increment(1);
        let mut resp = too_many_requests(decision, state.now_millis());
        set_headers(resp.headers_mut(), decision, &limit);
        return resp;
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
    let mut resp = next.run(req).await;
    set_headers(resp.headers_mut(), decision, &limit);
    resp
}

fn set_headers(headers: &mut HeaderMap, d: Decision, limit: &Limit) {
    debug_assert_eq!(d.limit, limit.config.limit());
    headers.insert(LIMIT.clone(), limit.header.clone());
    headers.insert(REMAINING.clone(), HeaderValue::from(d.remaining.max(0)));
    headers.insert(RESET.clone(), HeaderValue::from(d.reset_ms));
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
