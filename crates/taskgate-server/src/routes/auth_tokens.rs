//! Minting public access tokens. Tokens are always signed with the
//! environment's canonical current key (the parent's for a branch child), never with the key
//! the caller presented, so a token minted with a grace-window key validates after the grace.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use taskgate_api::*;
use taskgate_core::duration::{jose_expiration, ExpirationInput};
use taskgate_core::jwt::PublicJwtClaims;
use taskgate_core::scope::{scopes_within_ability, Ability};

use crate::auth::extract::{LegacyKeyAuth, SecretKeyAuth};
use crate::auth::{EnvCredential, EnvPrincipal};
use crate::error::{ApiError, ApiResult};
use crate::json::{json_response, parse_lenient};
use crate::state::AppState;

/// Longest lifetime of a token from `/api/v1/auth/public-tokens`.
const MAX_PUBLIC_TOKEN_SECONDS: i64 = 30 * 24 * 60 * 60;

/// Refuses to sign a token living longer than `--max-jwt-ttl-seconds` (taskgate's bound;
/// upstream signs any `expirationTime`, up to `exp = 2^63 - 1`).
pub fn within_ceiling(state: &AppState, exp: i64, now: i64) -> ApiResult<()> {
    let max = state.config.tokens.max_jwt_ttl_seconds;
    if exp.saturating_sub(now) > max {
        return Err(ApiError::bad_request(format!(
            "Expiration time must be at most {max} seconds from now"
        ))
        .with("code", "expiration_too_far"));
    }
    Ok(())
}

/// Signs `payload` (plus iss, aud, iat, exp) with the principal's signing key.
pub(crate) fn sign_env_jwt(
    principal: &EnvPrincipal,
    claims: &PublicJwtClaims,
    now_secs: i64,
    exp: i64,
) -> String {
    claims.sign(
        principal.signing_key.expose_secret().as_bytes(),
        now_secs,
        exp,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MintJwtBody {
    #[serde(default)]
    claims: Option<MintJwtClaims>,
    #[serde(default)]
    expiration_time: Option<ExpirationInput>,
}

#[derive(Debug, Deserialize)]
struct MintJwtClaims {
    #[serde(default)]
    scopes: Vec<String>,
}

fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8], empty_ok: bool) -> ApiResult<T> {
    let value = parse_lenient(bytes)?;
    let value = if value.is_null() && empty_ok {
        json!({})
    } else {
        value
    };
    serde_json::from_value(value).map_err(|e| ApiError::invalid_body(e.to_string()))
}

/// Mints a public access token for the key's environment (default lifetime 1 h; a number
/// `expirationTime` is absolute epoch seconds, a string is relative, as jose).
#[utoipa::path(post, path = "/api/v1/auth/jwt", tag = "public tokens", security(("secretKey" = [])),
    request_body(content = Object, description = "{claims?: {scopes?: string[]}, expirationTime?: number | string}"),
    responses((status = 200, body = TokenBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn mint_jwt(
    State(state): State<AppState>,
    LegacyKeyAuth(principal): LegacyKeyAuth,
    body: Bytes,
) -> ApiResult<Json<TokenBody>> {
    let body: MintJwtBody = parse_body(&body, true)?;
    let now = state.now().timestamp();
    let exp = jose_expiration(body.expiration_time.as_ref(), "1h", now)
        .map_err(|_| ApiError::bad_request("Invalid expiration time"))?;
    within_ceiling(&state, exp, now)?;
    let mut claims = PublicJwtClaims::new(principal.env.environment.id.clone());
    claims.scopes = body.claims.map(|c| c.scopes);
    Ok(Json(TokenBody {
        token: sign_env_jwt(&principal, &claims, now, exp),
    }))
}

/// The claims the official SDK self-signs a public token with: `{"sub", "pub": true}`.
#[utoipa::path(post, path = "/api/v1/auth/jwt/claims", tag = "public tokens", security(("secretKey" = [])),
    responses((status = 200, body = JwtClaimsResponse), (status = 401, body = ErrorBody)))]
