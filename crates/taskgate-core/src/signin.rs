//! Dashboard sign-in and the CLI's browser login: the secrets they hand out, how a session
//! cookie is signed, the CSRF token bound to a session, and PKCE (RFC 7636, S256).
//!
//! Every secret here is random and high-entropy; the server stores only its SHA-256
//! ([`crate::hash::sha256_hex`]) and compares what it is shown by hash.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Duration;
use secrecy::SecretString;

use crate::hash::{constant_time_eq, hmac_sha256, sha256};
use crate::ids::random_string;

/// Letters and digits for tokens that travel in URLs and cookies.
const URL_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Characters of an approval code, which a person reads and types: no `0`/`O`, `1`/`I`/`L`.
const APPROVAL_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Characters in an approval code (≈59 bits; it is useful only with the login's PKCE
/// verifier, within the code's ten minutes, once).
const APPROVAL_LEN: usize = 12;

/// How long a sign-in link works.
pub const SIGN_IN_LINK_TTL: Duration = Duration::minutes(15);
/// How long the CLI's authorization code waits for approval and redemption (as upstream).
pub const AUTHORIZATION_CODE_TTL: Duration = Duration::minutes(10);
/// Sign-in links one email may be sent within [`SIGN_IN_LINK_WINDOW`].
pub const SIGN_IN_LINKS_PER_WINDOW: u32 = 5;
/// The window of [`SIGN_IN_LINKS_PER_WINDOW`].
pub const SIGN_IN_LINK_WINDOW: Duration = Duration::minutes(15);
/// Requests for sign-in links one client address may make within [`SIGN_IN_LINK_WINDOW`],
/// whatever the emails: enough for a household or an office behind one address, too few to
/// send mail to a list of strangers.
pub const SIGN_IN_REQUESTS_PER_ADDRESS: u32 = 20;
/// The name of the personal access token a CLI login creates (the CLI's own name for it).
pub const CLI_TOKEN_NAME: &str = "cli";

/// A sign-in link's token (≈286 bits).
pub fn new_sign_in_token() -> SecretString {
    SecretString::from(format!("tgl_{}", random_string(URL_ALPHABET, 48)))
}

/// A session's token, the secret inside the session cookie (≈286 bits).
pub fn new_session_token() -> SecretString {
    SecretString::from(random_string(URL_ALPHABET, 48))
}

/// An authorization code for `trigger.dev login`: 64 characters, as upstream's.
pub fn new_authorization_code() -> String {
    random_string(URL_ALPHABET, 64)
}

/// An approval code shown to the approving browser, grouped for reading: `ABCD-EFGH-JKMN`.
pub fn new_approval_code() -> SecretString {
    let raw = random_string(APPROVAL_ALPHABET, APPROVAL_LEN);
    let groups: Vec<&str> = [0, 4, 8].iter().map(|&i| &raw[i..i + 4]).collect();
    SecretString::from(groups.join("-"))
}

/// The form an approval code is hashed in: upper case, without the separators and spaces a
/// person may type or paste around it. `None` when it cannot be an approval code.
pub fn normalize_approval_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == APPROVAL_LEN && code.bytes().all(|b| APPROVAL_ALPHABET.contains(&b)))
        .then_some(code)
}

