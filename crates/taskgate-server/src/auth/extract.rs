//! Axum extractors, one per credential policy. Each reads the `Authorization` header, rejects
//! oversized or malformed values before any lookup, and words its failures as the upstream
//! route family does.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use taskgate_core::bearer::{self, TokenKind, MAX_BEARER_LEN};

use super::{EnvCredential, EnvPrincipal, UserCredential, UserPrincipal};
use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry::RequestLog;
use taskgate_auth::env_key::{authenticate_secret_key, ResolvedKey, SecretKey};
use taskgate_auth::jwt::{authenticate_public_jwt, cached_public_jwt, principal_of, ResolvedJwt};
use taskgate_auth::user::{authenticate_pat, authenticate_uat, UserAuthFailure};

/// The bearer token of the live resolver: a leading `Bearer ` removed, then trimmed; `None`
/// when the header is missing, oversized or empty.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    if value.len() > MAX_BEARER_LEN {
        return None;
    }
    bearer::strip_bearer(value.to_str().ok()?)
}

/// The bearer token of a request's headers (as [`bearer_token`]).
pub fn bearer_of(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?;
    if value.len() > MAX_BEARER_LEN {
        return None;
    }
    bearer::strip_bearer(value.to_str().ok()?).map(str::to_string)
}

/// The token of upstream's PAT-only helpers: the header must read `Bearer <token>`.
pub fn strict_bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    bearer::strip_bearer_strict(value.to_str().ok()?)
}

/// Tells the access log which environment credential authenticated the request.
fn noted(parts: &Parts, p: EnvPrincipal) -> EnvPrincipal {
    let env_id = p.env.environment.id.as_str();
    let (kind, id) = match &p.credential {
        EnvCredential::SecretKey { grace: None } => ("secret_key", env_id),
        EnvCredential::SecretKey { grace: Some(g) } => ("grace_key", g.revoked_key_id()),
        EnvCredential::PublicJwt(_) => ("public_jwt", env_id),
    };
    RequestLog::note_credential(parts, kind, id);
    p
}

/// Tells the access log which user credential authenticated the request.
fn noted_user(parts: &Parts, p: UserPrincipal) -> UserPrincipal {
    let kind = match &p.credential {
        UserCredential::Pat { .. } => "personal_access_token",
        UserCredential::Uat { .. } => "user_actor_token",
        UserCredential::Session { .. } => "dashboard_session",
    };
    RequestLog::note_credential(parts, kind, p.pat_id().unwrap_or(&p.user.id));
    p
}

/// The rate limiter's lookup of this request's secret key, if it made one of the header the
/// request still has.
fn resolved(parts: &Parts) -> Option<&ResolvedKey> {
    let resolved = parts.extensions.get::<ResolvedKey>()?;
    (parts.headers.get(axum::http::header::AUTHORIZATION) == Some(&resolved.header))
        .then_some(resolved)
}

/// The rate limiter's verification of this request's JWT, if it made one of the header the
/// request still has.
fn resolved_jwt(parts: &Parts) -> Option<&ResolvedJwt> {
    let resolved = parts.extensions.get::<ResolvedJwt>()?;
    (parts.headers.get(axum::http::header::AUTHORIZATION) == Some(&resolved.header))
        .then_some(resolved)
}

/// Made once: a lookup by a string parses the name on every request.
static BRANCH_HEADER: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-trigger-branch");

fn branch_header(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(&BRANCH_HEADER)
        .and_then(|v| v.to_str().ok())
}

/// Secret keys (current or grace) and public JWTs: the route builders with `allowJWT`.
pub struct ApiAuth(pub EnvPrincipal);

impl FromRequestParts<AppState> for ApiAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The rate limiter's lookup or verification, if it made one: the token is not parsed
        // again.
        if let Some(r) = resolved(parts) {
            let principal = authenticate_secret_key(
                &state.auth,
                SecretKey::Resolved(r),
                branch_header(parts),
                false,
            )
            .await?;
            return Ok(Self(noted(parts, principal)));
        }
        if let Some(r) = resolved_jwt(parts) {
            return Ok(Self(noted(parts, principal_of(&state.auth, &r.verified))));
        }
        let token = bearer_token(parts)
            .ok_or_else(|| ApiError::unauthorized("Invalid or Missing API key"))?;
        // An earlier verification (the cache is asked only for tokens with dots); else a JWT
        // has dots and a secret key skips classification.
        let principal = if let Some(verified) = cached_public_jwt(&state.auth, token.as_bytes()) {
            principal_of(&state.auth, &verified)
        } else if token.contains('.') && bearer::classify(token) == TokenKind::PublicJwt {
            authenticate_public_jwt(&state.auth, token).await?
        } else {
            authenticate_secret_key(
                &state.auth,
                SecretKey::Token(token),
                branch_header(parts),
                false,
            )
            .await?
        };
        Ok(Self(noted(parts, principal)))
    }
}

/// A secret key's principal: the rate limiter's lookup of this request's header if it made
/// one, else a lookup of the bearer token (`None` without one).
async fn secret_key_principal(
    parts: &Parts,
    state: &AppState,
) -> Option<Result<EnvPrincipal, ApiError>> {
    let key = match resolved(parts) {
        Some(r) => SecretKey::Resolved(r),
        None => SecretKey::Token(bearer_token(parts)?),
    };
    Some(
        authenticate_secret_key(&state.auth, key, branch_header(parts), false)
            .await
            .map_err(ApiError::from),
    )
}

