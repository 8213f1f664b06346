//! Delegated user-actor tokens: `tr_uat_` + an HS256 JWS signed
//! with the server's session secret. Stateless: the source PAT's liveness is re-checked by the
//! server at every use, not here.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::jwt::{self, JwtError};

/// Every user-actor token starts with this; the JWS follows.
pub const UAT_PREFIX: &str = "tr_uat_";
/// Lifetime of a minted token when the request names none (§5.3).
pub const DEFAULT_UAT_TTL_SECONDS: i64 = 3600;
/// taskgate's default ceiling on a requested lifetime: 365 days, so a CI job can hold one
/// token for a year (the product decision). Upstream's is 7 days (§5.4); the server's
/// configuration can lower it.
pub const DEFAULT_MAX_UAT_TTL_SECONDS: i64 = 31_536_000;
/// The payload's `kind`, which tells a UAT from other session-secret JWTs.
const USER_ACTOR_KIND: &str = "user_actor";

/// The claims of a user-actor token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UatClaims {
    /// The acting user (`sub`).
    pub user_id: String,
    /// What minted it (`act.client`), e.g. `personal-access-token`.
    pub client: Option<String>,
    /// `act.sessionId`.
    pub session_id: Option<String>,
    /// The environment it is restricted to (`act.environmentId`), if any (§5.6).
    pub environment_id: Option<String>,
    /// The personal access token it was minted from (`act.pat`), re-checked at each use.
    pub pat: Option<String>,
    /// The scope ceiling (`cap`); `None` is capless, `Some([])` denies everything.
    pub cap: Option<Vec<String>>,
    /// `exp`, epoch seconds.
    pub expires_at: i64,
}

/// Why a user-actor token was refused. Carries nothing from the token.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum UatError {
    /// The token does not start with `tr_uat_`.
    #[error("not a user-actor token")]
    Prefix,
    /// The JWS failed verification.
    #[error("invalid token: {0}")]
    Jwt(JwtError),
    /// Verified, but not a user-actor payload.
    #[error("not a user-actor token payload")]
    Claims,
}

/// Signs `claims` as a `tr_uat_` token issued at `now_secs`: payload
/// `{kind: "user_actor", sub, act: {client?, sessionId?, environmentId?, pat?}, cap?, iss, aud,
/// iat, exp}`. Empty optional strings are omitted (upstream omits falsy members), but an
/// empty `cap` array is kept: it means deny-all, not capless.
pub fn sign_uat(claims: &UatClaims, secret: &[u8], now_secs: i64) -> String {
    let mut act = Map::new();
    let members = [
        ("client", &claims.client),
        ("sessionId", &claims.session_id),
        ("environmentId", &claims.environment_id),
        ("pat", &claims.pat),
    ];
    for (name, value) in members {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            act.insert(name.into(), json!(v));
        }
    }
    let mut payload = jwt::standard_claims(now_secs, claims.expires_at);
    payload.insert("kind".into(), json!(USER_ACTOR_KIND));
    payload.insert("sub".into(), json!(claims.user_id));
    payload.insert("act".into(), Value::Object(act));
    if let Some(cap) = &claims.cap {
        payload.insert("cap".into(), json!(cap));
    }
    format!("{UAT_PREFIX}{}", jwt::sign_hs256(&payload, secret))
}

/// Verifies a `tr_uat_` token at `now_secs`: the prefix, then [`jwt::verify_hs256`] (signature,
/// iss, aud, exp), then `kind == "user_actor"` and a string `sub`.
///
/// Two deliberate tightenings over upstream, which only matter for tokens taskgate did not
/// sign itself: `exp` is required (upstream would accept an eternal token), and a `cap` that
/// is present must be an array of strings (upstream passes any array through and ignores
/// other types, which would make a malformed cap capless).
pub fn verify_uat(token: &str, secret: &[u8], now_secs: i64) -> Result<UatClaims, UatError> {
    let jws = token.strip_prefix(UAT_PREFIX).ok_or(UatError::Prefix)?;
    let p = jwt::verify_hs256(jws, secret, now_secs).map_err(UatError::Jwt)?;
    if p.get("kind").and_then(Value::as_str) != Some(USER_ACTOR_KIND) {
        return Err(UatError::Claims);
    }
    let user_id = p
        .get("sub")
        .and_then(Value::as_str)
        .ok_or(UatError::Claims)?
        .to_string();
    let act = p.get("act").and_then(Value::as_object);
    let member = |k: &str| {
        act.and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let cap = match p.get("cap") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or(UatError::Claims)?,
        ),
        Some(_) => return Err(UatError::Claims),
    };
    // `verify_hs256` has checked that a present `exp` is a number; jose writes whole seconds.
    let expires_at = p
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or(UatError::Claims)?
        .floor() as i64;
    Ok(UatClaims {
        user_id,
        client: member("client"),
        session_id: member("sessionId"),
        environment_id: member("environmentId"),
        pat: member("pat"),
        cap,
        expires_at,
    })
}

/// A requested `ttlSeconds` (§5.3): absent → [`DEFAULT_UAT_TTL_SECONDS`]; otherwise a JSON
/// number that is an integer (`60` or `60.0`, as zod's `int()`) in `1..=max`. Strings,
/// fractions, booleans and `null` are refused, and so is a value over the ceiling (never
/// clamped). The error names the rule broken.
pub fn validate_ttl(ttl: Option<&Value>, max: i64) -> Result<i64, String> {
    let Some(value) = ttl else {
        return Ok(DEFAULT_UAT_TTL_SECONDS);
    };
    let Some(n) = value.as_f64() else {
        return Err("ttlSeconds must be a number".to_string());
    };
    if n.fract() != 0.0 {
        return Err("ttlSeconds must be an integer".to_string());
    }
    if n <= 0.0 {
        return Err("ttlSeconds must be greater than 0".to_string());
    }
    if n > max as f64 {
        return Err(format!("ttlSeconds must be at most {max}"));
    }
    Ok(n as i64)
}

#[cfg(test)]
mod tests;
