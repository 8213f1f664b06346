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
use taskgate_core::time::to_millis;

use self::local::LocalBuckets;
use self::shared::SharedBuckets;
use crate::auth::env_key::{resolve_key, ResolvedKey};
use crate::auth::jwt::authenticate_public_jwt;
use crate::config::RateLimits;
use crate::error::ApiResult;
use crate::state::AppState;

/// Paths under `/api/` that are never limited nor need a header: upstream's exemptions that
/// taskgate serves (the CLI's login, packet handshakes, deployments, callbacks) and
/// taskgate's own documents.
const EXEMPT_PREFIXES: &[&str] = &[
    "/api/v1/auth/jwt/claims",
    "/api/v1/authorization-code",
    "/api/v1/token",
    "/api/v1/timezones",
    "/api/v1/packets/",
    "/api/v2/packets/",
    "/api/openapi.json",
    "/api/docs",
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

/// Whether `path` is exempt (upstream's list, with its `deployments` and callback patterns).
fn exempt(path: &str) -> bool {
    if EXEMPT_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return true;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        // /api/v{n}/deployments…
        ["api", v, "deployments", ..] => v.strip_prefix('v').is_some_and(is_number),
        // /api/v1/runs/{id}/attempts
        ["api", "v1", "runs", _, "attempts"] => true,
        // /api/v1/waitpoints/tokens/{id}/callback/{hash}
        ["api", "v1", "waitpoints", "tokens", _, "callback", _] => true,
        // /api/v1/sessions/{id}/snapshot-url
        ["api", "v1", "sessions", _, "snapshot-url"] => true,
        _ => false,
    }
}

/// Whether requests to `path` are rate-limited (and need an `Authorization` header).
pub fn limited_path(path: &str) -> bool {
    path.starts_with("/api/") && !exempt(path)
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The limiter of one node: its own buckets, and Redis's when configured.
pub struct RateLimiter {
    limits: RateLimits,
    default: Arc<LimitConfig>,
    jwt: Arc<LimitConfig>,
    local: LocalBuckets,
    shared: Option<Arc<SharedBuckets>>,
}

/// The bucket a request counts against.
struct Bucket {
    key: String,
    config: Arc<LimitConfig>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits, shared: Option<Arc<SharedBuckets>>, now_ms: i64) -> Self {
        RateLimiter {
            default: Arc::new(limits.default.clone()),
            jwt: Arc::new(limits.jwt.clone()),
            limits,
            local: LocalBuckets::new(now_ms),
            shared,
        }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    pub fn shared(&self) -> Option<&Arc<SharedBuckets>> {
        self.shared.as_ref()
    }

    /// Counts one request with `authorization` in its bucket; with the secret key it looked
    /// up, if any, for the route to reuse.
    async fn check(
        &self,
        state: &AppState,
        authorization: &[u8],
    ) -> (Decision, Option<ResolvedKey>) {
        let (bucket, resolved) = self.bucket(state, authorization).await;
        let now = to_millis(state.now());
        if let Some(shared) = &self.shared {
            if let Some(decision) = shared.take(&bucket.key, &bucket.config, now).await {
                return (decision, resolved);
            }
        }
        (self.local.take(&bucket.key, &bucket.config, now), resolved)
    }

    /// Chooses the bucket, as upstream's `resolveApiRateLimitOverride`. Authentication here
    /// goes through the same caches as the route's, so it costs no query in steady state; a
    /// lookup that fails (the database is down) counts against the header's own bucket.
    async fn bucket(
        &self,
        state: &AppState,
        authorization: &[u8],
    ) -> (Bucket, Option<ResolvedKey>) {
        let by_header = |config: &Arc<LimitConfig>| Bucket {
            key: digest_hex(&sha256(authorization)),
            config: config.clone(),
        };
        let token = std::str::from_utf8(authorization)
            .ok()
            .filter(|_| authorization.len() <= MAX_BEARER_LEN)
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v));
        let Some(token) = token else {
            return (by_header(&self.default), None);
        };
        let user_token = [
            taskgate_core::pat::PAT_PREFIX,
            taskgate_core::uat::UAT_PREFIX,
            "tr_oat_",
        ]
        .iter()
        .any(|p| token.starts_with(p));
        if token.starts_with("tr_") && !user_token {
            return match resolve_key(state, token).await {
                Ok(Some(resolved)) => {
                    let env = &resolved.entry.root.auth.environment;
                    let bucket = Bucket {
                        key: env.id.clone(),
                        config: self.org_limit(state, &env.organization_id).await,
                    };
                    (bucket, Some(resolved))
                }
                _ => (by_header(&self.default), None),
            };
        }
        if token.contains('.') && bearer::classify(token) == TokenKind::PublicJwt {
            let bucket = match authenticate_public_jwt(state, token).await {
                Ok(principal) => {
                    let config = self.jwt.clone();
                    match principal.jwt().and_then(|g| g.actor.as_ref()) {
                        Some(actor) => Bucket {
                            key: format!(
                                "jwt-actor:{}:{}",
                                principal.env.environment.id, actor.user_id
                            ),
                            config,
                        },
                        None => Bucket {
                            key: digest_hex(&sha256(authorization)),
                            config,
                        },
                    }
                }
                Err(_) => by_header(&self.default),
            };
            return (bucket, None);
        }
        (by_header(&self.default), None)
    }

    /// The organization's limit, or the default; from the cache, else read once.
    async fn org_limit(&self, state: &AppState, organization_id: &str) -> Arc<LimitConfig> {
        let default = || self.default.clone();
        if let Some(limit) = state.cache.org_limit(organization_id) {
            return limit.unwrap_or_else(default);
        }
        let generation = state.cache.generation();
        match org_limit(state, organization_id).await {
            Ok(limit) => {
                let limit = limit.map(Arc::new);
                state
                    .cache
                    .insert_org_limit(generation, organization_id, limit.clone());
                limit.unwrap_or_else(default)
            }
            Err(_) => default(),
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
    let Some(limiter) = state.limiter.clone() else {
        return next.run(req).await;
    };
    let (decision, resolved) = limiter.check(&state, authorization.as_bytes()).await;
    if !decision.allowed {
        metrics::counter!("taskgate_rate_limited_total").increment(1);
        let mut resp = too_many_requests(decision, to_millis(state.now()));
        set_headers(resp.headers_mut(), decision);
        return resp;
    }
    if let Some(resolved) = resolved {
        req.extensions_mut().insert(resolved);
    }
    let mut resp = next.run(req).await;
    set_headers(resp.headers_mut(), decision);
    resp
}

fn set_headers(headers: &mut HeaderMap, d: Decision) {
    headers.insert(LIMIT.clone(), HeaderValue::from(d.limit));
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
            "/api/openapi.json",
        ] {
            assert!(exempt(path), "{path}");
        }
        for path in [
            "/api/v1/runs",
            "/api/v1/runs/run_1/replay",
            "/api/vx/deployments",
            "/api/v1/projects/proj_1/runs",
        ] {
            assert!(!exempt(path), "{path}");
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
