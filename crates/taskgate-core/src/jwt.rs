//! Compact JWS with HS256, written by hand so the protected header
//! is byte-for-byte upstream's `{"alg":"HS256"}` and the token cannot choose its algorithm.
//!
//! Verification accepts only `alg: "HS256"`. Upstream (jose) also accepts HS384/HS512 for a
//! symmetric key; no trigger.dev client produces them, so taskgate deliberately refuses them,
//! along with `none` and asymmetric algorithms, whatever key is used.
//!
//! Every segment must be canonical base64url without padding (RFC 7515 §2): no `=`, no
//! standard-alphabet characters, no non-zero trailing bits. Each token therefore has exactly one
//! spelling, so whatever is keyed on it (the one-time-use marker) cannot be dodged by
//! re-encoding the same bytes.
//!
//! Check order, which decides the error a caller sees: size and shape, header, algorithm,
//! signature (constant time), then `iss`, `aud`, `iat`, `nbf`, `exp` as jose does. The signature
//! comes before the claims so that only [`JwtError::SignatureInvalid`] means "another key might
//! verify this" (the server retries keys in their grace window on exactly that error).

use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use secrecy::zeroize::Zeroize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::hash::{digest_hex, sha256};

/// `iss` of every token upstream issues, checked on every verify.
pub const ISSUER: &str = "https://id.trigger.dev";
/// `aud` of every token upstream issues, checked on every verify.
pub const AUDIENCE: &str = "https://api.trigger.dev";
/// Longest token looked at: real tokens are well under 2 KiB, and this bounds the decoding
/// and hashing an anonymous caller can cause.
pub const MAX_JWT_LEN: usize = 8192;
/// The encoded protected header, `{"alg":"HS256"}`, exactly as jose writes it.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiJ9";
/// Bytes of an HMAC-SHA-256 tag.
const SIGNATURE_LEN: usize = 32;
/// SHA-256's block size: HMAC keys are padded (or first hashed) to this length (RFC 2104 §2).
const HMAC_BLOCK_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// A decoded JSON object (a JWT header or payload).
pub type Claims = Map<String, Value>;

/// Why a token was refused. The variants carry nothing from the token.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// Too long, not three segments, a segment that is not canonical unpadded base64url, not
    /// JSON objects, or a signature of the wrong length.
    #[error("malformed token")]
    Malformed,
    /// The header names an algorithm other than HS256, or critical extensions (`crit`).
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The signature does not verify under this key (another key might verify it).
    #[error("signature verification failed")]
    SignatureInvalid,
    /// `exp` is at or before now.
    #[error("token expired")]
    Expired,
    /// `nbf` is after now.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` or `aud` is wrong, or a time claim is not a number.
    #[error("claim validation failed")]
    ClaimInvalid,
    /// The token's lifetime is not bounded by the server's ceiling: neither `iat` nor `exp`,
    /// or no `iat` and an `exp` further away than the ceiling.
    #[error("token lifetime over the limit")]
    LifetimeTooLong,
}

impl JwtError {
    /// Whether another key could verify the token. Only this failure is retried with keys in
    /// their grace window (§3.6 step 4); an expired or malformed token fails for any key.
    pub fn is_signature_failure(self) -> bool {
        self == JwtError::SignatureInvalid
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// HMAC-SHA-256 keyed with `key`. RFC 2104 §2 hashes a key longer than the block and pads any
/// key with zeros to the block; doing that here makes construction infallible (the block-sized
/// key type has no error case) with the same result as keying with `key` itself.
fn mac(key: &[u8]) -> HmacSha256 {
    let digest;
    let key = if key.len() > HMAC_BLOCK_LEN {
        digest = Sha256::digest(key);
        digest.as_slice()
    } else {
        key
    };
    let mut block = [0u8; HMAC_BLOCK_LEN];
    for (dst, src) in block.iter_mut().zip(key) {
        *dst = *src;
    }
    let mac = <HmacSha256 as KeyInit>::new(&block.into());
    block.zeroize();
    mac
}

/// Signs `payload` with HS256 under `key` (the UTF-8 bytes of the secret, §3.1). The payload is
/// written as given: add [`standard_claims`] for `iss`, `aud`, `iat` and `exp`.
pub fn sign_hs256(payload: &Map<String, Value>, key: &[u8]) -> String {
    let body = b64(Value::Object(payload.clone()).to_string().as_bytes());
    let signing_input = format!("{HEADER_B64}.{body}");
    let mut m = mac(key);
    m.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&m.finalize().into_bytes()))
}

