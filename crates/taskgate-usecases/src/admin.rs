//! Platform administration: users, their administrator flag, grace windows.

use chrono::{DateTime, Utc};
use taskgate_api::CreateUserRequest;
use taskgate_auth::UserPrincipal;
use taskgate_core::Problem;
use taskgate_store::{GraceChange, NewUser, StoreError, StoreResult, User};

use crate::text::required_name;
use crate::{Result, UseCases};

/// Creates a user as `admin` (an administrator: the caller checks). The dashboard's admin
/// page goes through here.
pub async fn new_user(
    uc: &UseCases,
    admin: &UserPrincipal,
    body: CreateUserRequest,
) -> Result<User> {
    let email = body.email.trim().to_ascii_lowercase();
    if !valid_email(&email) {
        return Err(Problem::invalid_body("email must be a valid email address"));
    }
    let name = body
        .name
        .as_deref()
        .map(|n| required_name("name", n, 100))
        .transpose()?;
    let new = NewUser {
        email,
        name,
        admin: body.admin.unwrap_or(false),
    };
    match uc.store.create_user(new, &admin.actor(), uc.now()).await {
        Ok(user) => Ok(user),
        Err(StoreError::Conflict { .. }) => {
            Err(Problem::conflict("A user with this email already exists")
                .with("code", "email_taken"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Sets a user's administrator flag as `admin` (the caller checks). An administrator cannot
/// clear their own flag, so the server always keeps one.
pub async fn set_admin(
    uc: &UseCases,
    admin: &UserPrincipal,
    user_id: &str,
    flag: bool,
) -> Result<User> {
    if !flag && admin.user.id == user_id {
        return Err(Problem::invalid(
            "You cannot remove your own administrator flag: ask another administrator",
        ));
    }
    match uc
        .store
        .set_user_admin(user_id, flag, &admin.actor(), uc.now())
        .await
    {
        Ok(user) => {
            tracing::info!(user.id = %user_id, admin = flag, "administrator flag changed");
            Ok(user)
        }
        Err(StoreError::NotFound) => Err(Problem::not_found("User not found")),
        Err(e) => Err(e.into()),
    }
}

/// Sets when a revoked key's grace window ends, as `admin` (an administrator: the caller
/// checks). A time in the past ends it now, recorded as now so the key's history says when it
/// stopped working. The dashboard's "End now" and "Extend" go through here too.
pub async fn change_grace(
    uc: &UseCases,
    admin: &UserPrincipal,
    revoked_key_id: &str,
    expires_at: DateTime<Utc>,
) -> StoreResult<GraceChange> {
    let now = uc.now();
    let expires_at = expires_at.max(now);
    let change = uc
        .store
        .set_revoked_key_expiry(revoked_key_id, expires_at, &admin.actor(), now)
        .await?;
    tracing::info!(revoked_key.id = %revoked_key_id, env.id = %change.revoked.runtime_environment_id, "grace window changed");
    Ok(change)
}

/// A plausible email: one `@`, something on each side, a dot in the domain, no spaces.
pub fn valid_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && email.len() <= 254
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::valid_email;

    #[test]
    fn emails_are_checked() {
        assert!(valid_email("dev@example.com"));
        assert!(!valid_email("dev@localhost"));
        assert!(!valid_email("@example.com"));
        assert!(!valid_email("a b@example.com"));
    }
}
