//! [`KeyVault`]: seals environment keys and variables under the master key before they reach a
//! store, opens them when the server needs one, and mints fresh keys for new environments.
//! What a store is given ([`KeyMaterial`], [`EnvKeys`]) is already hashed and sealed.

use secrecy::{ExposeSecret, SecretString};

use crate::crypto::MasterKey;
use crate::env::EnvType;
use crate::hash::sha256_hex;
use crate::keys;

/// A key as a store sees it: a lookup hash, a sealed copy and the last four characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    /// Lowercase hex SHA-256 of the key; the unique lookup column.
    pub hash: String,
    /// The key sealed with the master key ([`crate::crypto`]).
    pub sealed: String,
    /// Last four characters, for display.
    pub last_four: String,
}

/// The secret and public key of a new or rotated environment.
#[derive(Debug, Clone)]
pub struct EnvKeys {
    pub secret: KeyMaterial,
    pub public: KeyMaterial,
}

/// Makes fresh keys for an environment type. Stores call it inside the transaction that creates
/// environments, so that rows created concurrently (a project and a member) each get keys.
pub trait KeyMinter: Send + Sync {
    fn mint(&self, env_type: EnvType) -> EnvKeys;
}

/// A sealed value that does not open under this master key (or not for this purpose).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("an environment key could not be decrypted: is TASKGATE_ENCRYPTION_KEY the key it was sealed with?")]
    Key,
    #[error("an environment variable could not be decrypted: is TASKGATE_ENCRYPTION_KEY the key it was sealed with?")]
    Variable,
    #[error("an alert channel's webhook secret could not be decrypted: is TASKGATE_ENCRYPTION_KEY the key it was sealed with?")]
    AlertSecret,
}

/// Associated data binding a sealed value to its purpose: a sealed environment key cannot be
/// replayed into another column that is sealed under the same master key.
const ENV_KEY_AAD: &[u8] = b"taskgate:env-api-key";
const PUBLIC_KEY_AAD: &[u8] = b"taskgate:env-public-key";

/// Associated data of an environment variable's value: its environment and name, so a sealed
/// value moved to another variable or environment does not open there.
fn env_var_aad(environment_id: &str, key: &str) -> Vec<u8> {
    format!("taskgate:env-var:{environment_id}:{key}").into_bytes()
}

/// Associated data of an alert channel's webhook secret: its project.
fn alert_secret_aad(project_id: &str) -> Vec<u8> {
    format!("taskgate:alert-secret:{project_id}").into_bytes()
}

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
    pub fn open_secret(&self, sealed: &str) -> Result<SecretString, OpenError> {
        self.master
            .decrypt(sealed, ENV_KEY_AAD)
            .map_err(|_| OpenError::Key)
    }

    /// Seals an environment variable's value, bound to its environment and name.
    pub fn seal_env_var(&self, environment_id: &str, key: &str, value: &str) -> String {
        self.master
            .encrypt(value, &env_var_aad(environment_id, key))
    }

    /// Opens an environment variable's value sealed by [`Self::seal_env_var`].
    pub fn open_env_var(
        &self,
        environment_id: &str,
        key: &str,
        sealed: &str,
    ) -> Result<SecretString, OpenError> {
        self.master
            .decrypt(sealed, &env_var_aad(environment_id, key))
            .map_err(|_| OpenError::Variable)
    }

    /// Seals an alert channel's webhook signing secret, bound to its project.
    pub fn seal_alert_secret(&self, project_id: &str, secret: &str) -> String {
        self.master.encrypt(secret, &alert_secret_aad(project_id))
    }

    /// Opens a secret sealed by [`Self::seal_alert_secret`].
    pub fn open_alert_secret(
        &self,
        project_id: &str,
        sealed: &str,
    ) -> Result<SecretString, OpenError> {
        self.master
            .decrypt(sealed, &alert_secret_aad(project_id))
            .map_err(|_| OpenError::AlertSecret)
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

    #[test]
    fn env_var_values_open_only_where_they_were_sealed() {
        let vault = KeyVault::new(MasterKey::generate());
        let sealed = vault.seal_env_var("env1", "API_TOKEN", "s3cret");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            vault
                .open_env_var("env1", "API_TOKEN", &sealed)
                .unwrap()
                .expose_secret(),
            "s3cret"
        );
        assert!(vault.open_env_var("env2", "API_TOKEN", &sealed).is_err());
        assert!(vault.open_env_var("env1", "OTHER", &sealed).is_err());
        // A sealed key does not open as a variable, nor a variable as a key.
        let (keys, _) = vault.mint_with_plaintext(EnvType::Production);
        assert!(vault
            .open_env_var("env1", "API_TOKEN", &keys.secret.sealed)
            .is_err());
        assert!(vault.open_secret(&sealed).is_err());
    }
}
