//! Environment key formats: generation, recognition of
//! additional keys, and the display forms. Authentication itself never validates a root key's
//! shape (stored keys of older lengths must keep working); only additional keys are recognised
//! by format.

use secrecy::SecretString;

use crate::env::EnvType;
use crate::ids::random_string;

/// The 62 characters of every environment key body (nanoid `customAlphabet` upstream).
pub const ENV_KEY_ALPHABET: &[u8] =
    b"1234567890abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Random characters of a secret key since upstream PR #4390 (≈143 bits); older keys have 20
/// and still work.
pub const SECRET_KEY_BODY_LEN: usize = 24;
/// Random characters of a deprecated public (`pk_`) key, as upstream still generates them.
pub const PUBLIC_KEY_BODY_LEN: usize = 20;
/// Eight U+2022 bullets stand for the hidden part of a key in every display form.
const KEY_MASK: &str = "\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}";
/// The prefixes of additional keys (`^tr_(dev|stg|prod|preview)_sk_`).
const ADDITIONAL_KEY_PREFIXES: [&str; 4] =
    ["tr_dev_sk_", "tr_stg_sk_", "tr_prod_sk_", "tr_preview_sk_"];

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

/// The last four characters of a key (whole characters, never a split code point); the whole
/// key when it is shorter.
pub fn last_four(key: &str) -> String {
    let n = key.chars().count();
    key.chars().skip(n.saturating_sub(4)).collect()
}

/// Display form of a key: its prefix, eight U+2022 and its last four characters.
///
/// The prefix is everything through the second `_` (`tr_prod_`), or through the third for an
/// additional key (`tr_prod_sk_`, as upstream shows them); a key of any other shape keeps
/// its first three characters.
pub fn obfuscate_secret_key(key: &str) -> String {
    let underscores = if is_additional_key(key) { 2 } else { 1 };
    // `_` is ASCII, so the index after it is a character boundary.
    let prefix: String = match key.match_indices('_').nth(underscores) {
        Some((i, _)) => key.get(..=i).unwrap_or_default().to_string(),
        None => key.chars().take(3).collect(),
    };
    format!("{prefix}{KEY_MASK}{}", last_four(key))
}

/// Display form from what the stores keep (type and last four), as upstream's
/// `obfuscateApiKey`: `<prefix>[sk_]••••••••<last4>`.
pub fn obfuscated_key(env_type: EnvType, last_four: &str, additional: bool) -> String {
    let discriminator = if additional { "sk_" } else { "" };
    format!(
        "{}{discriminator}{KEY_MASK}{last_four}",
        env_type.key_prefix()
    )
}

/// Whether `key` is an additional key: the regex `^tr_(dev|stg|prod|preview)_sk_[0-9a-zA-Z]{24}$`
/// of §1.2a, written out by hand. Anything else (`tr_prod_sk_too-short`) is a root key.
pub fn is_additional_key(key: &str) -> bool {
    ADDITIONAL_KEY_PREFIXES.iter().any(|p| {
        key.strip_prefix(p).is_some_and(|body| {
            body.len() == SECRET_KEY_BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::hash::sha256_hex;

    /// `^<prefix>[A-Za-z0-9]{len}$`
    fn has_format(key: &str, prefix: &str, len: usize) -> bool {
        key.strip_prefix(prefix)
            .is_some_and(|b| b.len() == len && b.bytes().all(|c| c.is_ascii_alphanumeric()))
    }

    #[test]
    fn generated_keys_have_upstream_formats() {
        for t in EnvType::ALL {
            let k = generate_secret_key(t);
            assert!(has_format(k.expose_secret(), t.key_prefix(), 24), "{t:?}");
            assert!(!is_additional_key(k.expose_secret()));
            let pk = generate_public_key(t);
            assert!(has_format(pk.expose_secret(), t.pk_prefix(), 20), "{t:?}");
        }
    }

    #[test]
    fn a_hundred_keys_are_unique() {
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
    fn keys_only_use_the_alphabet() {
        let k = generate_secret_key(EnvType::Preview);
        let body = k.expose_secret().strip_prefix("tr_preview_").unwrap();
        assert!(body.bytes().all(|b| ENV_KEY_ALPHABET.contains(&b)));
    }

    #[test]
    fn display_forms() {
        let root = "tr_prod_0123456789abcdefghijklmn";
        assert_eq!(obfuscate_secret_key(root), "tr_prod_••••••••klmn");
        assert_eq!(
            obfuscate_secret_key("tr_preview_abcdwxyz"),
            "tr_preview_••••••••wxyz"
        );
        assert_eq!(
            obfuscate_secret_key("tr_dev_sk_0123456789abcdefghijklmn"),
            "tr_dev_sk_••••••••klmn"
        );
        assert_eq!(obfuscate_secret_key("secretvalue"), "sec••••••••alue");
        assert_eq!(obfuscate_secret_key(""), "••••••••");
        assert_eq!(
            obfuscate_secret_key(root),
            obfuscated_key(EnvType::Production, &last_four(root), false)
        );
        assert_eq!(
            obfuscated_key(EnvType::Staging, "wxyz", true),
            "tr_stg_sk_••••••••wxyz"
        );
    }

    #[test]
    fn last_four_and_hash() {
        assert_eq!(last_four("tr_prod_0123456789abcdefghijklmn"), "klmn");
        assert_eq!(last_four("ab"), "ab");
        assert_eq!(last_four("xé€😀z"), "é€😀z");
        let k = "tr_prod_0123456789abcdefghijklmn";
        assert_eq!(sha256_hex(k).len(), 64);
        assert_eq!(sha256_hex(k), sha256_hex(k));
    }

    #[test]
    fn additional_keys_are_recognised_exactly() {
        for env in ["dev", "stg", "prod", "preview"] {
            assert!(is_additional_key(&format!(
                "tr_{env}_sk_0123456789abcdefghijklmn"
            )));
            assert!(is_additional_key(&format!(
                "tr_{env}_sk_ABCDEFGHIJKLMNOPQRSTUVWX"
            )));
        }
        for no in [
            "tr_prod_0123456789abcdefghijklmn",      // root-shaped
            "tr_prod_sk_too-short",                  // too short, bad character
            "tr_prod_sk_0123456789abcdefghijklm",    // 23
            "tr_prod_sk_0123456789abcdefghijklmno",  // 25
            "tr_prod_sk_0123456789abcdefghijklmn_x", // trailing extra segment
            "tr_prod_sk_0123456789abcdefghijklmn_",  // trailing `_`
            "tr_test_sk_0123456789abcdefghijklmn",   // unknown environment
            "tr_prev_sk_0123456789abcdefghijklmn",   // preview is `tr_preview_`
            "tr_prod_ak_0123456789abcdefghijklmn",   // other discriminator
            "TR_PROD_SK_0123456789abcdefghijklmn",   // case-sensitive prefix
            "tr_prod_sk_0123456789abcdefghijklé",    // non-ASCII
            " tr_prod_sk_0123456789abcdefghijklmn",  // anchored
            "",
        ] {
            assert!(!is_additional_key(no), "{no}");
        }
    }
}
