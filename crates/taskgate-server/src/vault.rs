//! [`KeyVault`]: seals environment keys under the master key before they reach a store, opens
//! them when the server needs to sign with one, and mints fresh keys for new environments.

use secrecy::{ExposeSecret, SecretString};
use taskgate_core::crypto::MasterKey;
use taskgate_core::env::EnvType;
use taskgate_core::hash::sha256_hex;
use taskgate_core::keys;
use taskgate_store::{EnvKeys, KeyMaterial, KeyMinter};

/// Associated data binding a sealed value to its purpose: a sealed environment key cannot be
/// replayed into another column that is sealed under the same master key.
const ENV_KEY_AAD: &[u8] = b"taskgate:env-api-key";
const PUBLIC_KEY_AAD: &[u8] = b"taskgate:env-public-key";

/// Seals and opens environment keys.
pub struct KeyVault {
    master: MasterKey,
}

impl KeyVault {
    pub fn new(master: MasterKey) -> Self {
        Self { master }
    }

    /// The hash, sealed copy and last four characters of a secret key.
    pub fn seal_secret(&self, key: &SecretString) -> KeyMaterial {
        let plain = key.expose_secret();
        KeyMaterial {
            hash: sha256_hex(plain),
            sealed: self.master.encrypt(plain, ENV_KEY_AAD),
            last_four: keys::last_four(plain),
        }
    }

    fn seal_public(&self, key: &SecretString) -> KeyMaterial {
        let plain = key.expose_secret();
        KeyMaterial {
            hash: sha256_hex(plain),
            sealed: self.master.encrypt(plain, PUBLIC_KEY_AAD),
            last_four: keys::last_four(plain),
        }
    }

    /// Opens a sealed secret key. Fails only if the master key is not the one that sealed it.
    pub fn open_secret(&self, sealed: &str) -> anyhow::Result<SecretString> {
        self.master
            .decrypt(sealed, ENV_KEY_AAD)
            .map_err(|_| anyhow::anyhow!("an environment key could not be decrypted: is TASKGATE_ENCRYPTION_KEY the key it was sealed with?"))
    }

    /// New keys for an environment, and the plaintext secret key (shown once).
    pub fn mint_with_plaintext(&self, env_type: EnvType) -> (EnvKeys, SecretString) {
        let secret = keys::generate_secret_key(env_type);
        let public = keys::generate_public_key(env_type);
        (
            EnvKeys {
                secret: self.seal_secret(&secret),
                public: self.seal_public(&public),
            },
            secret,
        )
    }
}

impl KeyMinter for KeyVault {
    fn mint(&self, env_type: EnvType) -> EnvKeys {
        self.mint_with_plaintext(env_type).0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_master_key() {
        let vault = KeyVault::new(MasterKey::generate());
        let (keys, plain) = vault.mint_with_plaintext(EnvType::Production);
        assert!(plain.expose_secret().starts_with("tr_prod_"));
        assert!(!keys.secret.sealed.contains(plain.expose_secret()));
        assert_eq!(keys.secret.hash, sha256_hex(plain.expose_secret()));
        assert_eq!(
            vault
                .open_secret(&keys.secret.sealed)
                .unwrap()
                .expose_secret(),
            plain.expose_secret()
        );
        let other = KeyVault::new(MasterKey::generate());
        assert!(other.open_secret(&keys.secret.sealed).is_err());
        // A sealed public key is not accepted where a secret key is expected.
        assert!(vault.open_secret(&keys.public.sealed).is_err());
    }
}
