//! Delegated user-actor tokens (spec/auth.md §5.1, §5.3): `tr_uat_` + an HS256 JWS signed with
//! the server's session secret. Stateless; a use re-checks the source PAT elsewhere.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::jwt::{self, JwtError};

pub const UAT_PREFIX: &str = "tr_uat_";
/// Default lifetime of a minted token.
pub const DEFAULT_UAT_TTL_SECONDS: i64 = 3600;
/// taskgate's default ceiling: 365 days (upstream's is 7 days); configurable per server.
pub const DEFAULT_MAX_UAT_TTL_SECONDS: i64 = 31_536_000;

/// The claims of a user-actor token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UatClaims {
    pub user_id: String,
    pub client: Option<String>,
    pub session_id: Option<String>,
    pub environment_id: Option<String>,
    /// The personal access token it was minted from.
    pub pat: Option<String>,
    pub cap: Option<Vec<String>>,
    /// Epoch seconds.
    pub expires_at: i64,
}

/// Why a user-actor token was refused.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum UatError {
    #[error("not a user-actor token")]
    Prefix,
    #[error("invalid token: {0}")]
    Jwt(JwtError),
    #[error("not a user-actor token payload")]
    Claims,
}

/// Signs `claims` as a `tr_uat_` token; optional members are omitted when empty, but an empty
/// `cap` array is kept (it means deny-all, not capless).
pub fn sign_uat(claims: &UatClaims, secret: &[u8], now_secs: i64) -> String {
    let mut act = Map::new();
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            act.insert(k.into(), json!(v));
        }
    };
    put("client", &claims.client);
    put("sessionId", &claims.session_id);
    put("environmentId", &claims.environment_id);
    put("pat", &claims.pat);
    let mut payload = jwt::standard_claims(now_secs, claims.expires_at);
    payload.insert("kind".into(), json!("user_actor"));
    payload.insert("sub".into(), json!(claims.user_id));
    payload.insert("act".into(), Value::Object(act));
    if let Some(cap) = &claims.cap {
        payload.insert("cap".into(), json!(cap));
    }
    format!("{UAT_PREFIX}{}", jwt::sign_hs256(&payload, secret))
}

/// Verifies a `tr_uat_` token: prefix, signature, iss/aud/exp, `kind == "user_actor"`, `sub`.
pub fn verify_uat(token: &str, secret: &[u8], now_secs: i64) -> Result<UatClaims, UatError> {
    let jws = token.strip_prefix(UAT_PREFIX).ok_or(UatError::Prefix)?;
    let p = jwt::verify_hs256(jws, secret, now_secs).map_err(UatError::Jwt)?;
    if p.get("kind") != Some(&json!("user_actor")) {
        return Err(UatError::Claims);
    }
    let user_id = p
        .get("sub")
        .and_then(Value::as_str)
        .ok_or(UatError::Claims)?
        .to_string();
    let act = p.get("act").and_then(Value::as_object);
    let field = |k: &str| {
        act.and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let cap = p.get("cap").and_then(Value::as_array).map(|items| {
        items
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    });
    Ok(UatClaims {
        user_id,
        client: field("client"),
        session_id: field("sessionId"),
        environment_id: field("environmentId"),
        pat: field("pat"),
        cap,
        expires_at: p.get("exp").and_then(Value::as_i64).unwrap_or(i64::MAX),
    })
}

/// A requested lifetime: absent → 3600; otherwise a JSON integer in `1..=max`. Strings,
/// fractions and booleans are refused; over the ceiling is refused, never clamped.
pub fn validate_ttl(ttl: Option<&Value>, max: i64) -> Result<i64, String> {
    match ttl {
        None => Ok(DEFAULT_UAT_TTL_SECONDS),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if v > 0 && v <= max => Ok(v),
            Some(_) => Err(format!("ttlSeconds must be an integer from 1 to {max}")),
            None => Err("ttlSeconds must be an integer".into()),
        },
        Some(_) => Err("ttlSeconds must be an integer".into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_770_000_000;

    fn claims() -> UatClaims {
        UatClaims {
            user_id: "u1".into(),
            client: Some("cli".into()),
            session_id: None,
            environment_id: None,
            pat: Some("pat1".into()),
            cap: Some(vec!["read:runs".into()]),
            expires_at: NOW + 60,
        }
    }

    #[test]
    fn sign_and_verify() {
        let t = sign_uat(&claims(), b"secret-secret-secret-secret-1234", NOW);
        assert!(t.starts_with("tr_uat_"));
        assert_eq!(
            verify_uat(&t, b"secret-secret-secret-secret-1234", NOW).unwrap(),
            claims()
        );
        assert!(matches!(
            verify_uat(&t, b"other", NOW),
            Err(UatError::Jwt(JwtError::SignatureInvalid))
        ));
        assert!(matches!(
            verify_uat(&t, b"secret-secret-secret-secret-1234", NOW + 60),
            Err(UatError::Jwt(JwtError::Expired))
        ));
        assert_eq!(verify_uat(&t[7..], b"x", NOW), Err(UatError::Prefix));
        let empty_cap = UatClaims {
            cap: Some(vec![]),
            ..claims()
        };
        let t = sign_uat(&empty_cap, b"s", NOW);
        assert_eq!(
            verify_uat(&t, b"s", NOW).unwrap().cap,
            Some(vec![]),
            "an empty cap is stamped"
        );
        let not_uat = jwt::sign_hs256(&jwt::standard_claims(NOW, NOW + 60), b"s");
        assert_eq!(
            verify_uat(&format!("tr_uat_{not_uat}"), b"s", NOW),
            Err(UatError::Claims)
        );
    }

    #[test]
    fn ttl_rules() {
        assert_eq!(validate_ttl(None, 100), Ok(3600));
        assert_eq!(validate_ttl(Some(&json!(100)), 100), Ok(100));
        for bad in [
            json!(0),
            json!(-1),
            json!(101),
            json!(1.5),
            json!("60"),
            json!(true),
            json!(null),
        ] {
            assert!(validate_ttl(Some(&bad), 100).is_err(), "{bad}");
        }
    }
}
