//! Environment key formats (spec/auth.md §1.2): generation, recognition and display.

use secrecy::SecretString;

use crate::env::EnvType;
use crate::ids::random_string;

/// The 62 characters of every environment key body (nanoid `customAlphabet` upstream).
pub const ENV_KEY_ALPHABET: &[u8] =
    b"1234567890abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Random characters of a secret key since upstream PR #4390; older keys have 20 and still work.
pub const SECRET_KEY_BODY_LEN: usize = 24;
/// Random characters of a public (`pk_`) key.
pub const PUBLIC_KEY_BODY_LEN: usize = 20;

/// A new secret key: the type's prefix and 24 random characters.
pub fn generate_secret_key(env_type: EnvType) -> SecretString {
    SecretString::from(format!(
        "{}{}",
        env_type.key_prefix(),
        random_string(ENV_KEY_ALPHABET, SECRET_KEY_BODY_LEN)
    ))
}

/// A new deprecated public key: `pk_<slug>_` and 20 random characters.
pub fn generate_public_key(env_type: EnvType) -> SecretString {
    SecretString::from(format!(
        "{}{}",
        env_type.pk_prefix(),
        random_string(ENV_KEY_ALPHABET, PUBLIC_KEY_BODY_LEN)
    ))
}

/// The last four characters of a key (whole characters, never a split code point).
pub fn last_four(key: &str) -> String {
    let n = key.chars().count();
    key.chars().skip(n.saturating_sub(4)).collect()
}

/// Display form: the prefix (through the second `_`), eight U+2022 and the last four.
pub fn obfuscate_secret_key(key: &str) -> String {
    let prefix_end = key.match_indices('_').nth(1).map(|(i, _)| i + 1);
    let prefix: String = match prefix_end {
        Some(end) => key[..end].to_string(),
        None => key.chars().take(3).collect(),
    };
    format!("{prefix}{}{}", "\u{2022}".repeat(8), last_four(key))
}

/// Whether `key` is an additional (`tr_<env>_sk_` + 24 alphanumerics) key: the regex
/// `^tr_(dev|stg|prod|preview)_sk_[0-9a-zA-Z]{24}$` (spec §1.2a), by hand.
pub fn is_additional_key(key: &str) -> bool {
    ["tr_dev_sk_", "tr_stg_sk_", "tr_prod_sk_", "tr_preview_sk_"]
        .iter()
        .any(|p| {
            key.strip_prefix(p).is_some_and(|body| {
                body.len() == 24 && body.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn generated_keys_have_upstream_formats() {
        for t in EnvType::ALL {
            let k = generate_secret_key(t);
            let k = k.expose_secret();
            let body = k.strip_prefix(t.key_prefix()).unwrap();
            assert_eq!(body.len(), 24);
            assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()));
            let pk = generate_public_key(t);
            assert_eq!(
                pk.expose_secret()
                    .strip_prefix(t.pk_prefix())
                    .unwrap()
                    .len(),
                20
            );
        }
        let keys: HashSet<String> = (0..100)
            .map(|_| {
                generate_secret_key(EnvType::Production)
                    .expose_secret()
                    .to_string()
            })
            .collect();
        assert_eq!(keys.len(), 100);
    }

    #[test]
    fn obfuscation_keeps_prefix_and_last_four() {
        assert_eq!(
            obfuscate_secret_key("tr_prod_0123456789abcdefghijklmn"),
            "tr_prod_••••••••klmn"
        );
        assert_eq!(
            obfuscate_secret_key("tr_preview_abcdwxyz"),
            "tr_preview_••••••••wxyz"
        );
        assert_eq!(last_four("ab"), "ab");
    }

    #[test]
    fn additional_keys_are_recognised_exactly() {
        for env in ["dev", "stg", "prod", "preview"] {
            assert!(is_additional_key(&format!(
                "tr_{env}_sk_0123456789abcdefghijklmn"
            )));
        }
        for no in [
            "tr_prod_0123456789abcdefghijklmn",
            "tr_prod_sk_too-short",
            "tr_prod_sk_0123456789abcdefghijklm",
            "tr_prod_sk_0123456789abcdefghijklmn_x",
            "tr_test_sk_0123456789abcdefghijklmn",
            "tr_prod_sk_0123456789abcdefghijklm_",
            "tr_prod_ak_0123456789abcdefghijklmn",
        ] {
            assert!(!is_additional_key(no), "{no}");
        }
    }
}
