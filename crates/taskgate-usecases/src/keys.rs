//! Rotating an environment's secret key with a grace window for the old one.

use chrono::Duration;
use secrecy::SecretString;
use taskgate_auth::UserPrincipal;
use taskgate_core::rotation::grace_expiry;
use taskgate_store::{EnvironmentAuth, Rotation};

use crate::access::{environment_for_user, require_key_access};
use crate::{Result, UseCases};

/// Rotates the secret key of `{project_ref}/{env}` for `user`, if their role lets them write
/// its keys: the new key's plaintext and the rotation (the old key's grace window: `grace`,
/// else the configured one), in one transaction. The API's `regenerate-api-key` and the
/// dashboard's "Regenerate" (which may choose the grace) both go through here.
pub async fn rotate(
    uc: &UseCases,
    user: &UserPrincipal,
    project_ref: &str,
    env: &str,
    grace: Option<Duration>,
) -> Result<(EnvironmentAuth, SecretString, Rotation)> {
    let (access, env) = environment_for_user(uc, user, project_ref, env, None).await?;
    require_key_access(uc, user, access.role, "write", env.environment.env_type)?;
    let now = uc.now();
    let (keys, plaintext) = uc.auth.vault.mint_with_plaintext(env.environment.env_type);
    let rotation = uc
        .store
        .rotate_api_key(
            &env.environment.id,
            keys,
            grace_expiry(now, grace.unwrap_or(uc.settings.grace)),
            &user.actor(),
            now,
        )
        .await?;
    tracing::info!(env.id = %env.environment.id, revoked_key.id = %rotation.revoked.id, "secret key rotated");
    Ok((env, plaintext, rotation))
}