/// Whether `challenge` is a PKCE S256 challenge: 43 characters of base64url, as the CLI sends.
pub fn valid_code_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` is the PKCE verifier of `challenge`: `BASE64URL(SHA256(verifier))`
/// equals the challenge (RFC 7636 §4.6). Verifiers outside 43–128 unreserved characters are
/// refused (§4.1).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let shaped = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    shaped
        && constant_time_eq(
            URL_SAFE_NO_PAD
                .encode(sha256(verifier.as_bytes()))
                .as_bytes(),
            challenge.as_bytes(),
        )
}

/// The session cookie's value: the session token and its signature under the server's
/// session secret, so a forged or truncated cookie is refused before any lookup.
pub fn sign_session_cookie(secret: &[u8], token: &str) -> String {
    format!("{token}.{}", signature(secret, b"session", token))
}

/// The session token inside a cookie value, if its signature holds.
pub fn verify_session_cookie<'a>(secret: &[u8], value: &'a str) -> Option<&'a str> {
    let (token, sig) = value.rsplit_once('.')?;
    (!token.is_empty()
        && token.len() <= 128
        && constant_time_eq(
            sig.as_bytes(),
            signature(secret, b"session", token).as_bytes(),
        ))
    .then_some(token)
}

/// The CSRF token of a session: derived from the session token, so every form of one session
/// carries the same value, and nobody without the cookie can compute it.
pub fn csrf_token(secret: &[u8], session_token: &str) -> String {
    signature(secret, b"csrf", session_token)
}

/// Whether `presented` is the CSRF token of `session_token`.
pub fn csrf_matches(secret: &[u8], session_token: &str, presented: &str) -> bool {
    constant_time_eq(
        presented.as_bytes(),
        csrf_token(secret, session_token).as_bytes(),
    )
}

/// HMAC-SHA-256 under `secret` of `purpose` and `value`, in base64url.
fn signature(secret: &[u8], purpose: &[u8], value: &str) -> String {
    let mut data = Vec::with_capacity(purpose.len() + 1 + value.len());
    data.extend_from_slice(purpose);
    data.push(0);
    data.extend_from_slice(value.as_bytes());
    URL_SAFE_NO_PAD.encode(hmac_sha256(secret, &data))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    use super::*;

    const SECRET: &[u8] = b"a session secret of at least 32 bytes!!";

    #[test]
    fn pkce_accepts_the_rfc_7636_example() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_code_challenge(challenge));
        assert!(pkce_matches(verifier, challenge));
    }

    #[test]
    fn pkce_refuses_another_verifier_and_misshapen_ones() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            challenge
        ));
        assert!(!pkce_matches("short", challenge));
        assert!(!pkce_matches(&"a".repeat(129), challenge));
        assert!(!valid_code_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"
        ));
        assert!(!valid_code_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
    }

    #[test]
    fn approval_codes_read_back_however_they_are_typed() {
        let code = new_approval_code();
        let code = code.expose_secret();
        assert_eq!(code.len(), 14);
        let normal = normalize_approval_code(code).unwrap();
        assert_eq!(
            normalize_approval_code(&format!(" {} ", code.to_lowercase())).as_deref(),
            Some(normal.as_str())
        );
        assert_eq!(
            normalize_approval_code(&code.replace('-', "")).as_deref(),
            Some(normal.as_str())
        );
        assert_eq!(normalize_approval_code("ABCD-EFGH-JKM0"), None);
        assert_eq!(normalize_approval_code("ABCD-EFGH"), None);
    }

    #[test]
    fn a_signed_cookie_verifies_and_a_tampered_one_does_not() {
        let token = new_session_token();
        let cookie = sign_session_cookie(SECRET, token.expose_secret());
        assert_eq!(
            verify_session_cookie(SECRET, &cookie),
            Some(token.expose_secret())
        );
        assert_eq!(verify_session_cookie(b"another secret", &cookie), None);
        let (t, sig) = cookie.rsplit_once('.').unwrap();
        assert_eq!(verify_session_cookie(SECRET, &format!("{t}x.{sig}")), None);
        assert_eq!(verify_session_cookie(SECRET, t), None);
        assert_eq!(verify_session_cookie(SECRET, &format!(".{sig}")), None);
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_session() {
        let a = csrf_token(SECRET, "session-a");
        assert!(csrf_matches(SECRET, "session-a", &a));
        assert!(!csrf_matches(SECRET, "session-b", &a));
        assert!(!csrf_matches(SECRET, "session-a", ""));
        // A session cookie's signature is not a CSRF token for the same session.
        let cookie = sign_session_cookie(SECRET, "session-a");
        let (_, sig) = cookie.rsplit_once('.').unwrap();
        assert!(!csrf_matches(SECRET, "session-a", sig));
    }

    #[test]
    fn generated_secrets_have_their_shapes() {
        assert!(new_sign_in_token().expose_secret().starts_with("tgl_"));
        assert_eq!(new_session_token().expose_secret().len(), 48);
        assert_eq!(new_authorization_code().len(), 64);
        assert_ne!(new_authorization_code(), new_authorization_code());
    }

    proptest! {
        #[test]
        fn any_verifier_matches_its_own_challenge(verifier in "[A-Za-z0-9._~-]{43,128}") {
            let challenge = URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()));
            prop_assert!(valid_code_challenge(&challenge));
            prop_assert!(pkce_matches(&verifier, &challenge));
        }
    }
}
