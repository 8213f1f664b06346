//! Personal access token format: generation, display and the cheap shape
//! check made before any lookup.

use secrecy::SecretString;

use crate::ids::random_string;

/// Every personal access token starts with this.
pub const PAT_PREFIX: &str = "tr_pat_";
/// Upstream's alphabet: 34 symbols without `0` and `l`, so tokens read back unambiguously.
pub const PAT_ALPHABET: &[u8] = b"123456789abcdefghijkmnopqrstuvwxyz";
/// Random characters after the prefix (≈203 bits), as upstream.
pub const PAT_BODY_LEN: usize = 40;
/// Longest token looked up: real tokens are 47 characters, and seeds use 40 hex, so anything
/// this long is garbage not worth hashing.
pub const MAX_PAT_LEN: usize = 256;
/// Bullets between the head and the tail of a displayed token, as upstream.
const PAT_MASK_LEN: usize = 18;

/// A new personal access token: `tr_pat_` + 40 characters of [`PAT_ALPHABET`].
pub fn generate_pat() -> SecretString {
    SecretString::from(format!(
        "{PAT_PREFIX}{}",
        random_string(PAT_ALPHABET, PAT_BODY_LEN)
    ))
}

/// Display form: `tr_pat_` + first 4 characters of the body + 18 × `•` + last 4.
pub fn obfuscate_pat(token: &str) -> String {
    let body: Vec<char> = token
        .strip_prefix(PAT_PREFIX)
        .unwrap_or(token)
        .chars()
        .collect();
    let head: String = body.iter().take(4).collect();
    let tail: String = body.iter().skip(body.len().saturating_sub(4)).collect();
    format!(
        "{PAT_PREFIX}{head}{}{tail}",
        "\u{2022}".repeat(PAT_MASK_LEN)
    )
}

/// Whether `token` may be a personal access token: the prefix and at most [`MAX_PAT_LEN`]
/// bytes. Any body is accepted (test and seed tokens use hex); the hash lookup decides.
pub fn looks_like_pat(token: &str) -> bool {
    token.starts_with(PAT_PREFIX) && token.len() <= MAX_PAT_LEN
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn pats_have_upstream_shape() {
        let t = generate_pat();
        let t = t.expose_secret();
        assert!(looks_like_pat(t));
        assert_eq!(t.len(), 47);
        let body = t.strip_prefix(PAT_PREFIX).unwrap();
        assert!(body.bytes().all(|b| PAT_ALPHABET.contains(&b)));
        assert!(!body.contains('0') && !body.contains('l'));
        assert_ne!(generate_pat().expose_secret(), t);
    }

    #[test]
    fn obfuscation() {
        let t = "tr_pat_abcd1234567890123456789012345678wxyz";
        assert_eq!(obfuscate_pat(t), "tr_pat_abcd••••••••••••••••••wxyz");
        let generated = generate_pat();
        let g = generated.expose_secret();
        let o = obfuscate_pat(g);
        assert!(o.starts_with(&g[..11]) && o.ends_with(&g[43..]));
        assert_eq!(o.chars().filter(|c| *c == '•').count(), 18);
        assert_eq!(obfuscate_pat("tr_pat_ab"), "tr_pat_ab••••••••••••••••••ab");
    }

    #[test]
    fn shape_check() {
        assert!(looks_like_pat(&format!("tr_pat_{}", "0f".repeat(20))));
        assert!(looks_like_pat("tr_pat_"));
        assert!(looks_like_pat(&format!(
            "tr_pat_{}",
            "a".repeat(MAX_PAT_LEN - 7)
        )));
        assert!(!looks_like_pat(&format!(
            "tr_pat_{}",
            "a".repeat(MAX_PAT_LEN - 6)
        )));
        assert!(!looks_like_pat("tr_uat_abc"));
        assert!(!looks_like_pat("TR_PAT_abc"));
        assert!(!looks_like_pat("Bearer tr_pat_abc"));
    }
}
