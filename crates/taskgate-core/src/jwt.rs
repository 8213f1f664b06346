//! Compact JWS with HS256, the only algorithm taskgate accepts (spec/auth.md §3.1). Written
//! by hand so the protected header is byte-for-byte upstream's (`{"alg":"HS256"}`) and the
//! algorithm cannot be chosen by the token: `none`, HS384/HS512 and asymmetric algorithms are
//! refused, whatever key is used.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::bearer::decode_b64url;

pub const ISSUER: &str = "https://id.trigger.dev";
pub const AUDIENCE: &str = "https://api.trigger.dev";
/// Longest token looked at: real tokens are well under 2 KiB.
pub const MAX_JWT_LEN: usize = 8192;
/// The encoded protected header, `{"alg":"HS256"}`.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiJ9";

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    #[error("signature verification failed")]
    SignatureInvalid,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("claim validation failed")]
    ClaimInvalid,
}

impl JwtError {
    /// Only a signature failure is retried with keys in their grace window.
    pub fn is_signature_failure(self) -> bool {
        self == JwtError::SignatureInvalid
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn mac(key: &[u8]) -> HmacSha256 {
    use hmac::digest::KeyInit;
    // HMAC takes keys of any length, so `new_from_slice` never fails; the fallback only
    // satisfies the type.
    <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()))
}

/// Signs `payload` with HS256 under `key`.
pub fn sign_hs256(payload: &Map<String, Value>, key: &[u8]) -> String {
    let body = b64(Value::Object(payload.clone()).to_string().as_bytes());
    let signing_input = format!("{HEADER_B64}.{body}");
    let mut m = mac(key);
    m.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&m.finalize().into_bytes()))
}

/// `iss`, `aud`, `iat` and `exp`, as every issuer sets them.
pub fn standard_claims(now_secs: i64, exp_secs: i64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("iss".into(), json!(ISSUER));
    m.insert("aud".into(), json!(AUDIENCE));
    m.insert("iat".into(), json!(now_secs));
    m.insert("exp".into(), json!(exp_secs));
    m
}

fn split(token: &str) -> Result<[&str; 3], JwtError> {
    if token.len() > MAX_JWT_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok([h, p, s]),
        _ => Err(JwtError::Malformed),
    }
}

fn object(segment: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = decode_b64url(segment).ok_or(JwtError::Malformed)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(JwtError::Malformed),
    }
}

/// A decoded JSON object (a JWT header or payload).
pub type Claims = Map<String, Value>;

/// Header and payload, without verifying anything.
pub fn decode_unverified(token: &str) -> Result<(Claims, Claims), JwtError> {
    let [h, p, _] = split(token)?;
    Ok((object(h)?, object(p)?))
}

