//! Deployed bundles on this node's disk: each deployment's upload unpacked into a directory of
//! its own, its npm externals installed, its build manifest pointed at where it lives, and
//! indexed (`index.json`) so that its run controller can start. A node prepares a bundle the
//! first time it needs it (to index a new deployment, or to run one another node indexed);
//! a marker file says a directory is complete, so a half-prepared one is never used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use crate::process::{output_tail, Launch, Sandbox};
use crate::{Error, Result};

/// What marks a prepared directory complete.
const READY_MARKER: &str = ".taskgate-ready";
/// How long installing a bundle's externals may take.
const NPM_TIMEOUT: Duration = Duration::from_secs(300);
/// The path every file in a bundle's manifest starts with (the image layout it was built for).
const IMAGE_ROOT: &str = "/app/";

/// The bundles of this node.
pub struct Bundles {
    root: PathBuf,
    npm: PathBuf,
    /// One preparation per bundle at a time.
    locks: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Files of a prepared bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    /// The managed run controller and index controller (`build.json`'s entry points).
    pub run_controller: PathBuf,
    pub index_controller: PathBuf,
}

impl Bundle {
    fn read(dir: &Path) -> Result<Bundle> {
        let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("build.json"))?)
            .map_err(|e| Error::Bundle(format!("build.json is not JSON: {e}")))?;
        let entry = |key: &str| -> Result<PathBuf> {
            let path = manifest
                .get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Bundle(format!("build.json names no {key}")))?;
            let path = PathBuf::from(path);
            // Every entry point is inside the bundle.
            if !path.starts_with(dir) {
                return Err(Error::Bundle(format!(
                    "build.json's {key} is outside the bundle"
                )));
            }
            Ok(path)
        };
        Ok(Bundle {
            dir: dir.to_path_buf(),
            run_controller: entry("runControllerEntryPoint")?,
            index_controller: entry("indexControllerEntryPoint")?,
        })
    }

    /// Whether its index manifest is written.
    pub fn indexed(&self) -> bool {
        self.dir.join("index.json").is_file()
    }
}

impl Bundles {
    pub fn new(root: PathBuf, npm: PathBuf) -> Bundles {
        Bundles {
            root,
            npm,
            locks: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of bundle `name` (a deployment's friendly id), prepared from `archive`
    /// (a tar.gz, loaded only when the directory is absent) unless it is ready already.
    pub async fn prepare<F, Fut>(
        &self,
        name: &str,
        sandbox: Option<&Sandbox>,
        archive: F,
    ) -> Result<Bundle>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>>>,
    {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::Bundle(format!("{name:?} is not a bundle name")));
        }
        let dir = self.root.join(name);
        if dir.join(READY_MARKER).is_file() {
            return Bundle::read(&dir);
        }
        let lock = self
            .locks
            .lock()
            .entry(name.to_string())
            .or_default()
            .clone();
        let _held = lock.lock().await;
        if dir.join(READY_MARKER).is_file() {
            return Bundle::read(&dir);
        }
        let archive = archive().await?;
        let suffix: u64 = rand::thread_rng().gen();
        let staging = self.root.join(format!("{name}.staging-{suffix:016x}"));
        let result = self.unpack(&archive, &staging, &dir, sandbox).await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(e);
        }
        if tokio::fs::rename(&staging, &dir).await.is_err() {
            // Another process prepared it meanwhile.
            let _ = tokio::fs::remove_dir_all(&staging).await;
        }
        Bundle::read(&dir)
    }

    /// Marks a prepared bundle ready (once it is indexed).
    pub fn mark_ready(&self, bundle: &Bundle) -> Result<()> {
        std::fs::write(bundle.dir.join(READY_MARKER), b"")?;
        Ok(())
    }

    /// Unpacks `archive` into `staging` as it will live at `dir`: externals first (as the
    /// image build does: installing prunes what is not a dependency), then the bundle over
    /// them, then its manifest's paths rewritten to `dir`.
    async fn unpack(
        &self,
        archive: &[u8],
        staging: &Path,
        dir: &Path,
        sandbox: Option<&Sandbox>,
    ) -> Result<()> {
        tokio::fs::create_dir_all(staging).await?;
        let package = extract(archive, staging, Some("package.json"))?;
        if package {
            self.install_externals(staging, sandbox).await?;
        }
        extract(archive, staging, None)?;
        let manifest = staging.join("build.json");
        let text = tokio::fs::read_to_string(&manifest)
            .await
            .map_err(|_| Error::Bundle("the bundle has no build.json".into()))?;
        let target = format!("{}/", dir.display());
        tokio::fs::write(&manifest, text.replace(IMAGE_ROOT, &target)).await?;
        Ok(())
    }

    /// `npm install` of the bundle's `package.json` dependencies (its externals), if any.
    async fn install_externals(&self, dir: &Path, sandbox: Option<&Sandbox>) -> Result<()> {
        let package: Value =
            serde_json::from_slice(&tokio::fs::read(dir.join("package.json")).await?)
                .map_err(|e| Error::Bundle(format!("package.json is not JSON: {e}")))?;
        let has_dependencies = package
            .get("dependencies")
            .and_then(Value::as_object)
            .is_some_and(|d| !d.is_empty());
        if !has_dependencies {
            return Ok(());
        }
        let home = self.root.join(".home");
        let cache = self.root.join(".npm-cache");
        tokio::fs::create_dir_all(&home).await?;
        tokio::fs::create_dir_all(&cache).await?;
        let launch = Launch {
            program: self.npm.clone(),
            args: [
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--omit=dev",
                "--loglevel=error",
            ]
            .iter()
            .map(Into::into)
            .collect(),
            cwd: dir.to_path_buf(),
            env: vec![
                ("HOME".into(), home.display().to_string()),
                ("npm_config_cache".into(), cache.display().to_string()),
            ],
        };
        // Packages' install scripts run here: in the sandbox, like task code.
        let allow = [dir.to_path_buf(), home, cache];
        let output = launch
            .output(sandbox.map(|s| (s, &allow[..])), NPM_TIMEOUT)
            .await?;
        if !output.status.success() {
            return Err(Error::Bundle(format!(
                "installing the bundle's externals failed (npm install exited {}): {}",
                output.status,
                output_tail(&output)
            )));
        }
        Ok(())
    }
}

