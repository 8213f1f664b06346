//! Personal access token format (spec/auth.md §4.1).

use secrecy::SecretString;

use crate::ids::random_string;

pub const PAT_PREFIX: &str = "tr_pat_";
/// Upstream's alphabet: no `0` and no `l`, so tokens read back unambiguously.
pub const PAT_ALPHABET: &[u8] = b"123456789abcdefghijkmnopqrstuvwxyz";
pub const PAT_BODY_LEN: usize = 40;
/// Longest token accepted for a lookup.
pub const MAX_PAT_LEN: usize = 256;

/// A new personal access token.
pub fn generate_pat() -> SecretString {
    SecretString::from(format!(
        "{PAT_PREFIX}{}",
        random_string(PAT_ALPHABET, PAT_BODY_LEN)
    ))
}

/// Display form: `tr_pat_` + first 4 of the body + 18 × `•` + last 4.
pub fn obfuscate_pat(token: &str) -> String {
    let body: Vec<char> = token
        .strip_prefix(PAT_PREFIX)
        .unwrap_or(token)
        .chars()
        .collect();
    let head: String = body.iter().take(4).collect();
    let tail: String = body.iter().skip(body.len().saturating_sub(4)).collect();
    format!("{PAT_PREFIX}{head}{}{tail}", "\u{2022}".repeat(18))
}

/// Whether `token` may be a personal access token (prefix and length only).
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
        assert!(t[7..].bytes().all(|b| PAT_ALPHABET.contains(&b)));
        let o = obfuscate_pat(t);
        assert!(o.starts_with(&t[..11]) && o.ends_with(&t[43..]));
        assert_eq!(o.chars().filter(|c| *c == '•').count(), 18);
    }
}
