//! The `Authorization` header: extracting the token and recognising its kind by shape alone,
//! before any lookup.

use base64::Engine;
use serde_json::Value;

use crate::keys::is_additional_key;

/// Longest `Authorization` value looked at. Longer headers are rejected before any parsing:
/// real credentials are under 2 KiB, and this bounds the work an anonymous caller can cause.
pub const MAX_BEARER_LEN: usize = 8192;

/// What a bearer token is, by shape alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A compact JWS whose payload has `"pub": true` (§3.5).
    PublicJwt,
    /// `tr_pat_…` (§4).
    PersonalAccessToken,
    /// `tr_uat_…` (§5).
    UserActorToken,
    /// `tr_oat_…` (§4.6).
    OrganizationAccessToken,
    /// `tr_<env>_sk_` + 24 alphanumerics (§1.2a).
    AdditionalKey,
    /// Deprecated `pk_…`; refused by every live route.
    PublicKey,
    /// Anything else: looked up as a root secret key by exact match.
    SecretKey,
}

/// Classifies a token as the live path does: the user-token prefixes, an additional key, a
/// `pk_` key, a public JWT, else a root secret key (which then fails or succeeds by lookup).
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

/// Decodes base64url with or without `=` padding (the standard alphabet is also accepted, as
/// upstream's `-`→`+`, `_`→`/` rewrite does). `None` on anything else.
pub fn decode_b64url(segment: &str) -> Option<Vec<u8>> {
    let trimmed = segment.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .ok()
}

/// `isPublicJWT` (§2.2): exactly three dot-separated parts whose second decodes to a JSON
/// object with `"pub": true` (the boolean). Any failure is `false`, never an error, so a
/// malformed JWT is looked up as a key and fails with 401.
pub fn is_public_jwt(token: &str) -> bool {
    if token.len() > MAX_BEARER_LEN {
        return false;
    }
    let mut parts = token.split('.');
    let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => payload,
        _ => return false,
    };
    decode_b64url(payload)
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|v| v.get("pub") == Some(&Value::Bool(true)))
}

/// The token of the host resolver, the JWT exchange and the UAT paths (§1.6, §2.1): one
/// leading `Bearer ` (exactly this case, one space) removed when present, then whitespace
/// trimmed, as upstream's `replace(/^Bearer /, "").trim()`. `None` when nothing is left or
/// the value is longer than [`MAX_BEARER_LEN`].
pub fn strip_bearer(header_value: &str) -> Option<&str> {
    if header_value.len() > MAX_BEARER_LEN {
        return None;
    }
    let token = header_value
        .strip_prefix("Bearer ")
        .unwrap_or(header_value)
        .trim_matches(is_js_whitespace);
    (!token.is_empty()).then_some(token)
}

/// The token of the PAT-only and OAT-only helpers and the admin routes (§2.1, §4.2): the
/// header must match `^Bearer .+$`; the rest is the token, untrimmed. `None` otherwise or when
/// longer than [`MAX_BEARER_LEN`].
pub fn strip_bearer_strict(header_value: &str) -> Option<&str> {
    if header_value.len() > MAX_BEARER_LEN {
        return None;
    }
    let token = header_value.strip_prefix("Bearer ")?;
    // `.` in a JavaScript regex matches no line terminator.
    let valid = !token.is_empty() && !token.contains(['\n', '\r', '\u{2028}', '\u{2029}']);
    valid.then_some(token)
}