pub async fn jwt_claims(LegacyKeyAuth(principal): LegacyKeyAuth) -> Json<JwtClaimsResponse> {
    Json(JwtClaimsResponse {
        sub: principal.env.environment.id.to_string(),
        public: true,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicTokenBody {
    scopes: Vec<String>,
    #[serde(default)]
    expiration_time: Option<ExpirationInput>,
    #[serde(default)]
    one_time_use: Option<bool>,
    #[serde(default)]
    realtime: Option<RealtimeOptions>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RealtimeOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    skip_columns: Option<Vec<String>>,
}

/// Mints a scoped public access token; the scopes must lie within the caller's own access.
#[utoipa::path(post, path = "/api/v1/auth/public-tokens", tag = "public tokens", security(("secretKey" = [])),
    request_body(content = Object, description = "{scopes: string[] (≥1), expirationTime?: string | number, oneTimeUse?: boolean, realtime?: {skipColumns?: string[]}}"),
    responses((status = 200, body = TokenBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_public_token(
    State(state): State<AppState>,
    SecretKeyAuth(principal): SecretKeyAuth,
    body: Bytes,
) -> ApiResult<Json<TokenBody>> {
    let body: PublicTokenBody = parse_body(&body, false)?;
    if body.scopes.is_empty() {
        return Err(ApiError::invalid_body(
            "scopes must contain at least one scope",
        ));
    }
    let ability = match &principal.credential {
        EnvCredential::SecretKey { .. } => Ability::Permissive,
        EnvCredential::PublicJwt(grant) => grant.ability.clone(),
    };
    let denied = scopes_within_ability(&body.scopes, &ability);
    if !denied.is_empty() {
        return Err(
            ApiError::forbidden("Requested scopes exceed the API key's access")
                .with("code", "scopes_exceed_key_access")
                .with("deniedScopes", json!(denied)),
        );
    }
    let now = state.now().timestamp();
    let exp = jose_expiration(body.expiration_time.as_ref(), "15m", now)
        .map_err(|_| ApiError::bad_request("Invalid expiration time"))?;
    if exp <= now {
        return Err(ApiError::bad_request(
            "Expiration time must be in the future",
        ));
    }
    if exp - now > MAX_PUBLIC_TOKEN_SECONDS {
        return Err(ApiError::bad_request(
            "Expiration time cannot exceed 30 days",
        ));
    }
    within_ceiling(&state, exp, now)?;
    let claims = PublicJwtClaims {
        one_time_use: body.one_time_use == Some(true),
        realtime: body.realtime.map(|rt| json!(rt)),
        ..PublicJwtClaims::new(principal.env.environment.id.clone()).scopes(body.scopes)
    };
    Ok(Json(TokenBody {
        token: sign_env_jwt(&principal, &claims, now, exp),
    }))
}

/// What a credential resolves to (taskgate's addition): the environment it acts in, how it
/// authenticated and, for a JWT, its acting user. Accepts secret keys and public JWTs.
#[utoipa::path(get, path = "/api/v1/auth/credential", tag = "public tokens", security(("secretKey" = []), ("publicAccessToken" = [])),
    responses((status = 200, body = CredentialDescription, description = "The environment and how the credential matched"),
              (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn describe_credential(
    crate::auth::extract::ApiAuth(principal): crate::auth::extract::ApiAuth,
) -> Response {
    let (credential, grace_key_id) = match &principal.credential {
        EnvCredential::SecretKey { grace } => {
            ("secretKey", grace.as_ref().map(|g| g.revoked_key_id()))
        }
        EnvCredential::PublicJwt(grant) => ("publicJwt", grant.grace_key_id.as_deref()),
    };
    let env = &principal.env;
    // About 150 bytes, 250 with a grace key and an acting user.
    json_response(
        &CredentialDescription {
            environment_id: &env.environment.id,
            environment_type: env.environment.env_type.as_str(),
            project_ref: &env.project_ref,
            credential,
            grace_key_id,
            acting_user_id: principal.acting_user_id(),
        },
        320,
    )
}
