//! Public access tokens: HS256 JWTs with `pub: true`, verified
//! with the subject environment's signing key (the parent's for a branch child) and, only when
//! the signature does not verify, with that signing environment's keys still in their grace
//! window. Expired or malformed tokens are never retried against old keys. Keys come from the
//! auth cache, so the fallback costs no query in steady state and ends the moment an
//! administrator ends the grace (the change event drops the cached keys).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use taskgate_core::hash::{digest_hex, sha256};
use taskgate_core::jwt::{self, JwtError};
use taskgate_core::scope::Ability;

use taskgate_core::Problem;

use crate::cache::{GraceKey, SigningEnv, VerifiedJwt};
use crate::env_key::open_key;
use crate::{ActingUser, EnvCredential, EnvPrincipal, JwtGrant};
use crate::{Auth, Result};

const INVALID_TOKEN: &str = "Invalid Public Access Token";
const TOKEN_IS_INVALID: &str = "Public Access Token is invalid";

/// A public JWT the rate limiter already verified for this request (a request extension), so
/// that the route's authentication does not look it up again.
#[derive(Debug, Clone)]
pub struct ResolvedJwt {
    /// The `Authorization` header it was read from.
    pub header: http::HeaderValue,
    pub verified: Arc<VerifiedJwt>,
}

/// Authenticates a public JWT: from the verified-token cache, else verified and cached.
pub async fn authenticate_public_jwt(auth: &Auth, token: &str) -> Result<EnvPrincipal> {
    let verified = verified_public_jwt(auth, token).await?;
    Ok(principal_of(auth, &verified))
}

/// The principal of a verified token, its use of a grace-window key recorded.
pub fn principal_of(auth: &Auth, verified: &VerifiedJwt) -> EnvPrincipal {
    if let Some(usage) = &verified.grace_usage {
        usage.record(auth.now());
    }
    EnvPrincipal {
        env: verified.env.auth.clone(),
        signing_key: verified.env.signing_key.clone(),
        credential: EnvCredential::PublicJwt(verified.grant.clone()),
    }
}

/// A public JWT verified before, from the cache: `None` for anything else (no parsing, so a
/// hit needs no classification of the token either; the clock is read only for a token with
/// a dot).
pub fn cached_public_jwt(auth: &Auth, token: &[u8]) -> Option<Arc<VerifiedJwt>> {
    match token.contains(&b'.') {
        true => auth.cache.verified_jwt(token, auth.now_millis()),
        false => None,
    }
}

/// A public JWT from the verified-token cache, else verified and cached. Records no use (see
/// [`principal_of`]).
pub async fn verified_public_jwt(auth: &Auth, token: &str) -> Result<Arc<VerifiedJwt>> {
    let now = auth.now();
    if let Some(hit) = auth
        .cache
        .verified_jwt(token.as_bytes(), now.timestamp_millis())
    {
        return Ok(hit);
    }
    let generation = auth.cache.generation();
    let verified = Arc::new(verify_public_jwt(auth, token, now).await?);
    auth.cache
        .insert_verified_jwt(generation, token, verified.clone(), now);
    Ok(verified)
}

