//! Sealing secrets at rest with AES-256-GCM under the server's master key. Environment keys are
//! also the HMAC keys of their JWTs, so the server must be able to read them
//! back: they are stored sealed, never in plain text, and looked up by hash.
//!
//! Sealed format `v1.` + base64url(nonce ‖ ciphertext ‖ tag), with a fresh random 96-bit nonce
//! per value. The associated data binds a value to its purpose (callers pass e.g.
//! `b"env-api-key"`), so a ciphertext copied into another column does not open there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretBox, SecretString};

/// Version tag of the sealed format, so a future format can sit next to this one.
const SEALED_PREFIX: &str = "v1.";
/// AES-GCM's standard 96-bit nonce; random nonces are safe far beyond the number of secrets a
/// server seals under one key.
const NONCE_LEN: usize = 12;
/// GCM's 128-bit authentication tag.
const TAG_LEN: usize = 16;
/// AES-256 key bytes.
const KEY_LEN: usize = 32;

/// Why a value could not be opened or a key read. Never carries key or plaintext material.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// The encoded master key is not 32 bytes of hex or base64.
    #[error("the master key must be 32 bytes, as 64 hex characters or base64")]
    InvalidKey,
    /// Not a `v1.` value, bad base64, too short, or not UTF-8 once opened.
    #[error("the sealed value is malformed")]
    Malformed,
    /// Wrong key, wrong associated data, or tampered with.
    #[error("the sealed value does not open with this key")]
    OpenFailed,
}

/// The 256-bit master key. Zeroed when dropped; `Debug` prints `MasterKey(..)`.
pub struct MasterKey {
    bytes: SecretBox<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Reads 64 hex characters, or base64 (standard or URL-safe, padded or not) of exactly 32
    /// bytes. Surrounding whitespace (a trailing newline in a key file) is ignored.
    pub fn from_encoded(s: &str) -> Result<MasterKey, CryptoError> {
        let s = s.trim();
        let mut decoded = if s.len() == 2 * KEY_LEN && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(s).map_err(|_| CryptoError::InvalidKey)?
        } else {
            let t = s.trim_end_matches('=');
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(t)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
                .map_err(|_| CryptoError::InvalidKey)?
        };
        let key = if decoded.len() == KEY_LEN {
            Ok(MasterKey {
                bytes: SecretBox::init_with_mut(|b: &mut [u8; KEY_LEN]| {
                    b.copy_from_slice(&decoded)
                }),
            })
        } else {
            Err(CryptoError::InvalidKey)
        };
        decoded.zeroize();
        key
    }

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> MasterKey {
        MasterKey {
            bytes: SecretBox::init_with_mut(|b: &mut [u8; KEY_LEN]| OsRng.fill_bytes(b)),
        }
    }

    /// Standard padded base64, for writing the key to a file ([`Self::from_encoded`] reads it).
    pub fn to_encoded(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.bytes.expose_secret())
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.bytes.expose_secret().into())
    }

    /// Seals `plaintext`; `aad` binds the result to its purpose.
    pub fn encrypt(&self, plaintext: &str, aad: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let msg = Payload {
            msg: plaintext.as_bytes(),
            aad,
        };
        // GCM refuses only inputs over 64 GiB, which a `&str` secret never reaches; should it
        // happen, the empty ciphertext yields a value that fails to open as `Malformed`.
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), msg)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
        )
    }

    /// Opens a value sealed by [`Self::encrypt`] under this key with the same `aad`.
    pub fn decrypt(&self, sealed: &str, aad: &[u8]) -> Result<SecretString, CryptoError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(CryptoError::Malformed)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CryptoError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| CryptoError::OpenFailed)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|e| {
                e.into_bytes().zeroize();
                CryptoError::Malformed
            })
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    use super::*;

    const PURPOSE: &[u8] = b"env-api-key";

    #[test]
    fn round_trip() {
        let k = MasterKey::generate();
        for plain in ["tr_prod_0123456789abcdefghijklmn", "", "é€😀"] {
            let sealed = k.encrypt(plain, PURPOSE);
            assert!(sealed.starts_with("v1."));
            assert_eq!(k.decrypt(&sealed, PURPOSE).unwrap().expose_secret(), plain);
        }
        let sealed = k.encrypt("tr_prod_secret", PURPOSE);
        assert!(!sealed.contains("tr_prod_secret"));
        assert_ne!(
            sealed,
            k.encrypt("tr_prod_secret", PURPOSE),
            "fresh nonce each time"
        );
    }

    #[test]
    fn wrong_key_or_purpose_fails() {
        let k = MasterKey::generate();
        let sealed = k.encrypt("tr_prod_secret", PURPOSE);
        assert_eq!(
            k.decrypt(&sealed, b"pat").unwrap_err(),
            CryptoError::OpenFailed
        );
        assert_eq!(
            k.decrypt(&sealed, b"").unwrap_err(),
            CryptoError::OpenFailed
        );
        let other = MasterKey::generate();
        assert_eq!(
            other.decrypt(&sealed, PURPOSE).unwrap_err(),
            CryptoError::OpenFailed
        );
    }

    #[test]
    fn tampering_fails() {
        let k = MasterKey::generate();
        let sealed = k.encrypt("tr_prod_secret", PURPOSE);
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let tampered = format!("v1.{}", URL_SAFE_NO_PAD.encode(&raw));
            assert_eq!(
                k.decrypt(&tampered, PURPOSE).unwrap_err(),
                CryptoError::OpenFailed,
                "byte {i}"
            );
            raw[i] ^= 1;
        }
        let truncated = format!("v1.{}", URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]));
        assert_eq!(
            k.decrypt(&truncated, PURPOSE).unwrap_err(),
            CryptoError::OpenFailed
        );
        for bad in [
            "garbage",
            "v1.",
            "v1.@@@",
            "v2.AAAA",
            &sealed[3..],
            "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(
                k.decrypt(bad, PURPOSE).unwrap_err(),
                CryptoError::Malformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_are_read_from_hex_or_base64() {
        let k = MasterKey::generate();
        let bytes = *k.bytes.expose_secret();
        let sealed = k.encrypt("x", PURPOSE);
        for encoded in [
            k.to_encoded(),
            hex::encode(bytes),
            hex::encode_upper(bytes),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            format!("{}\n", STANDARD.encode(bytes)),
        ] {
            let again = MasterKey::from_encoded(&encoded).unwrap();
            assert_eq!(again.bytes.expose_secret(), &bytes, "{encoded}");
            assert_eq!(
                again.decrypt(&sealed, PURPOSE).unwrap().expose_secret(),
                "x"
            );
        }
        for bad in [
            "short".to_string(),
            String::new(),
            hex::encode([7u8; 31]),
            hex::encode([7u8; 33]),
            STANDARD.encode([7u8; 31]),
            STANDARD.encode([7u8; 33]),
            "g".repeat(64),
        ] {
            assert_eq!(
                MasterKey::from_encoded(&bad).unwrap_err(),
                CryptoError::InvalidKey,
                "{bad}"
            );
        }
    }

    #[test]
    fn nothing_secret_is_printed() {
        let k = MasterKey::generate();
        assert_eq!(format!("{k:?}"), "MasterKey(..)");
        let opened = k
            .decrypt(&k.encrypt("tr_prod_secret", PURPOSE), PURPOSE)
            .unwrap();
        assert!(!format!("{opened:?}").contains("tr_prod_secret"));
        for e in [
            CryptoError::InvalidKey,
            CryptoError::Malformed,
            CryptoError::OpenFailed,
        ] {
            assert!(!e.to_string().contains("secret"));
        }
    }
}
