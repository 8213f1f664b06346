//! Sealing secrets at rest with AES-256-GCM under the master key.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::SecretString;

/// Version tag of the sealed format: `v1.` + base64url(nonce ‖ ciphertext ‖ tag).
const SEALED_PREFIX: &str = "v1.";
const NONCE_LEN: usize = 12;

/// Why a value could not be opened or a key read. Never carries secret material.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the master key must be 32 bytes, as 64 hex characters or base64")]
    InvalidKey,
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value does not open with this key")]
    OpenFailed,
}

/// The 256-bit master key.
pub struct MasterKey {
    bytes: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Reads 64 hex characters or base64 (standard or URL-safe, padded or not) of 32 bytes.
    pub fn from_encoded(s: &str) -> Result<MasterKey, CryptoError> {
        let s = s.trim();
        let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(s).map_err(|_| CryptoError::InvalidKey)?
        } else {
            let t = s.trim_end_matches('=');
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(t)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
                .map_err(|_| CryptoError::InvalidKey)?
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::InvalidKey)?;
        Ok(MasterKey { bytes })
    }

    /// A fresh random key.
    pub fn generate() -> MasterKey {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        MasterKey { bytes }
    }

    /// Standard base64, for writing the key to a file.
    pub fn to_encoded(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.bytes)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.bytes.into())
    }

    /// Seals `plaintext`; `aad` binds the result to its purpose.
    pub fn encrypt(&self, plaintext: &str, aad: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        // Encryption fails only for inputs beyond GCM's 64 GiB limit, which keys never reach.
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad,
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
        )
    }

    /// Opens a value sealed by [`Self::encrypt`] with the same `aad`.
    pub fn decrypt(&self, sealed: &str, aad: &[u8]) -> Result<SecretString, CryptoError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(CryptoError::Malformed)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CryptoError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| CryptoError::OpenFailed)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Malformed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn seal_and_open() {
        let k = MasterKey::generate();
        let sealed = k.encrypt("tr_prod_secret", b"purpose");
        assert!(!sealed.contains("tr_prod_secret"));
        assert_ne!(
            sealed,
            k.encrypt("tr_prod_secret", b"purpose"),
            "fresh nonce each time"
        );
        assert_eq!(
            k.decrypt(&sealed, b"purpose").unwrap().expose_secret(),
            "tr_prod_secret"
        );
        assert_eq!(
            k.decrypt(&sealed, b"other").unwrap_err(),
            CryptoError::OpenFailed
        );
        assert_eq!(
            MasterKey::generate()
                .decrypt(&sealed, b"purpose")
                .unwrap_err(),
            CryptoError::OpenFailed
        );
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(k
            .decrypt(&String::from_utf8(tampered).unwrap(), b"purpose")
            .is_err());
        assert_eq!(
            k.decrypt("garbage", b"purpose").unwrap_err(),
            CryptoError::Malformed
        );
    }

    #[test]
    fn keys_are_read_from_hex_or_base64() {
        let k = MasterKey::generate();
        let again = MasterKey::from_encoded(&k.to_encoded()).unwrap();
        assert_eq!(again.bytes, k.bytes);
        assert!(MasterKey::from_encoded(&"ab".repeat(32)).is_ok());
        assert_eq!(
            MasterKey::from_encoded("short").unwrap_err(),
            CryptoError::InvalidKey
        );
        assert_eq!(format!("{k:?}"), "MasterKey(..)");
    }
}