/// `iss`, `aud`, `iat` and `exp`, as every issuer sets them (§3.1).
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

/// Decodes one segment: canonical base64url without padding, or [`JwtError::Malformed`].
/// The engine refuses `=`, characters outside the URL-safe alphabet and non-zero trailing bits,
/// so two different strings never decode to the same bytes.
fn segment(s: &str) -> Result<Vec<u8>, JwtError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwtError::Malformed)
}

fn object(segment_text: &str) -> Result<Claims, JwtError> {
    let bytes = segment(segment_text)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(JwtError::Malformed),
    }
}

/// A token split and decoded but not verified: decode once, then try one key or several (the
/// current key, then keys in their grace window) without decoding again.
#[derive(Debug)]
pub struct Decoded<'a> {
    header: Claims,
    payload: Claims,
    /// `<header>.<payload>`, the bytes the signature covers.
    signing_input: &'a str,
    /// The signature segment, still encoded: decoded by [`Decoded::verify`], so a token whose
    /// payload names an unknown environment is refused as such whatever its signature.
    signature: &'a str,
}

/// Splits a compact JWS and decodes its header and payload: more than [`MAX_JWT_LEN`] bytes,
/// not three segments, a segment that is not canonical unpadded base64url, or a header or
/// payload that is not a JSON object are
/// [`JwtError::Malformed`].
pub fn decode(token: &str) -> Result<Decoded<'_>, JwtError> {
    let [h, p, s] = split(token)?;
    Ok(Decoded {
        header: object(h)?,
        payload: object(p)?,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature: s,
    })
}

/// Header and payload, without verifying anything: only for routing (which environment's key
/// to verify with, §3.6 step 1). Never trust the result for authorization.
pub fn decode_unverified(token: &str) -> Result<(Claims, Claims), JwtError> {
    let d = decode(token)?;
    Ok((d.header, d.payload))
}

/// A numeric claim: absent is fine, present must be a JSON number (jose's rule).
fn numeric(payload: &Claims, name: &str) -> Result<Option<f64>, JwtError> {
    match payload.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(JwtError::ClaimInvalid),
        Some(_) => Err(JwtError::ClaimInvalid),
    }
}

impl Decoded<'_> {
    /// The payload as the token states it. Unverified: only for routing, or after
    /// [`Self::verify`] succeeded.
    pub fn payload(&self) -> &Claims {
        &self.payload
    }

    /// The payload, once [`Self::verify`] has succeeded.
    pub fn into_payload(self) -> Claims {
        self.payload
    }

    /// Applies a server's lifetime ceiling of `max_secs` to a verified token: it is expired
    /// once `iat + max_secs` has passed, whatever its `exp` (a token without `exp` lives
    /// until then). A token without `iat` must carry an `exp` at most `max_secs` away; one
    /// with neither claim has no bounded lifetime and is refused.
    pub fn check_lifetime(&self, now_secs: i64, max_secs: i64) -> Result<(), JwtError> {
        let now = now_secs as f64;
        match (
            numeric(&self.payload, "iat")?,
            numeric(&self.payload, "exp")?,
        ) {
            (Some(iat), _) if now >= iat + max_secs as f64 => Err(JwtError::Expired),
            (Some(_), _) => Ok(()),
            (None, Some(exp)) if exp - now <= max_secs as f64 => Ok(()),
            (None, _) => Err(JwtError::LifetimeTooLong),
        }
    }

    /// The one-time-use marker of this token: lowercase hex SHA-256 of `<header>.<payload>`.
    /// Segments are canonical (see the module docs), so this is the same for every spelling a
    /// client could send of one token, and it differs between any two tokens; only a holder of
    /// the signing key can make another payload. Meaningful once [`Self::verify`] succeeded.
    pub fn one_time_marker(&self) -> String {
        digest_hex(&sha256(self.signing_input.as_bytes()))
    }

    /// Verifies the token under `key` at `now_secs`, with the checks and order of
    /// [`verify_hs256`] after decoding.
    pub fn verify(&self, key: &[u8], now_secs: i64) -> Result<(), JwtError> {
        let signature = segment(self.signature)?;
        if self.header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(JwtError::UnsupportedAlgorithm);
        }
        // jose refuses critical extensions it does not know; taskgate implements none.
        if self.header.contains_key("crit") {
            return Err(JwtError::UnsupportedAlgorithm);
        }
        if signature.len() != SIGNATURE_LEN {
            return Err(JwtError::Malformed);
        }
        let mut m = mac(key);
        m.update(self.signing_input.as_bytes());
        m.verify_slice(&signature)
            .map_err(|_| JwtError::SignatureInvalid)?;

        let payload = &self.payload;
        if payload.get("iss").and_then(Value::as_str) != Some(ISSUER) {
            return Err(JwtError::ClaimInvalid);
        }
        let aud_ok = match payload.get("aud") {
            Some(Value::String(a)) => a == AUDIENCE,
            Some(Value::Array(items)) => items.iter().any(|a| a.as_str() == Some(AUDIENCE)),
            _ => false,
        };
        if !aud_ok {
            return Err(JwtError::ClaimInvalid);
        }
        let now = now_secs as f64;
        numeric(payload, "iat")?;
        if numeric(payload, "nbf")?.is_some_and(|nbf| now < nbf) {
            return Err(JwtError::NotYetValid);
        }
        if numeric(payload, "exp")?.is_some_and(|exp| now >= exp) {
            return Err(JwtError::Expired);
        }
        Ok(())
    }
}

