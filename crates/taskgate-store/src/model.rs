//! Records the stores hold and return. Times are UTC; keys appear only as hashes and sealed
//! (encrypted) copies.

use chrono::{DateTime, Utc};
use taskgate_core::env::EnvType;
use taskgate_core::ids::{EnvironmentId, OrgId, ProjectId};
use taskgate_core::role::Role;

/// A person who can sign in and hold tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    /// Platform administrator: may use `/admin/api/*`.
    pub admin: bool,
    pub created_at: DateTime<Utc>,
}

/// Fields of a new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: Option<String>,
    pub admin: bool,
}

/// An organization; soft-deleted ones are invisible to every lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    pub title: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
}

/// A user's membership in an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// An organization together with the caller's role in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgMembership {
    pub organization: Organization,
    pub member_id: String,
    pub role: Role,
}

/// A project. `external_ref` (`proj_…`) is what clients use in URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub slug: String,
    pub external_ref: String,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A project with its organization and the caller's role in that organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectAccess {
    pub project: Project,
    pub organization: Organization,
    pub member_id: String,
    pub role: Role,
}

pub use taskgate_core::vault::{EnvKeys, KeyMaterial, KeyMinter};

/// A runtime environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: EnvironmentId,
    pub project_id: ProjectId,
    pub organization_id: OrgId,
    pub env_type: EnvType,
    pub slug: String,
    /// Set on DEVELOPMENT environments (one per member per project) and their branches.
    pub org_member_id: Option<String>,
    pub parent_environment_id: Option<EnvironmentId>,
    pub branch_name: Option<String>,
    pub archived_at: Option<DateTime<Utc>>,
    /// The current secret key, sealed.
    pub api_key_sealed: String,
    pub api_key_last_four: String,
    pub created_at: DateTime<Utc>,
}

/// Everything authentication needs about an environment, in one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentAuth {
    pub environment: Environment,
    pub project_ref: String,
    pub project_name: String,
    pub project_slug: String,
    pub project_deleted: bool,
    pub organization_slug: String,
    pub organization_title: String,
    /// The user who owns a DEVELOPMENT environment.
    pub member_user_id: Option<String>,
}

/// How a presented secret key matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMatchVia {
    /// The environment's current key.
    Current,
    /// A revoked key still inside its grace window.
    Revoked {
        revoked_key_id: String,
        expires_at: DateTime<Utc>,
    },
}

/// The answer to a key lookup: the environment (always carrying its current key) and how the
/// presented key matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMatch {
    pub env: EnvironmentAuth,
    pub via: KeyMatchVia,
}

/// A previously current secret key, still accepted until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedApiKey {
    pub id: String,
    pub runtime_environment_id: String,
    pub api_key_sealed: String,
    pub last_four: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// Requests authenticated with this key since it was revoked.
    pub use_count: i64,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Usage of revoked keys observed by a node since its last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedKeyUsage {
    pub revoked_key_id: String,
    pub uses: i64,
    pub last_used_at: DateTime<Utc>,
}

/// The result of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub environment: Environment,
    pub revoked: RevokedApiKey,
}

/// The result of changing a revoked key's grace window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraceChange {
    pub revoked: RevokedApiKey,
    pub previous_expires_at: DateTime<Utc>,
}

/// A personal access token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalAccessToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub obfuscated_token: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_accessed_at: Option<DateTime<Utc>>,
}

/// A new personal access token: the hash of the plaintext and its display form.
#[derive(Debug, Clone)]
pub struct NewPersonalAccessToken {
    pub user_id: String,
    pub name: String,
    pub hashed_token: String,
    pub obfuscated_token: String,
}

/// Who did something, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    /// The credential used, by id (a PAT id, a revoked key id, …), never the secret.
    pub credential_id: Option<String>,
    /// `personal_access_token`, `user_actor_token`, `api_key`, `system`.
    pub credential_kind: String,
}

/// One append-only audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Monotonic sequence number; also the paging cursor.
    pub seq: i64,
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    pub action: String,
    pub actor: Actor,
    pub organization_id: Option<String>,
    pub environment_id: Option<String>,
    pub target_id: Option<String>,
    pub old_expires_at: Option<DateTime<Utc>>,
    pub new_expires_at: Option<DateTime<Utc>>,
    /// What changed, as JSON, for events that carry more than an expiry.
    pub detail: Option<String>,
}

/// Which keys [`crate::KeyStore::live_key_hashes`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHashScope<'a> {
    All,
    /// The keys of an organization's environments.
    Organization(&'a str),
    /// The keys of an environment and of its branches.
    Environment(&'a str),
}

/// Filters for paging through the audit log, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub environment_id: Option<String>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Return events with `seq` strictly below this.
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// Audit action names.
pub mod audit_action {
    pub const API_KEY_ROTATED: &str = "api_key.rotated";
    pub const GRACE_CHANGED: &str = "revoked_api_key.grace_changed";
    pub const PAT_CREATED: &str = "personal_access_token.created";
    pub const PAT_REVOKED: &str = "personal_access_token.revoked";
    pub const USER_CREATED: &str = "user.created";
    pub const USER_ADMIN_CHANGED: &str = "user.admin_changed";
    pub const MEMBER_ADDED: &str = "member.added";
    pub const MEMBER_ROLE_CHANGED: &str = "member.role_changed";
    pub const MEMBER_REMOVED: &str = "member.removed";
    pub const ORG_RATE_LIMIT_CHANGED: &str = "organization.rate_limit_changed";
}
