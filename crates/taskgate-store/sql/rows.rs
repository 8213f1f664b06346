//! Row decoding shared by the use cases, and the column lists they select.
//!
//! Compiled into both backends (`#[path]` modules of `taskgate-store-sqlite` and
//! `taskgate-store-postgres`) against their `backend` module: see `README.md` beside this file.

use chrono::{DateTime, Utc};
use sqlx::Row;
use taskgate_core::env::EnvType;
use taskgate_core::ratelimit::LimitConfig;
use taskgate_core::role::Role;
use taskgate_core::time::from_millis;
use taskgate_store::*;

use crate::backend::*;
use crate::error::map_err;

pub(crate) fn ts(row: &DbRow, col: &str) -> StoreResult<DateTime<Utc>> {
    Ok(from_millis(row.try_get::<i64, _>(col).map_err(map_err)?))
}

pub(crate) fn ts_opt(row: &DbRow, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
    Ok(row
        .try_get::<Option<i64>, _>(col)
        .map_err(map_err)?
        .map(from_millis))
}

/// A text column, as a `String` or an identifier type.
pub(crate) fn s<T: From<String>>(row: &DbRow, col: &str) -> StoreResult<T> {
    row.try_get::<String, _>(col).map(T::from).map_err(map_err)
}

/// A nullable text column, as a `String` or an identifier type.
pub(crate) fn s_opt<T: From<String>>(row: &DbRow, col: &str) -> StoreResult<Option<T>> {
    row.try_get::<Option<String>, _>(col)
        .map(|v| v.map(T::from))
        .map_err(map_err)
}

pub(crate) const USER_COLS: &str = "u.id, u.email, u.name, u.admin, u.created_at";

