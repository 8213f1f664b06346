//! Personal access tokens and user-actor tokens.

use secrecy::ExposeSecret;
use taskgate_core::hash::sha256_hex;
use taskgate_core::pat::PAT_PREFIX;
use taskgate_core::uat::UAT_PREFIX;

use taskgate_core::Problem;

use crate::cache::PatEntry;
use crate::Auth;
use crate::{UserCredential, UserPrincipal};

/// `last_accessed_at` is written at most this often per token (upstream: 5 minutes).
pub const PAT_TOUCH_THROTTLE: chrono::Duration = chrono::Duration::minutes(5);

/// Why a user credential was refused; each route words it as upstream does.
#[derive(Debug)]
pub enum UserAuthFailure {
    /// No token, or not of an accepted kind.
    Missing,
    /// Unknown, revoked, expired or badly signed.
    Invalid,
    /// The check needed the database and it is unreachable.
    Unavailable(Problem),
}

/// Authenticates a personal access token: hash lookup (cached), not revoked.
pub async fn authenticate_pat(auth: &Auth, token: &str) -> Result<UserPrincipal, UserAuthFailure> {
    if !token.starts_with(PAT_PREFIX) {
        return Err(UserAuthFailure::Missing);
    }
    let hash = sha256_hex(token);
    let entry = match auth.cache.pat(&hash) {
        Some(entry) => entry,
        None => {
            let generation = auth.cache.generation();
            match auth.store.find_live_pat_by_hash(&hash).await {
                Ok(Some((token, user))) => {
                    let entry = PatEntry { token, user };
                    auth.cache.insert_pat(generation, hash, entry.clone());
                    entry
                }
                Ok(None) => return Err(UserAuthFailure::Invalid),
                Err(e) => return Err(UserAuthFailure::Unavailable(e.into())),
            }
        }
    };
    if auth.cache.pat_revoked(&entry.token.id) {
        return Err(UserAuthFailure::Invalid);
    }
    touch(auth, &entry);
    Ok(UserPrincipal {
        user: entry.user,
        credential: UserCredential::Pat {
            pat_id: entry.token.id,
        },
    })
}

/// Records use of a token, at most every [`PAT_TOUCH_THROTTLE`], off the request path.
fn touch(auth: &Auth, entry: &PatEntry) {
    let now = auth.now();
    let stale = entry
        .token
        .last_accessed_at
        .is_none_or(|at| now - at >= PAT_TOUCH_THROTTLE);
    if !stale
        || !auth
            .cache
            .claim_touch(&entry.token.id, now, PAT_TOUCH_THROTTLE)
    {
        return;
    }
    let store = auth.store.clone();
    let id = entry.token.id.clone();
    tokio::spawn(async move {
        if let Err(e) = store.touch_pat(&id, now, PAT_TOUCH_THROTTLE).await {
            tracing::debug!(token.id = %id, error = %e, "could not record token use");
        }
    });
}

/// Authenticates a user-actor token: signature and expiry with the session secret, then the
/// source token's liveness from the revocation cache (no query per use), then the user.
pub async fn authenticate_uat(auth: &Auth, token: &str) -> Result<UserPrincipal, UserAuthFailure> {
    if !token.starts_with(UAT_PREFIX) {
        return Err(UserAuthFailure::Missing);
    }
    let claims = auth
        .policy
        .authenticate_user_actor(
            token,
            auth.session_secret.expose_secret(),
            auth.now().timestamp(),
        )
        .map_err(|_| UserAuthFailure::Invalid)?;
    if claims
        .pat
        .as_deref()
        .is_some_and(|pat| auth.cache.pat_revoked(pat))
    {
        return Err(UserAuthFailure::Invalid);
    }
    let user = match auth.cache.user(&claims.user_id) {
        Some(user) => user,
        None => {
            let generation = auth.cache.generation();
            match auth.store.get_user(&claims.user_id).await {
                Ok(user) => {
                    auth.cache.insert_user(generation, user.clone());
                    user
                }
                Err(taskgate_store::StoreError::NotFound) => return Err(UserAuthFailure::Invalid),
                Err(e) => return Err(UserAuthFailure::Unavailable(e.into())),
            }
        }
    };
    Ok(UserPrincipal {
        user,
        credential: UserCredential::Uat { claims },
    })
}
