//! The profile file: `$XDG_CONFIG_HOME/taskgate/config.json` (else
//! `~/.config/taskgate/config.json`), `{"profiles": {"<name>": {"apiUrl", "token"}}}`, written
//! atomically with mode 0600 in a 0700 directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

/// A saved server and token. No `Debug`: the token must never reach a log or a message.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub api_url: String,
    pub token: String,
}

#[derive(Default, Serialize, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// Where the profiles live.
pub fn config_path() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|home| PathBuf::from(home).join(".config"))
            .ok_or_else(|| anyhow!("neither XDG_CONFIG_HOME nor HOME is set"))?,
    };
    Ok(base.join("taskgate").join("config.json"))
}

fn read(path: &Path) -> Result<ConfigFile> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a valid taskgate config", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The profile `name`, if it was saved.
pub fn load(name: &str) -> Result<Option<Profile>> {
    Ok(read(&config_path()?)?.profiles.remove(name))
}

/// Saves `profile` as `name`, keeping the other profiles; returns the file's path.
pub fn save(name: &str, profile: Profile) -> Result<PathBuf> {
    let path = config_path()?;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", path.display()))?;
    create_private_dir(dir)?;
    let mut config = read(&path)?;
    config.profiles.insert(name.to_string(), profile);

    // A temporary file in the same directory (created 0600), then a rename: readers see the
    // old file or the new one, never half of one.
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.json.")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    set_mode(tmp.path(), 0o600)?;
    serde_json::to_writer_pretty(&mut tmp, &config)?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // An existing directory of ours is made private too (its parents are left alone).
    set_mode(dir, 0o700)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the permissions of {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}
