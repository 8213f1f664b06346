//! The `Authorization` header: extracting the token and recognising its kind (spec/auth.md
//! §2.1, §2.2, §3.5), before any lookup.

use base64::Engine;
use serde_json::Value;

use crate::keys::is_additional_key;

/// Longest `Authorization` value looked at; longer ones are refused before any parsing.
pub const MAX_BEARER_LEN: usize = 8192;

/// What a bearer token is, by shape alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    PublicJwt,
    PersonalAccessToken,
    UserActorToken,
    OrganizationAccessToken,
    AdditionalKey,
    PublicKey,
    SecretKey,
}

/// Classifies a token as the live path does: prefixes first, then a public JWT, else a
/// secret key (which then fails or succeeds by exact lookup).
pub fn classify(token: &str) -> TokenKind {
    if token.starts_with("tr_pat_") {
        TokenKind::PersonalAccessToken
    } else if token.starts_with("tr_uat_") {
        TokenKind::UserActorToken
    } else if token.starts_with("tr_oat_") {
        TokenKind::OrganizationAccessToken
    } else if is_additional_key(token) {
        TokenKind::AdditionalKey
    } else if token.starts_with("pk_") {
        TokenKind::PublicKey
    } else if is_public_jwt(token) {
        TokenKind::PublicJwt
    } else {
        TokenKind::SecretKey
    }
}

/// Decodes base64url with or without padding (also accepting the standard alphabet).
pub fn decode_b64url(segment: &str) -> Option<Vec<u8>> {
    let trimmed = segment.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .ok()
}

/// True iff the token has three dot-separated parts whose second decodes to a JSON object
/// with `"pub": true` (a boolean). Any failure is false, never an error.
pub fn is_public_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || token.len() > MAX_BEARER_LEN {
        return false;
    }
    decode_b64url(parts[1])
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|v| v.get("pub") == Some(&Value::Bool(true)))
}

/// Removes a leading `Bearer ` (exactly this case, one space) and trims; `None` when nothing
/// is left or the header does not start with `Bearer `.
pub fn strip_bearer(header_value: &str) -> Option<&str> {
    let token = header_value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt_with(payload: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b(r#"{"alg":"HS256"}"#), b(payload))
    }

    #[test]
    fn tokens_are_classified_by_shape() {
        assert_eq!(classify("tr_pat_abc"), TokenKind::PersonalAccessToken);
        assert_eq!(classify("tr_uat_x.y.z"), TokenKind::UserActorToken);
        assert_eq!(classify("tr_oat_abc"), TokenKind::OrganizationAccessToken);
        assert_eq!(
            classify("tr_prod_sk_0123456789abcdefghijklmn"),
            TokenKind::AdditionalKey
        );
        assert_eq!(classify("pk_prod_abc"), TokenKind::PublicKey);
        assert_eq!(
            classify(&jwt_with(r#"{"pub":true,"sub":"e"}"#)),
            TokenKind::PublicJwt
        );
        assert_eq!(
            classify(&jwt_with(r#"{"pub":false}"#)),
            TokenKind::SecretKey
        );
        assert_eq!(
            classify(&jwt_with(r#"{"pub":"true"}"#)),
            TokenKind::SecretKey
        );
        assert_eq!(
            classify("eyJhbGciOiJIUzI1NiJ9.@@@notbase64@@@.signature"),
            TokenKind::SecretKey
        );
        assert_eq!(classify("tr_prod_0123"), TokenKind::SecretKey);
    }

    #[test]
    fn bearer_prefix_is_exact() {
        assert_eq!(strip_bearer("Bearer abc "), Some("abc"));
        assert_eq!(strip_bearer("bearer abc"), None);
        assert_eq!(strip_bearer("Bearer    "), None);
        assert_eq!(strip_bearer("abc"), None);
    }
}
