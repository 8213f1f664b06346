//! First start: the data directory, the generated secrets (master key, session secret) and
//! the administrator with its personal access token, written to `<data-dir>/admin-token`
//! (mode 0600) and never logged.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use taskgate_core::crypto::MasterKey;
use taskgate_core::hash::sha256_hex;
use taskgate_core::pat::{generate_pat, obfuscate_pat};
use taskgate_store::{NewPersonalAccessToken, NewUser, Store};

use taskgate_config::Config;

pub const ADMIN_TOKEN_FILE: &str = "admin-token";
pub const MASTER_KEY_FILE: &str = "master.key";
pub const SESSION_SECRET_FILE: &str = "session.secret";

/// Creates the data directory (0700 on Unix).
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("data-dir: cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("data-dir: cannot restrict {}", dir.display()))?;
    }
    Ok(())
}

/// Writes `contents` to `path` with mode 0600, atomically (temp file, then rename).
pub fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn read_or_create(path: &Path, create: impl FnOnce() -> String) -> anyhow::Result<(String, bool)> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok((s.trim().to_string(), false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let value = create();
            write_secret_file(path, &value)?;
            Ok((value, true))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The master key: `TASKGATE_ENCRYPTION_KEY`, else `<data-dir>/master.key`, created on first
/// start. Losing it makes every sealed environment key unreadable (see docs/keys.md).
pub fn master_key(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(k) = &config.secrets.encryption_key {
        return MasterKey::from_encoded(k.expose_secret()).map_err(|_| {
            anyhow::anyhow!("encryption-key: expected 32 bytes as 64 hex characters or base64")
        });
    }
    let path = config.server.data_dir.join(MASTER_KEY_FILE);
    let (encoded, created) = read_or_create(&path, || MasterKey::generate().to_encoded())?;
    if created {
        tracing::info!(path = %path.display(), "generated a master key; back it up: keys cannot be read without it");
        if config
            .database
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres"))
        {
            tracing::warn!("running on PostgreSQL with a generated master key: set TASKGATE_ENCRYPTION_KEY to the same value on every node");
        }
    }
    MasterKey::from_encoded(&encoded)
        .map_err(|_| anyhow::anyhow!("{} does not hold a valid master key", path.display()))
}

/// The session secret signing user-actor tokens: `TASKGATE_SESSION_SECRET`, else generated.
pub fn session_secret(config: &Config) -> anyhow::Result<SecretBox<Vec<u8>>> {
    let value = match &config.secrets.session_secret {
        Some(s) => s.expose_secret().to_string(),
        None => {
            let path = config.server.data_dir.join(SESSION_SECRET_FILE);
            read_or_create(&path, || MasterKey::generate().to_encoded())?.0
        }
    };
    if value.len() < 32 {
        anyhow::bail!("session-secret: must be at least 32 characters");
    }
    Ok(SecretBox::new(Box::new(value.into_bytes())))
}

/// `<path>.new`, or `<path>.new.2`, `.3`… whichever does not exist yet.
fn free_path(path: &Path) -> PathBuf {
    let first = path.with_extension("new");
    if !first.exists() {
        return first;
    }
    (2u32..)
        .map(|n| path.with_extension(format!("new.{n}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// On an empty database, creates the administrator and writes its token file. Later starts
/// change nothing. Returns the token file's path when it was written.
pub async fn bootstrap_admin(
    store: &dyn Store,
    config: &Config,
) -> anyhow::Result<Option<PathBuf>> {
    let path = config.server.data_dir.join(ADMIN_TOKEN_FILE);
    let token: SecretString = generate_pat();
    let plain = token.expose_secret();
    // Written before the commit (as a temp file) so a crash cannot leave an admin nobody can
    // reach; renamed into place only if this start created the admin.
    let pending = path.with_extension("pending");
    write_secret_file(&pending, &format!("{plain}\n"))?;
    let admin = NewUser {
        email: config.sign_in.admin_email.clone(),
        name: Some("Administrator".into()),
        admin: true,
    };
    let pat = NewPersonalAccessToken {
        user_id: String::new(),
        name: "bootstrap".into(),
        hashed_token: sha256_hex(plain),
        obfuscated_token: obfuscate_pat(plain),
    };
    let created = store.bootstrap_admin(admin, pat, chrono::Utc::now()).await;
    match created {
        Ok(Some(_)) => {
            // A token file already here belongs to another database (an earlier start on the
            // other backend, say): it is never overwritten, and the new one goes beside it.
            let target = if path.exists() {
                free_path(&path)
            } else {
                path.clone()
            };
            std::fs::rename(&pending, &target)
                .with_context(|| format!("cannot write {}", target.display()))?;
            if target == path {
                tracing::info!(path = %path.display(), "created the administrator; its personal access token is in this file");
            } else {
                tracing::warn!(
                    path = %target.display(),
                    existing = %path.display(),
                    "created the administrator of a new database; its personal access token is in `path`, not in `existing`, which belongs to another database and was left as it was. Give each database its own --data-dir"
                );
            }
            Ok(Some(target))
        }
        Ok(None) => {
            let _ = std::fs::remove_file(&pending);
            Ok(None)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&pending);
            Err(anyhow::anyhow!("first-run bootstrap failed: {e}"))
        }
    }
}
