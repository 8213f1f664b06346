//! Environment secret keys: the two-step lookup behind the cache, and branch resolution.

use std::sync::Arc;

use secrecy::SecretString;
use taskgate_core::branch::sanitize_branch;
use taskgate_core::env::EnvType;
use taskgate_core::hash::{digest_hex, sha256};
use taskgate_core::keys::is_additional_key;
use taskgate_store::{EnvironmentAuth, KeyMatchVia};

use taskgate_core::Problem;

use crate::cache::{Cached, GraceMatch, KeyDigest, KeyEntry, LookupGuard, RootEnv};
use crate::filter::Verdict;
use crate::{Auth, Result};
use crate::{EnvCredential, EnvPrincipal};

/// How long a request waits for another request's lookup of the same key before looking it up
/// itself (a lookup normally takes a millisecond or two).
const LOOKUP_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Upstream's word for an unknown, expired or malformed key.
pub const INVALID_API_KEY: &str = "Invalid API key";

/// A secret key the rate limiter already looked up for this request (a request extension), so
/// that the route's authentication does not look it up again.
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    /// The `Authorization` header it was read from (a shared buffer: no copy).
    pub header: http::HeaderValue,
    pub entry: KeyEntry,
}

/// A request's secret key: its bearer token, or the rate limiter's lookup of its header.
#[derive(Clone, Copy)]
pub enum SecretKey<'a> {
    Token(&'a str),
    /// Already classified and looked up: not parsed nor looked up again.
    Resolved(&'a ResolvedKey),
}

/// Authenticates a root secret key (current or in its grace window) and resolves the branch
/// named by `x-trigger-branch`.
pub async fn authenticate_secret_key(
    auth: &Auth,
    key: SecretKey<'_>,
    branch_header: Option<&str>,
    allow_preview_parent: bool,
) -> Result<EnvPrincipal> {
    let entry = match key {
        SecretKey::Resolved(r) => r.entry.clone(),
        SecretKey::Token(token) if may_be_root_key(token) => {
            lookup_key(auth, token, auth.now_millis()).await?
        }
        SecretKey::Token(_) => return Err(Problem::unauthenticated(INVALID_API_KEY)),
    };
    if entry.root.auth.project_deleted {
        return Err(Problem::unauthenticated(INVALID_API_KEY));
    }
    if let Some(grace) = &entry.grace {
        grace.usage.record(auth.now());
    }
    let branch = sanitize_branch(branch_header);
    let env = resolve_branch(
        auth,
        &entry.root.auth,
        branch.as_deref(),
        allow_preview_parent,
    )
    .await?;
    Ok(EnvPrincipal {
        env,
        signing_key: entry.root.current_key.clone(),
        credential: EnvCredential::SecretKey { grace: entry.grace },
    })
}

/// What a secret key (current or in its grace window) resolves to: its root environment,
/// never a branch child. `None` for a key that does not authenticate, or when the lookup
/// failed (the database is down). For choosing a request's rate-limit bucket; it records no
/// grace-window use (the route's own authentication does).
pub async fn resolve_key(
    auth: &Auth,
    header: &http::HeaderValue,
    token: &[u8],
) -> Option<ResolvedKey> {
    let token = std::str::from_utf8(token).ok()?;
    if !may_be_root_key(token) {
        return None;
    }
    let entry = lookup_key(auth, token, auth.now_millis()).await.ok()?;
    resolved(header, entry)
}

/// [`resolve_key`] from the cache alone, without waiting: `None` when only a lookup can tell.
pub fn cached_key(
    auth: &Auth,
    header: &http::HeaderValue,
    token: &[u8],
    now_ms: i64,
) -> Option<Option<ResolvedKey>> {
    // A key in the cache was looked up once, which only a possible root key is.
    match auth.cache.key(&sha256(token), now_ms) {
        Cached::Hit(entry) => Some(resolved(header, entry)),
        Cached::Absent => Some(None),
        Cached::Miss => None,
    }
}

/// Taskgate issues no additional (`tr_<env>_sk_`) keys, so their lookup is disabled as on
/// upstream's default; public keys (`pk_`) are dead on every route.
fn may_be_root_key(token: &str) -> bool {
    !(is_additional_key(token) || token.starts_with("pk_"))
}

fn resolved(header: &http::HeaderValue, entry: KeyEntry) -> Option<ResolvedKey> {
    (!entry.root.auth.project_deleted).then(|| ResolvedKey {
        header: header.clone(),
        entry,
    })
}

/// `now_ms`: milliseconds since the Unix epoch; a date is made only when the cache misses.
async fn lookup_key(auth: &Auth, token: &str, now_ms: i64) -> Result<KeyEntry> {
    let digest: KeyDigest = sha256(token.as_bytes());
    match auth.cache.key(&digest, now_ms) {
        Cached::Hit(entry) => return Ok(entry),
        Cached::Absent => return Err(Problem::unauthenticated(INVALID_API_KEY)),
        Cached::Miss => {}
    }
    let now = taskgate_core::time::from_millis(now_ms);
    let verdict = auth.key_filter.check(&digest, now);
    if verdict == Verdict::Refuse {
        return Err(Problem::unauthenticated(INVALID_API_KEY));
    }
    // One lookup per key at a time: followers wait for the leader's answer in the cache.
    let _leader = match auth.cache.begin_lookup(&digest) {
        Ok(guard) => guard,
        Err(notify) => {
            // Register for the wake-up before looking again, so it cannot be missed.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Cached::Miss = auth.cache.key(&digest, now_ms) {
                let _ = tokio::time::timeout(LOOKUP_WAIT, notified).await;
            }
            match auth.cache.key(&digest, now_ms) {
                Cached::Hit(entry) => return Ok(entry),
                Cached::Absent => return Err(Problem::unauthenticated(INVALID_API_KEY)),
                // The leader failed (the database is down) or was cut off: look it up here.
                Cached::Miss => auth
                    .cache
                    .begin_lookup(&digest)
                    .unwrap_or_else(|_| LookupGuard::detached()),
            }
        }
    };
    let generation = auth.cache.generation();
    match auth
        .store
        .find_env_by_key_hash(&digest_hex(&digest), now)
        .await
    {
        Ok(Some(found)) => {
            if verdict == Verdict::Confirm {
                tracing::info!("key filter: a live key it did not hold was added (a change not yet received from another node?)");
                auth.key_filter.add(&digest);
            }
            let current_key = auth
                .vault
                .open_secret(&found.env.environment.api_key_sealed)
                .map_err(Problem::internal)?;
            let grace = match found.via {
                KeyMatchVia::Current => None,
                KeyMatchVia::Revoked {
                    revoked_key_id,
                    expires_at,
                } => Some(GraceMatch {
                    expires_at,
                    usage: auth.cache.grace_use(&revoked_key_id),
                }),
            };
            let entry = KeyEntry {
                root: Arc::new(RootEnv {
                    auth: Arc::new(found.env),
                    current_key: Arc::new(current_key),
                    bucket: tokio::sync::OnceCell::new(),
                }),
                grace,
            };
            auth.cache.insert_key(generation, digest, entry.clone());
            Ok(entry)
        }
        Ok(None) => {
            auth.cache.insert_absent_key(generation, digest);
            Err(Problem::unauthenticated(INVALID_API_KEY))
        }
        Err(e) => Err(e.into()),
    }
}

