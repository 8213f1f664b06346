//! The server's own secrets, when the operator provides them rather than letting the first
//! start generate them into the data directory. Never read from the config file.

use secrecy::SecretString;

options! {
    /// The master key and the session secret.
    pub struct SecretArgs {
        /// Master key sealing environment keys at rest (32 bytes, hex or base64) [default:
        /// generated into the data dir on first start].
        #[arg(long, env = "TASKGATE_ENCRYPTION_KEY", value_name = "KEY", hide_env_values = true)]
        #[serde(skip)]
        pub encryption_key: Option<String>,

        /// Secret signing user-actor tokens, at least 32 characters [default: generated into
        /// the data dir on first start].
        #[arg(long, env = "TASKGATE_SESSION_SECRET", value_name = "SECRET", hide_env_values = true)]
        #[serde(skip)]
        pub session_secret: Option<String>,
    }
}

/// The secrets section: what the operator gave (checked when the server starts, by
/// `taskgate_server::bootstrap`). Its `Debug` shows whether each is set, never its value.
#[derive(Clone, Default, Debug)]
pub struct SecretsConfig {
    pub encryption_key: Option<SecretString>,
    pub session_secret: Option<SecretString>,
}

impl SecretArgs {
    pub(crate) fn validate(self) -> SecretsConfig {
        SecretsConfig {
            encryption_key: self.encryption_key.map(SecretString::from),
            session_secret: self.session_secret.map(SecretString::from),
        }
    }
}