pub(crate) fn user(row: &DbRow) -> StoreResult<User> {
    Ok(User {
        id: s(row, "id")?,
        email: s(row, "email")?,
        name: s_opt(row, "name")?,
        admin: row.try_get("admin").map_err(map_err)?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) const PAT_COLS: &str =
    "t.id AS pat_id, t.user_id, t.name AS pat_name, t.obfuscated_token, t.created_at AS pat_created_at, t.revoked_at, t.last_accessed_at";

pub(crate) fn pat(row: &DbRow) -> StoreResult<PersonalAccessToken> {
    Ok(PersonalAccessToken {
        id: s(row, "pat_id")?,
        user_id: s(row, "user_id")?,
        name: s(row, "pat_name")?,
        obfuscated_token: s(row, "obfuscated_token")?,
        created_at: ts(row, "pat_created_at")?,
        revoked_at: ts_opt(row, "revoked_at")?,
        last_accessed_at: ts_opt(row, "last_accessed_at")?,
    })
}

pub(crate) const ORG_COLS: &str =
    "o.id AS org_id, o.title AS org_title, o.slug AS org_slug, o.created_at AS org_created_at";

pub(crate) fn org(row: &DbRow) -> StoreResult<Organization> {
    Ok(Organization {
        id: s(row, "org_id")?,
        title: s(row, "org_title")?,
        slug: s(row, "org_slug")?,
        created_at: ts(row, "org_created_at")?,
    })
}

/// An organization's `api_rate_limit` column. A value this version cannot read (written by a
/// later one) is an error, not a silent fall back to the default.
pub(crate) fn rate_limit(row: &DbRow) -> StoreResult<Option<LimitConfig>> {
    s_opt::<String>(row, "api_rate_limit")?
        .map(|raw| {
            serde_json::from_str(&raw)
                .map_err(|e| StoreError::Other(format!("unreadable organization rate limit: {e}")))
        })
        .transpose()
}

pub(crate) fn role(row: &DbRow, col: &str) -> StoreResult<Role> {
    let raw: String = s(row, col)?;
    Role::parse(&raw).ok_or_else(|| StoreError::Other(format!("unknown role {raw:?} in database")))
}

pub(crate) const PROJECT_COLS: &str = "p.id AS project_id, p.organization_id AS project_org_id, p.name AS project_name, p.slug AS project_slug, p.external_ref, p.created_at AS project_created_at, p.deleted_at AS project_deleted_at";

pub(crate) fn project(row: &DbRow) -> StoreResult<Project> {
    Ok(Project {
        id: s(row, "project_id")?,
        organization_id: s(row, "project_org_id")?,
        name: s(row, "project_name")?,
        slug: s(row, "project_slug")?,
        external_ref: s(row, "external_ref")?,
        created_at: ts(row, "project_created_at")?,
        deleted_at: ts_opt(row, "project_deleted_at")?,
    })
}

pub(crate) const ENV_COLS: &str = "e.id AS env_id, e.project_id AS env_project_id, e.organization_id AS env_org_id, e.type AS env_type, e.slug AS env_slug, e.org_member_id, e.parent_environment_id, e.branch_name, e.archived_at, e.api_key_sealed, e.api_key_last_four, e.created_at AS env_created_at";

pub(crate) fn environment(row: &DbRow) -> StoreResult<Environment> {
    let raw_type: String = s(row, "env_type")?;
    Ok(Environment {
        id: s(row, "env_id")?,
        project_id: s(row, "env_project_id")?,
        organization_id: s(row, "env_org_id")?,
        env_type: EnvType::parse_db(&raw_type).ok_or_else(|| {
            StoreError::Other(format!("unknown environment type {raw_type:?} in database"))
        })?,
        slug: s(row, "env_slug")?,
        org_member_id: s_opt(row, "org_member_id")?,
        parent_environment_id: s_opt(row, "parent_environment_id")?,
        branch_name: s_opt(row, "branch_name")?,
        archived_at: ts_opt(row, "archived_at")?,
        api_key_sealed: s(row, "api_key_sealed")?,
        api_key_last_four: s(row, "api_key_last_four")?,
        created_at: ts(row, "env_created_at")?,
    })
}

/// The columns [`env_auth`] decodes. An environment counts as deleted when its project or its
/// organization is (soft-)deleted.
pub(crate) fn env_auth_columns() -> String {
    format!(
        "{ENV_COLS}, p.external_ref, p.name AS project_name, p.slug AS project_slug,
         COALESCE(p.deleted_at, o.deleted_at) AS project_deleted_at,
         o.slug AS org_slug, o.title AS org_title, m.user_id AS member_user_id"
    )
}

/// Selects everything [`env_auth`] decodes; append a `WHERE`.
pub(crate) fn env_auth_select() -> String {
    format!(
        "SELECT {} FROM runtime_environments e
         JOIN projects p ON p.id = e.project_id
         JOIN organizations o ON o.id = e.organization_id
         LEFT JOIN org_members m ON m.id = e.org_member_id",
        env_auth_columns()
    )
}

pub(crate) fn env_auth(row: &DbRow) -> StoreResult<EnvironmentAuth> {
    Ok(EnvironmentAuth {
        environment: environment(row)?,
        project_ref: s(row, "external_ref")?,
        project_name: s(row, "project_name")?,
        project_slug: s(row, "project_slug")?,
        project_deleted: ts_opt(row, "project_deleted_at")?.is_some(),
        organization_slug: s(row, "org_slug")?,
        organization_title: s(row, "org_title")?,
        member_user_id: s_opt(row, "member_user_id")?,
    })
}

pub(crate) const REVOKED_COLS: &str =
    "r.id, r.runtime_environment_id, r.api_key_sealed, r.last_four, r.expires_at, r.created_at, r.use_count, r.last_used_at";

pub(crate) fn revoked(row: &DbRow) -> StoreResult<RevokedApiKey> {
    Ok(RevokedApiKey {
        id: s(row, "id")?,
        runtime_environment_id: s(row, "runtime_environment_id")?,
        api_key_sealed: s(row, "api_key_sealed")?,
        last_four: s(row, "last_four")?,
        expires_at: ts(row, "expires_at")?,
        created_at: ts(row, "created_at")?,
        use_count: row.try_get("use_count").map_err(map_err)?,
        last_used_at: ts_opt(row, "last_used_at")?,
    })
}

pub(crate) fn audit_event(row: &DbRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        seq: row.try_get("seq").map_err(map_err)?,
        id: s(row, "id")?,
        occurred_at: ts(row, "occurred_at")?,
        action: s(row, "action")?,
        actor: Actor {
            user_id: s_opt(row, "actor_user_id")?,
            credential_id: s_opt(row, "credential_id")?,
            credential_kind: s(row, "credential_kind")?,
        },
        organization_id: s_opt(row, "organization_id")?,
        environment_id: s_opt(row, "environment_id")?,
        target_id: s_opt(row, "target_id")?,
        old_expires_at: ts_opt(row, "old_expires_at")?,
        new_expires_at: ts_opt(row, "new_expires_at")?,
        detail: s_opt(row, "detail")?,
    })
}