/// Most bytes a bundle may unpack to (a small archive must not fill the disk).
const MAX_UNPACKED_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Most entries a bundle may hold.
const MAX_ENTRIES: usize = 100_000;

/// Extracts `archive` (tar.gz) into `dir`, only `only` when given (`true` when found). Entries
/// that would land outside `dir` are refused by the unpacker; an archive that unpacks to more
/// than [`MAX_UNPACKED_BYTES`] or [`MAX_ENTRIES`] is refused before it gets there.
fn extract(archive: &[u8], dir: &Path, only: Option<&str>) -> Result<bool> {
    extract_within(archive, dir, only, MAX_UNPACKED_BYTES, MAX_ENTRIES)
}

fn extract_within(
    archive: &[u8],
    dir: &Path,
    only: Option<&str>,
    max_bytes: u64,
    max_entries: usize,
) -> Result<bool> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    tar.set_preserve_permissions(false);
    tar.set_overwrite(true);
    let mut found = false;
    let (mut bytes, mut entries) = (0u64, 0usize);
    for entry in tar
        .entries()
        .map_err(|e| Error::Bundle(format!("the bundle is not a tar.gz: {e}")))?
    {
        let mut entry = entry.map_err(|e| Error::Bundle(format!("the bundle is damaged: {e}")))?;
        entries += 1;
        bytes = bytes.saturating_add(entry.size());
        if entries > max_entries || bytes > max_bytes {
            return Err(Error::Bundle(format!(
                "the bundle unpacks to more than {max_entries} files or {} MiB",
                max_bytes / (1024 * 1024)
            )));
        }
        if let Some(name) = only {
            let path = entry
                .path()
                .map_err(|e| Error::Bundle(format!("the bundle is damaged: {e}")))?;
            let path = path.strip_prefix("./").unwrap_or(&path);
            if path != Path::new(name) {
                continue;
            }
        }
        let unpacked = entry
            .unpack_in(dir)
            .map_err(|e| Error::Bundle(format!("cannot unpack the bundle: {e}")))?;
        if !unpacked {
            return Err(Error::Bundle(
                "the bundle has an entry outside its directory".into(),
            ));
        }
        found = true;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_that_unpacks_too_large_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let big = "x".repeat(4096);
        let archive = tarball(&[("a.js", &big), ("b.js", &big)]);
        let err = extract_within(&archive, root.path(), None, 6000, 100).unwrap_err();
        assert!(err.to_string().contains("unpacks to more than"), "{err}");
        let err = extract_within(&archive, root.path(), None, 1 << 20, 1).unwrap_err();
        assert!(err.to_string().contains("unpacks to more than"), "{err}");
        assert!(extract_within(&archive, root.path(), None, 1 << 20, 100).unwrap());
    }

    fn tarball(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, text.as_bytes())
                .unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[tokio::test]
    async fn a_bundle_is_unpacked_once_with_its_paths_pointing_at_it() {
        let root = tempfile::tempdir().unwrap();
        let bundles = Bundles::new(root.path().to_path_buf(), "npm".into());
        let build = r#"{"runControllerEntryPoint":"/app/node_modules/trigger.dev/run.mjs","indexControllerEntryPoint":"/app/index.mjs"}"#;
        let archive = tarball(&[
            ("build.json", build),
            ("package.json", r#"{"dependencies":{}}"#),
            ("node_modules/trigger.dev/run.mjs", "//"),
        ]);
        let bundle = bundles
            .prepare("deployment_a1", None, || async { Ok(archive.clone()) })
            .await
            .unwrap();
        let dir = root.path().join("deployment_a1");
        assert_eq!(bundle.dir, dir);
        assert_eq!(
            bundle.run_controller,
            dir.join("node_modules/trigger.dev/run.mjs")
        );
        assert!(dir.join("node_modules/trigger.dev/run.mjs").is_file());
        bundles.mark_ready(&bundle).unwrap();
        // Ready: the archive is not loaded again.
        let again = bundles
            .prepare("deployment_a1", None, || async {
                Err(Error::Bundle("not loaded".into()))
            })
            .await
            .unwrap();
        assert_eq!(again.dir, dir);
    }

    #[tokio::test]
    async fn entries_outside_the_bundle_and_bad_names_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let bundles = Bundles::new(root.path().to_path_buf(), "npm".into());
        assert!(bundles
            .prepare("../x", None, || async { Ok(Vec::new()) })
            .await
            .is_err());
        let evil = {
            let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            ));
            let mut header = tar::Header::new_gnu();
            header.set_size(1);
            header.set_mode(0o644);
            header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
            header.set_cksum();
            builder.append(&header, &b"x"[..]).unwrap();
            builder.into_inner().unwrap().finish().unwrap()
        };
        let err = bundles
            .prepare("deployment_b", None, || async { Ok(evil) })
            .await
            .unwrap_err();
        assert!(!root.path().join("escape").exists(), "{err}");
        assert!(!root.path().join("deployment_b").exists());
    }
}