/// Verifies a public JWT at `now`: what the cache keeps of it.
async fn verify_public_jwt(auth: &Auth, token: &str, now: DateTime<Utc>) -> Result<VerifiedJwt> {
    // Decoded once: the payload names the environment, then the same decoded token is
    // verified against the current key and, on a signature failure only, the grace keys.
    let decoded = jwt::decode(token).map_err(|_| Problem::unauthenticated(TOKEN_IS_INVALID))?;
    let Some(Value::String(sub)) = decoded.payload().get("sub") else {
        return Err(Problem::unauthenticated(INVALID_TOKEN));
    };
    let env = signing_env(auth, sub)
        .await?
        .ok_or_else(|| Problem::unauthenticated(INVALID_TOKEN))?;
    if env.auth.project_deleted {
        return Err(Problem::unauthenticated(INVALID_TOKEN));
    }
    let now_secs = now.timestamp();
    let max_lifetime = auth.max_jwt_ttl_seconds;
    let mut grace_until = None;
    let grace_key_id = match decoded.verify(env.signing_key.expose_secret().as_bytes(), now_secs) {
        Ok(()) => None,
        Err(JwtError::SignatureInvalid) => {
            // The first grace key the signature verifies under decides; a token that no key
            // verifies is refused as unsigned, never as expired (that would confirm a guess).
            let mut outcome = Err(JwtError::SignatureInvalid);
            for k in env.grace_keys.iter().filter(|k| k.expires_at > now) {
                match decoded.verify(k.key.expose_secret().as_bytes(), now_secs) {
                    Err(JwtError::SignatureInvalid) => continue,
                    Ok(()) => {
                        outcome = Ok(k);
                        break;
                    }
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
            match outcome {
                Ok(k) => {
                    grace_until = Some((k.expires_at, k.usage.clone()));
                    Some(k.usage.revoked_key_id.clone())
                }
                Err(e) => return Err(refused(e, max_lifetime)),
            }
        }
        Err(e) => return Err(refused(e, max_lifetime)),
    };
    decoded
        .check_lifetime(now_secs, max_lifetime)
        .map_err(|e| refused(e, max_lifetime))?;
    let valid_until = token_end(decoded.payload(), auth.max_jwt_ttl_seconds).min(
        grace_until
            .as_ref()
            .map_or(DateTime::<Utc>::MAX_UTC, |(at, _)| *at),
    );
    let one_time_use = decoded.payload().get("otu") == Some(&Value::Bool(true));
    // Keyed on the canonical signed bytes, never on the presented string (which a client
    // could vary), so a token is spent whatever spelling of it is sent again.
    let one_time_marker = one_time_use.then(|| decoded.one_time_marker());
    let claims = decoded.into_payload();
    if claims.get("pub") != Some(&Value::Bool(true)) {
        return Err(Problem::unauthenticated(TOKEN_IS_INVALID));
    }
    let actor = acting_user(&claims);
    // A JWT exchanged from a personal access token dies with it (taskgate's addition).
    if let Some(pat) = claims
        .get("act")
        .and_then(|a| a.get("pat"))
        .and_then(Value::as_str)
    {
        if auth.cache.pat_revoked(pat) {
            return Err(Problem::unauthenticated(TOKEN_IS_INVALID));
        }
    }
    let grant = JwtGrant {
        ability: Ability::from_scopes(&scopes(&claims)),
        one_time_use,
        one_time_marker,
        realtime: claims.get("realtime").filter(|v| v.is_object()).cloned(),
        actor,
        grace_key_id,
    };
    // The rate limiter's bucket: one per acting user and environment, else one per token.
    let rate_limit_key = match &grant.actor {
        Some(actor) => format!("jwt-actor:{}:{}", env.auth.environment.id, actor.user_id),
        None => digest_hex(&sha256(token.as_bytes())),
    };
    Ok(VerifiedJwt {
        env,
        grant,
        valid_until,
        grace_usage: grace_until.map(|(_, usage)| usage),
        rate_limit_key,
        bucket: std::sync::OnceLock::new(),
    })
}

/// When a verified token stops being accepted: its `exp`, or its `iat` plus the longest
/// lifetime, whichever is sooner (a verified token has at least one of them).
fn token_end(claims: &Map<String, Value>, max_lifetime: i64) -> DateTime<Utc> {
    let at = |claim: &str| claims.get(claim).and_then(Value::as_f64);
    let exp = at("exp");
    let iat_end = at("iat").map(|iat| iat + max_lifetime as f64);
    let end = match (exp, iat_end) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => 0.0,
    };
    // Whole seconds, rounded down: the cache never outlives the token.
    DateTime::from_timestamp(end.floor().clamp(0.0, 253_402_300_799.0) as i64, 0)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Upstream's refusal (`Public Access Token is invalid`), with a `detail` saying why. Only
/// failures past the signature check say more than that the token is not accepted.
fn refused(e: JwtError, max_lifetime: i64) -> Problem {
    let detail = match e {
        JwtError::Expired => "The token has expired".to_string(),
        JwtError::NotYetValid => "The token is not valid yet (nbf is in the future)".into(),
        JwtError::ClaimInvalid => {
            "The token's iss or aud is wrong, or a time claim is not a number".into()
        }
        JwtError::LifetimeTooLong => format!(
            "The token's lifetime is not bounded: it needs an iat, or an exp at most {max_lifetime} s away"
        ),
        JwtError::UnsupportedAlgorithm => "Only HS256 tokens are accepted".into(),
        JwtError::SignatureInvalid => {
            "The signature does not match the environment's keys".into()
        }
        JwtError::Malformed => "The token is not a well-formed JWT".into(),
    };
    Problem::unauthenticated(TOKEN_IS_INVALID).with("detail", detail)
}

/// `scopes` as strings; a missing or non-array claim is deny-all.
fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("scopes") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// `act.sub` when it is a string; a malformed `act` is ignored, not an error.
fn acting_user(claims: &Map<String, Value>) -> Option<ActingUser> {
    let act = claims.get("act")?.as_object()?;
    let sub = act.get("sub")?.as_str()?;
    Some(ActingUser {
        user_id: sub.to_string(),
        client: act
            .get("client")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// The signing material of environment `env_id`: from the cache, else loaded once.
pub async fn signing_env(auth: &Auth, env_id: &str) -> Result<Option<Arc<SigningEnv>>> {
    if let Some(env) = auth.cache.signing_env(env_id) {
        return Ok(Some(env));
    }
    let generation = auth.cache.generation();
    let Some(found) = auth.store.get_environment_auth(env_id).await? else {
        return Ok(None);
    };
    let signing_id = found
        .environment
        .parent_environment_id
        .clone()
        .unwrap_or_else(|| found.environment.id.clone());
    let signing_sealed = if signing_id == found.environment.id {
        found.environment.api_key_sealed.clone()
    } else {
        match auth.store.get_environment_auth(&signing_id).await? {
            Some(parent) => parent.environment.api_key_sealed,
            None => return Ok(None),
        }
    };
    let now = auth.now();
    let mut grace_keys = Vec::new();
    for k in auth.store.live_revoked_keys(&signing_id, now).await? {
        grace_keys.push(GraceKey {
            key: open_key(auth, &k.api_key_sealed)?,
            expires_at: k.expires_at,
            usage: auth.cache.grace_use(&k.id),
        });
    }
    let env = Arc::new(SigningEnv {
        auth: Arc::new(found),
        signing_environment_id: signing_id.to_string(),
        signing_key: Arc::new(open_key(auth, &signing_sealed)?),
        grace_keys,
    });
    auth.cache.insert_signing_env(generation, env.clone());
    Ok(Some(env))
}