/// Pivots a branchable root to the child named by `branch` (upstream's `resolveBranch`).
pub async fn resolve_branch(
    auth: &Auth,
    root: &Arc<EnvironmentAuth>,
    branch: Option<&str>,
    allow_preview_parent: bool,
) -> Result<Arc<EnvironmentAuth>> {
    let env = &root.environment;
    let branchable = env.parent_environment_id.is_none()
        && matches!(env.env_type, EnvType::Preview | EnvType::Development);
    match (env.env_type, branch) {
        (EnvType::Preview, None) if branchable && !allow_preview_parent => Err(
            Problem::unauthenticated("x-trigger-branch header required for preview env"),
        ),
        // `default` means the root only for DEVELOPMENT; for PREVIEW it is a branch name.
        (EnvType::Development, Some("default")) => Ok(root.clone()),
        (_, Some(name)) if branchable => match branch_child(auth, root, name).await? {
            Some(child) => Ok(child),
            None => Err(Problem::unauthenticated("No matching branch env")),
        },
        _ => Ok(root.clone()),
    }
}

/// The non-archived child `name` of `root`, carrying the root's project and owner.
pub async fn branch_child(
    auth: &Auth,
    root: &EnvironmentAuth,
    name: &str,
) -> Result<Option<Arc<EnvironmentAuth>>> {
    let parent_id = &root.environment.id;
    match auth.cache.branch(parent_id, name) {
        Cached::Hit(env) => return Ok(Some(env)),
        Cached::Absent => return Ok(None),
        Cached::Miss => {}
    }
    let generation = auth.cache.generation();
    let child = auth
        .store
        .find_branch_child(parent_id, name)
        .await
        .map_err(Problem::from)?;
    let child = child.map(|environment| {
        Arc::new(EnvironmentAuth {
            environment,
            ..root.clone()
        })
    });
    auth.cache
        .insert_branch(generation, parent_id, name, child.clone());
    Ok(child)
}

/// Opens a sealed key, or fails with an opaque 500 (the master key does not match).
pub fn open_key(auth: &Auth, sealed: &str) -> Result<SecretString> {
    auth.vault.open_secret(sealed).map_err(Problem::internal)
}