/// JavaScript's `trim()` removes Unicode white space and line terminators, and U+FEFF.
fn is_js_whitespace(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};

    use super::*;

    fn jwt_with(payload: &str) -> String {
        let b = |s: &str| URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b(r#"{"alg":"HS256"}"#), b(payload))
    }

    #[test]
    fn tokens_are_classified_by_shape() {
        let cases = [
            ("tr_pat_abc", TokenKind::PersonalAccessToken),
            ("tr_uat_x.y.z", TokenKind::UserActorToken),
            ("tr_oat_abc", TokenKind::OrganizationAccessToken),
            (
                "tr_prod_sk_0123456789abcdefghijklmn",
                TokenKind::AdditionalKey,
            ),
            ("tr_prod_sk_too-short", TokenKind::SecretKey),
            ("pk_prod_abc", TokenKind::PublicKey),
            ("tr_prod_0123", TokenKind::SecretKey),
            ("anything", TokenKind::SecretKey),
            ("", TokenKind::SecretKey),
            (
                "eyJhbGciOiJIUzI1NiJ9.@@@notbase64@@@.signature",
                TokenKind::SecretKey,
            ),
        ];
        for (token, kind) in cases {
            assert_eq!(classify(token), kind, "{token}");
        }
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
        assert_eq!(classify(&jwt_with(r#"{"pub":1}"#)), TokenKind::SecretKey);
        assert_eq!(classify(&jwt_with(r#"{"sub":"e"}"#)), TokenKind::SecretKey);
        // A UAT wraps a JWS, but its prefix decides first.
        assert_eq!(
            classify(&format!("tr_uat_{}", jwt_with(r#"{"pub":true}"#))),
            TokenKind::UserActorToken
        );
    }

    #[test]
    fn public_jwt_detection_is_lenient_about_encoding_only() {
        let payload = r#"{"pub":true,"sub":"env_1"}"#;
        for encoded in [
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE.encode(payload),
            STANDARD.encode(payload),
        ] {
            assert!(is_public_jwt(&format!("h.{encoded}.s")), "{encoded}");
        }
        let p = URL_SAFE_NO_PAD.encode(payload);
        assert!(!is_public_jwt(&format!("h.{p}")), "two parts");
        assert!(!is_public_jwt(&format!("h.{p}.s.x")), "four parts");
        assert!(!is_public_jwt(&format!(
            "h.{}.s",
            URL_SAFE_NO_PAD.encode("true")
        )));
        assert!(!is_public_jwt(&format!(
            "h.{}.s",
            URL_SAFE_NO_PAD.encode("[1]")
        )));
        assert!(!is_public_jwt(&format!(
            "h.{p}.{}",
            "s".repeat(MAX_BEARER_LEN)
        )));
    }

    #[test]
    fn bearer_prefix_is_removed_then_trimmed() {
        assert_eq!(strip_bearer("Bearer abc"), Some("abc"));
        assert_eq!(strip_bearer("Bearer abc "), Some("abc"));
        assert_eq!(strip_bearer("Bearer   abc"), Some("abc"));
        assert_eq!(strip_bearer("Bearer \u{feff}abc\t"), Some("abc"));
        // Without the exact prefix the whole value is the token, as upstream's `replace`.
        assert_eq!(strip_bearer("abc"), Some("abc"));
        assert_eq!(strip_bearer("bearer abc"), Some("bearer abc"));
        assert_eq!(strip_bearer("Bearer Bearer abc"), Some("Bearer abc"));
        assert_eq!(strip_bearer("Bearer    "), None);
        assert_eq!(strip_bearer("Bearer "), None);
        assert_eq!(strip_bearer(""), None);
        assert_eq!(
            strip_bearer(&format!("Bearer {}", "a".repeat(MAX_BEARER_LEN))),
            None
        );
    }

    #[test]
    fn strict_bearer_needs_the_prefix() {
        assert_eq!(strip_bearer_strict("Bearer tr_pat_x"), Some("tr_pat_x"));
        assert_eq!(strip_bearer_strict("Bearer  tr_pat_x "), Some(" tr_pat_x "));
        assert_eq!(strip_bearer_strict("tr_pat_x"), None);
        assert_eq!(strip_bearer_strict("bearer tr_pat_x"), None);
        assert_eq!(strip_bearer_strict("Bearer "), None);
        assert_eq!(strip_bearer_strict("Bearer a\nb"), None);
        assert_eq!(
            strip_bearer_strict(&format!("Bearer {}", "a".repeat(MAX_BEARER_LEN))),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_headers_never_panics(header in ".{0,200}") {
            let _ = classify(&header);
            let _ = is_public_jwt(&header);
            let _ = strip_bearer(&header);
            let _ = strip_bearer_strict(&header);
        }

        #[test]
        fn the_token_after_bearer_is_returned_trimmed(token in "[!-~]{1,100}") {
            let header = format!("Bearer  {token} ");
            proptest::prop_assert_eq!(strip_bearer(&header), Some(token.as_str()));
        }
    }
}