/// Verifies an HS256 token under `key` at `now_secs` and returns its payload.
///
/// Refuses, in this order: more than [`MAX_JWT_LEN`] bytes, not three segments, a segment that
/// is not canonical unpadded base64url, or a non-object header or payload ([`JwtError::Malformed`]); any `alg` but exactly `"HS256"`, or
/// a `crit` header ([`JwtError::UnsupportedAlgorithm`]); a signature that does not verify
/// (constant-time, [`JwtError::SignatureInvalid`]); `iss` ≠ [`ISSUER`], `aud` neither
/// [`AUDIENCE`] nor an array containing it, or a non-numeric `iat`, `nbf` or `exp`
/// ([`JwtError::ClaimInvalid`]); `now < nbf` ([`JwtError::NotYetValid`]); `now >= exp`
/// ([`JwtError::Expired`]). A token without `exp` is accepted, as upstream.
pub fn verify_hs256(token: &str, key: &[u8], now_secs: i64) -> Result<Claims, JwtError> {
    let decoded = decode(token)?;
    decoded.verify(key, now_secs)?;
    Ok(decoded.into_payload())
}

/// The user a public access token acts for (`act`): a user-actor token's exchange names them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActClaim {
    /// The user's id.
    pub sub: String,
    pub client: String,
    /// The personal access token behind the exchange: the token dies with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pat: Option<String>,
}

/// The payload of every public access token taskgate mints (the trigger's `x-trigger-jwt`,
/// `/api/v1/auth/jwt`, `/api/v1/auth/public-tokens`, the user-actor exchange), before the
/// standard claims: `sub` (the environment), `pub: true`, and what the token may do.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PublicJwtClaims {
    /// The environment whose key signs the token.
    pub sub: String,
    #[serde(rename = "pub")]
    pub public: bool,
    /// `None` mints a token without the claim (deny-all when verified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// One-time use (`otu`).
    #[serde(rename = "otu", skip_serializing_if = "std::ops::Not::not")]
    pub one_time_use: bool,
    /// Realtime options (`{skipColumns}`), passed through as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<ActClaim>,
}

impl PublicJwtClaims {
    /// A token of `environment_id` with no scopes claim, not one-time, acting for nobody.
    pub fn new(environment_id: impl Into<String>) -> PublicJwtClaims {
        PublicJwtClaims {
            sub: environment_id.into(),
            public: true,
            scopes: None,
            one_time_use: false,
            realtime: None,
            act: None,
        }
    }

    pub fn scopes(mut self, scopes: Vec<String>) -> PublicJwtClaims {
        self.scopes = Some(scopes);
        self
    }

    /// The claims as a JSON object (what `x-trigger-jwt-claims` shows).
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// The signed token: these claims with the standard ones (`iss`, `aud`, `iat`, `exp`),
    /// HS256 under `key`.
    pub fn sign(&self, key: &[u8], now_secs: i64, exp_secs: i64) -> String {
        let mut payload = self.to_map();
        payload.extend(standard_claims(now_secs, exp_secs));
        sign_hs256(&payload, key)
    }
}

#[cfg(test)]
mod tests;