/// Verifies an HS256 token under `key` at `now_secs`: algorithm, signature (constant time),
/// then `iss`, `aud`, `exp` (optional, as upstream), `nbf` and `iat`. Returns the payload.
pub fn verify_hs256(
    token: &str,
    key: &[u8],
    now_secs: i64,
) -> Result<Map<String, Value>, JwtError> {
    let [h, p, s] = split(token)?;
    let header = object(h)?;
    if header.get("alg") != Some(&Value::String("HS256".into())) {
        return Err(JwtError::UnsupportedAlgorithm);
    }
    let payload = object(p)?;
    let signature = decode_b64url(s).ok_or(JwtError::Malformed)?;
    let mut m = mac(key);
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    m.verify_slice(&signature)
        .map_err(|_| JwtError::SignatureInvalid)?;
    if payload.get("iss") != Some(&json!(ISSUER)) {
        return Err(JwtError::ClaimInvalid);
    }
    let aud_ok = match payload.get("aud") {
        Some(Value::String(a)) => a == AUDIENCE,
        Some(Value::Array(items)) => items.iter().any(|a| a == AUDIENCE),
        _ => false,
    };
    if !aud_ok {
        return Err(JwtError::ClaimInvalid);
    }
    let number = |k: &str| -> Result<Option<f64>, JwtError> {
        match payload.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(JwtError::ClaimInvalid),
            Some(_) => Err(JwtError::ClaimInvalid),
        }
    };
    let now = now_secs as f64;
    if let Some(exp) = number("exp")? {
        if now >= exp {
            return Err(JwtError::Expired);
        }
    }
    if let Some(nbf) = number("nbf")? {
        if now < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    number("iat")?;
    Ok(payload)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_770_000_000;

    fn payload(extra: Value) -> Map<String, Value> {
        let mut m = standard_claims(NOW, NOW + 60);
        if let Value::Object(e) = extra {
            m.extend(e);
        }
        m
    }

    #[test]
    fn round_trip_with_upstreams_header() {
        let t = sign_hs256(&payload(json!({ "sub": "x", "pub": true })), b"k");
        assert!(t.starts_with("eyJhbGciOiJIUzI1NiJ9."));
        let p = verify_hs256(&t, b"k", NOW).unwrap();
        assert_eq!(p["sub"], "x");
        assert_eq!(
            decode_unverified(&t).unwrap().0,
            json!({ "alg": "HS256" }).as_object().unwrap().clone()
        );
    }

    #[test]
    fn a_known_vector_verifies() {
        // {"alg":"HS256"}.{"sub":"x","pub":true,"iss":…,"aud":…} signed with "k" by an HS256
        // implementation: verification recomputes the same bytes.
        let body = b64(br#"{"sub":"x","pub":true,"iss":"https://id.trigger.dev","aud":"https://api.trigger.dev"}"#);
        let input = format!("{HEADER_B64}.{body}");
        let mut m = mac(b"k");
        m.update(input.as_bytes());
        let token = format!("{input}.{}", b64(&m.finalize().into_bytes()));
        assert_eq!(verify_hs256(&token, b"k", NOW).unwrap()["pub"], true);
    }

    #[test]
    fn refusals() {
        let good = sign_hs256(&payload(json!({ "sub": "x" })), b"k");
        assert_eq!(
            verify_hs256(&good, b"other", NOW),
            Err(JwtError::SignatureInvalid)
        );
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], b64(br#"{"sub":"y"}"#), parts[2]);
        assert_eq!(
            verify_hs256(&tampered, b"k", NOW),
            Err(JwtError::SignatureInvalid)
        );
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), parts[1]);
        assert_eq!(
            verify_hs256(&none, b"k", NOW),
            Err(JwtError::UnsupportedAlgorithm)
        );
        let hs512 = {
            let h = b64(br#"{"alg":"HS512"}"#);
            let input = format!("{h}.{}", parts[1]);
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(b"k").unwrap();
            m.update(input.as_bytes());
            format!("{input}.{}", b64(&m.finalize().into_bytes()))
        };
        assert_eq!(
            verify_hs256(&hs512, b"k", NOW),
            Err(JwtError::UnsupportedAlgorithm)
        );
        assert_eq!(verify_hs256(&good, b"k", NOW + 60), Err(JwtError::Expired));
        let nbf = sign_hs256(&payload(json!({ "nbf": NOW + 10 })), b"k");
        assert_eq!(verify_hs256(&nbf, b"k", NOW), Err(JwtError::NotYetValid));
        let mut wrong_iss = payload(json!({}));
        wrong_iss.insert("iss".into(), json!("https://evil"));
        assert_eq!(
            verify_hs256(&sign_hs256(&wrong_iss, b"k"), b"k", NOW),
            Err(JwtError::ClaimInvalid)
        );
        let mut aud_list = payload(json!({}));
        aud_list.insert("aud".into(), json!(["x", AUDIENCE]));
        assert!(verify_hs256(&sign_hs256(&aud_list, b"k"), b"k", NOW).is_ok());
        let mut bad_iat = payload(json!({}));
        bad_iat.insert("iat".into(), json!("now"));
        assert_eq!(
            verify_hs256(&sign_hs256(&bad_iat, b"k"), b"k", NOW),
            Err(JwtError::ClaimInvalid)
        );
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "eyJhbGciOiJIUzI1NiJ9.@@@notbase64@@@.signature",
            &good[..good.len() - 3],
        ] {
            assert!(verify_hs256(bad, b"k", NOW).is_err(), "{bad}");
        }
        let huge = format!("{}.{}.{}", parts[0], "A".repeat(MAX_JWT_LEN), parts[2]);
        assert_eq!(verify_hs256(&huge, b"k", NOW), Err(JwtError::Malformed));
        assert!(
            JwtError::SignatureInvalid.is_signature_failure()
                && !JwtError::Expired.is_signature_failure()
        );
    }
}