/// Secret keys only (a JWT is looked up as a key and fails): `/api/v1/auth/public-tokens`.
pub struct SecretKeyAuth(pub EnvPrincipal);

impl FromRequestParts<AppState> for SecretKeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = secret_key_principal(parts, state)
            .await
            .ok_or_else(|| ApiError::unauthorized("Invalid or Missing API key"))??;
        Ok(Self(noted(parts, principal)))
    }
}

/// The legacy helper (`authenticateApiRequest`): secret keys only, every failure worded
/// `Invalid or Missing API key` (`/api/v1/auth/jwt`, `/api/v1/auth/jwt/claims`).
pub struct LegacyKeyAuth(pub EnvPrincipal);

impl FromRequestParts<AppState> for LegacyKeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let missing = || ApiError::unauthorized("Invalid or Missing API key");
        match secret_key_principal(parts, state).await {
            Some(Ok(p)) => Ok(Self(noted(parts, p))),
            Some(Err(e)) if e.status != StatusCode::UNAUTHORIZED => Err(e),
            Some(Err(_)) | None => Err(missing()),
        }
    }
}

/// Personal access tokens only, worded `Invalid or Missing Access Token` (regenerate-api-key,
/// `/api/v2/whoami`, the revoked-key listing).
pub struct AccessTokenPat(pub UserPrincipal);

impl FromRequestParts<AppState> for AccessTokenPat {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refused = || ApiError::unauthorized("Invalid or Missing Access Token");
        let token = strict_bearer_token(parts).ok_or_else(refused)?;
        match authenticate_pat(&state.auth, token).await {
            Ok(p) => Ok(Self(noted_user(parts, p))),
            Err(UserAuthFailure::Unavailable(e)) => Err(e.into()),
            Err(_) => Err(refused()),
        }
    }
}

/// Personal access tokens only, worded as the RBAC fallback (`Invalid or Missing PAT`,
/// `Invalid PAT`): the user-actor-token mint route and taskgate's own token routes.
pub struct PatAuth(pub UserPrincipal);

impl FromRequestParts<AppState> for PatAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token =
            bearer_token(parts).ok_or_else(|| ApiError::unauthorized("Invalid or Missing PAT"))?;
        match authenticate_pat(&state.auth, token).await {
            Ok(p) => Ok(Self(noted_user(parts, p))),
            Err(UserAuthFailure::Missing) => Err(ApiError::unauthorized("Invalid or Missing PAT")),
            Err(UserAuthFailure::Invalid) => Err(ApiError::unauthorized("Invalid PAT")),
            Err(UserAuthFailure::Unavailable(e)) => Err(e.into()),
        }
    }
}

/// Personal access tokens or user-actor tokens: upstream's PAT route builders
/// (`/api/v1/orgs*`, `/api/v1/projects/*`).
pub struct UserAuth(pub UserPrincipal);

impl FromRequestParts<AppState> for UserAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token =
            bearer_token(parts).ok_or_else(|| ApiError::unauthorized("Invalid or Missing PAT"))?;
        if token.starts_with(taskgate_core::uat::UAT_PREFIX) {
            return match authenticate_uat(&state.auth, token).await {
                Ok(p) => Ok(Self(noted_user(parts, p))),
                Err(UserAuthFailure::Unavailable(e)) => Err(e.into()),
                Err(_) => Err(ApiError::unauthorized("Invalid user-actor token")),
            };
        }
        PatAuth::from_request_parts(parts, state)
            .await
            .map(|PatAuth(p)| Self(p))
    }
}

/// A user's token, or an environment's secret key (what `trigger.dev deploy` sends when
/// `TRIGGER_ACCESS_TOKEN` is a key): `GET /api/v1/projects/{ref}/{env}`.
pub enum UserOrKey {
    User(UserPrincipal),
    Key(EnvPrincipal),
}

impl FromRequestParts<AppState> for UserOrKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // As the CLI tells them apart: `tr_…` but not a user's or an organization's token.
        let is_key = bearer_token(parts).is_some_and(|t| {
            t.starts_with("tr_")
                && matches!(
                    bearer::classify(t),
                    TokenKind::SecretKey | TokenKind::AdditionalKey
                )
        });
        if is_key {
            return SecretKeyAuth::from_request_parts(parts, state)
                .await
                .map(|SecretKeyAuth(p)| Self::Key(p));
        }
        UserAuth::from_request_parts(parts, state)
            .await
            .map(|UserAuth(p)| Self::User(p))
    }
}

/// A platform administrator's personal access token: every `/admin/api/*` route. User-actor
/// tokens are refused even for an administrator.
pub struct AdminAuth(pub UserPrincipal);

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refused = || ApiError::unauthorized("Invalid or Missing API key");
        let token = strict_bearer_token(parts).ok_or_else(refused)?;
        let principal = match authenticate_pat(&state.auth, token).await {
            Ok(p) => noted_user(parts, p),
            Err(UserAuthFailure::Unavailable(e)) => return Err(e.into()),
            Err(_) => return Err(refused()),
        };
        if !principal.user.admin {
            return Err(ApiError::forbidden(
                "You must be an admin to perform this action",
            ));
        }
        Ok(Self(principal))
    }
}
