//! Delegated user-actor tokens and the exchange of a user credential for an
//! environment JWT naming the acting user. taskgate intersects with the user's role:
//! whatever a token asks for, it never gets more than role ∩ cap.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};
use taskgate_api::*;
use taskgate_core::duration::{jose_expiration, parse_duration_ms, ExpirationInput};
use taskgate_core::jwt::{ActClaim, PublicJwtClaims};
use taskgate_core::scope::{scopes_within_ability, Ability};
use taskgate_core::uat::{self, UatClaims};

use taskgate_usecases::tokens::sign_user_actor_token;

use super::auth_tokens::sign_env_jwt;
use crate::auth::extract::{bearer_token, PatAuth};
use crate::auth::{EnvCredential, EnvPrincipal, UserCredential, UserPrincipal};
use crate::error::{ApiError, ApiResult};
use crate::json::parse_lenient;
use crate::state::AppState;
use taskgate_auth::env_key::open_key;
use taskgate_auth::policy::CAPLESS_SCOPES;
use taskgate_auth::user::{authenticate_pat, authenticate_uat, UserAuthFailure};
use taskgate_usecases::access::{
    client_key_sealed, effective_ability, environment_for_user, require_key_access,
};
use taskgate_usecases::tokens::PAT_CLIENT;

/// Mints a user-actor token from a personal access token: `{cap?, client?, ttlSeconds?}`,
/// default lifetime 3600 s, ceiling configurable (365 days by default); over it is a 400.
#[utoipa::path(post, path = "/api/v1/auth/user-actor-token", tag = "user tokens", security(("personalAccessToken" = [])),
    request_body(content = Object, description = "{cap?: string[], client?: string (1–255), ttlSeconds?: integer}"),
    responses((status = 200, body = UserActorTokenResponse),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn mint_user_actor_token(
    State(state): State<AppState>,
    PatAuth(user): PatAuth,
    body: Bytes,
) -> ApiResult<Json<UserActorTokenResponse>> {
    // Unparseable or empty bodies count as `{}` (upstream).
    let body = parse_lenient(&body).unwrap_or(Value::Null);
    let body = match body {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        _ => return Err(ApiError::invalid_body("the body must be a JSON object")),
    };
    let cap = match body.get("cap") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::invalid_body("cap must be an array of strings"))?,
        ),
        Some(_) => return Err(ApiError::invalid_body("cap must be an array of strings")),
    };
    for scope in cap.iter().flatten() {
        taskgate_core::scope::check_grammar(scope)
            .map_err(|e| ApiError::invalid_body(format!("cap: {e}")))?;
    }
    let client = match body.get("client") {
        None => None,
        Some(Value::String(c)) if (1..=255).contains(&c.chars().count()) => Some(c.clone()),
        Some(_) => {
            return Err(ApiError::invalid_body(
                "client must be a string of 1 to 255 characters",
            ))
        }
    };
    let ttl = uat::validate_ttl(
        body.get("ttlSeconds"),
        state.config.tokens.max_uat_ttl_seconds,
    )
    .map_err(ApiError::invalid_body)?;
    let token = sign_user_actor_token(&state.usecases, &user, cap, client, ttl);
    Ok(Json(UserActorTokenResponse {
        token,
        expires_in_seconds: ttl,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExchangeBody {
    #[serde(default)]
    claims: Option<ExchangeClaims>,
    #[serde(default)]
    expiration_time: Option<ExpirationInput>,
}

#[derive(Debug, Default, Deserialize)]
struct ExchangeClaims {
    #[serde(default)]
    scopes: Vec<String>,
}

fn forbidden_environment(message: &str) -> ApiError {
    ApiError::forbidden(message).with("code", "forbidden_environment")
}

/// An environment claim on a user-actor token binds it to that environment.
fn assert_environment_claim(claims: &UatClaims, env_id: &str) -> ApiResult<()> {
    match claims.environment_id.as_deref() {
        None if claims.client.as_deref() == Some("dashboard-agent") => Err(forbidden_environment(
            "This token isn't scoped to an environment.",
        )),
        Some(claimed) if claimed != env_id => Err(forbidden_environment(
            "This token isn't scoped to that environment.",
        )),
        _ => Ok(()),
    }
}

/// Exchanges a personal access token or user-actor token for an environment JWT whose `act`
/// claim names the user. Scopes are clamped to role ∩ cap (denied ones dropped, as upstream).
#[utoipa::path(post, path = "/api/v1/projects/{projectRef}/{env}/jwt", tag = "user tokens", security(("personalAccessToken" = []), ("userActorToken" = [])),
    params(("projectRef" = String, Path), ("env" = String, Path, description = "dev, staging, prod or preview"),
           ("x-trigger-branch" = Option<String>, Header)),
    request_body(content = Object, description = "{claims?: {scopes?: string[]}, expirationTime?: number | string}"),
    responses((status = 200, body = TokenBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn exchange_env_jwt(
    State(state): State<AppState>,
    Path((project_ref, env)): Path<(String, String)>,
    headers: HeaderMap,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> ApiResult<Json<TokenBody>> {
    let user = authenticate_user(&state, &parts).await?;
    taskgate_usecases::access::url_env(&env)?;
    let branch = headers
        .get("x-trigger-branch")
        .and_then(|v| v.to_str().ok());
    let (access, env) =
        environment_for_user(&state.usecases, &user, &project_ref, &env, branch).await?;
    if let UserCredential::Uat { claims } = &user.credential {
        assert_environment_claim(claims, &env.environment.id)?;
    }
    require_key_access(
        &state.usecases,
        &user,
        access.role,
        "read",
        env.environment.env_type,
    )?;
    let body = parse_lenient(&body)?;
    let body: ExchangeBody = if body.is_null() {
        ExchangeBody::default()
    } else {
        serde_json::from_value(body).map_err(|e| ApiError::invalid_body(e.to_string()))?
    };

    let ceiling = effective_ability(&state.usecases, &user, access.role);
    let requested = body.claims.as_ref().map(|c| c.scopes.clone());
    let now = state.now().timestamp();
    let (scopes, exp, client) = match &user.credential {
        UserCredential::Uat { claims } => {
            let cap: Vec<String> = match &claims.cap {
                Some(cap) if !cap.is_empty() => cap.clone(),
                _ => CAPLESS_SCOPES.iter().map(|s| s.to_string()).collect(),
            };
            let wanted = match requested {
                Some(r) if !r.is_empty() => r,
                _ => cap,
            };
            // Never past the user-actor token itself, nor past the JWT ceiling.
            let exp = uat_expiry(body.expiration_time.as_ref(), now)
                .min(claims.expires_at)
                .min(now.saturating_add(state.config.tokens.max_jwt_ttl_seconds));
            (
                Some(within(&wanted, &ceiling)),
                exp,
                claims
                    .client
                    .clone()
                    .unwrap_or_else(|| PAT_CLIENT.to_string()),
            )
        }
        UserCredential::Pat { .. } | UserCredential::Session { .. } => {
            let exp = jose_expiration(body.expiration_time.as_ref(), "1h", now)
                .map_err(|_| ApiError::bad_request("Invalid expiration time"))?;
            super::auth_tokens::within_ceiling(&state, exp, now)?;
            (
                requested.map(|r| within(&r, &ceiling)),
                exp,
                PAT_CLIENT.to_string(),
            )
        }
    };
    let claims = PublicJwtClaims {
        scopes,
        act: Some(ActClaim {
            sub: user.user.id.clone(),
            client,
            pat: user.pat_id().map(str::to_string),
        }),
        ..PublicJwtClaims::new(env.environment.id.clone())
    };
    let signer = EnvPrincipal {
        signing_key: Arc::new(open_key(
            &state.auth,
            &client_key_sealed(&state.usecases, &env.environment).await?,
        )?),
        env: Arc::new(env),
        credential: EnvCredential::SecretKey { grace: None },
    };
    Ok(Json(TokenBody {
        token: sign_env_jwt(&signer, &claims, now, exp),
    }))
}

/// The requested scopes that `ceiling` allows, in request order.
fn within(requested: &[String], ceiling: &Ability) -> Vec<String> {
    let denied = scopes_within_ability(requested, ceiling);
    requested
        .iter()
        .filter(|s| !denied.contains(s))
        .cloned()
        .collect()
}

/// A UAT exchange's expiry: a number above 1e9 is absolute, a smaller one
/// relative; a string is a `parse-duration` duration (unitless = ms); otherwise 1 h.
fn uat_expiry(input: Option<&ExpirationInput>, now: i64) -> i64 {
    const DEFAULT: i64 = 3600;
    match input {
        None => now + DEFAULT,
        Some(ExpirationInput::Seconds(n)) => {
            let n = *n as i64;
            if n > 1_000_000_000 {
                n
            } else {
                now + n
            }
        }
        Some(ExpirationInput::Text(s)) => {
            now + parse_duration_ms(s).map(|ms| ms / 1000).unwrap_or(DEFAULT)
        }
    }
}

/// A PAT or a UAT; anything else (or a dead one) is 401 `Invalid or Missing Access Token`.
async fn authenticate_user(
    state: &AppState,
    parts: &axum::http::request::Parts,
) -> ApiResult<UserPrincipal> {
    let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "Invalid or Missing Access Token");
    let token = bearer_token(parts).ok_or_else(refused)?;
    let result = if token.starts_with(uat::UAT_PREFIX) {
        authenticate_uat(&state.auth, token).await
    } else {
        authenticate_pat(&state.auth, token).await
    };
    match result {
        Ok(p) => Ok(p),
        Err(UserAuthFailure::Unavailable(e)) => Err(e.into()),
        Err(_) => Err(refused()),
    }
}
