//! The storage traits, one per aggregate, and [`Store`], the sum of them that the server holds
//! as `Arc<dyn Store>`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use taskgate_core::env::EnvType;
use taskgate_core::ratelimit::LimitConfig;
use taskgate_core::role::Role;
use tokio::sync::broadcast;

use crate::alerts::AlertStore;
use crate::deploys::DeployStore;
use crate::engine::EngineStore;
use crate::error::StoreResult;
use crate::errors::ErrorStore;
use crate::events::{ChangeEvent, ChangeHook};
use crate::model::*;
use crate::packets::PacketStore;
use crate::queues::QueueStore;
use crate::runs::RunStore;
use crate::schedules::ScheduleStore;
use crate::sessions::SessionStore;
use crate::waits::WaitStore;

/// Users and first-run bootstrap.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user; `Conflict{"users.email"}` when the email is taken.
    async fn create_user(
        &self,
        user: NewUser,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<User>;
    async fn get_user(&self, id: &str) -> StoreResult<User>;
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Every user, oldest first.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Sets or clears a user's administrator flag, audited; `NotFound` for an unknown user.
    /// Sessions an administrator started end when the flag is cleared.
    async fn set_user_admin(
        &self,
        user_id: &str,
        admin: bool,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<User>;
    /// On an empty database only: creates the administrator and its first personal access
    /// token in one transaction. Returns `None` (and changes nothing) when any user exists.
    async fn bootstrap_admin(
        &self,
        admin: NewUser,
        token: NewPersonalAccessToken,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(User, PersonalAccessToken)>>;
}

/// Personal access tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// `token.user_id` must exist (`NotFound` otherwise).
    async fn create_pat(
        &self,
        token: NewPersonalAccessToken,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<PersonalAccessToken>;
    /// A live (not revoked) token by the hash of its plaintext, with its user.
    async fn find_live_pat_by_hash(
        &self,
        hashed_token: &str,
    ) -> StoreResult<Option<(PersonalAccessToken, User)>>;
    async fn list_pats(&self, user_id: &str) -> StoreResult<Vec<PersonalAccessToken>>;
    /// Revokes one of the user's tokens; `NotFound` for another user's or an unknown id.
    async fn revoke_pat(
        &self,
        user_id: &str,
        pat_id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<PersonalAccessToken>;
    /// Ids of every revoked token (small; loaded once into the revocation cache).
    async fn revoked_pat_ids(&self) -> StoreResult<Vec<String>>;
    /// Sets `last_accessed_at = now` unless it was set less than `throttle` ago.
    async fn touch_pat(
        &self,
        pat_id: &str,
        now: DateTime<Utc>,
        throttle: chrono::Duration,
    ) -> StoreResult<()>;
}

/// Organizations and their members.
#[async_trait]
pub trait OrgStore: Send + Sync {
    /// Creates an organization with `owner_user_id` as its owner; `Conflict{"organizations.slug"}`.
    async fn create_org(
        &self,
        title: &str,
        slug: &str,
        owner_user_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Organization>;
    async fn list_orgs_for_user(&self, user_id: &str) -> StoreResult<Vec<OrgMembership>>;
    /// Every live organization, oldest first (for administrators).
    async fn list_organizations(&self) -> StoreResult<Vec<Organization>>;
    /// A live organization's API rate limit (`None`: the server's default); `NotFound` for an
    /// unknown or deleted organization.
    async fn org_rate_limit(&self, organization_id: &str) -> StoreResult<Option<LimitConfig>>;
    /// Sets (`Some`) or clears an organization's API rate limit, audited with the old and new
    /// configuration, and tells every node. `NotFound` as [`OrgStore::org_rate_limit`].
    async fn set_org_rate_limit(
        &self,
        organization_id: &str,
        limit: Option<&LimitConfig>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The organization named by id or slug, if `user_id` is a member.
    async fn find_membership(
        &self,
        user_id: &str,
        org_id_or_slug: &str,
    ) -> StoreResult<Option<OrgMembership>>;
    /// Adds a member and creates their DEVELOPMENT environment in every live project, in one
    /// transaction. `Conflict{"org_members.user"}` if already a member.
    async fn add_member(
        &self,
        organization_id: &str,
        user_id: &str,
        role: Role,
        minter: &dyn KeyMinter,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Member>;
    async fn list_members(&self, organization_id: &str) -> StoreResult<Vec<Member>>;
    /// Changes a member's role, audited. `NotFound` for a member of another organization;
    /// `Conflict{"last_owner"}` when it would leave the organization without an owner.
    async fn set_member_role(
        &self,
        organization_id: &str,
        member_id: &str,
        role: Role,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Member>;
    /// Removes a member, audited, with their development environments (and everything in
    /// them), whose keys stop working at once on every node. `NotFound` and
    /// `Conflict{"last_owner"}` as [`OrgStore::set_member_role`].
    async fn remove_member(
        &self,
        organization_id: &str,
        member_id: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Member>;
    /// Soft-deletes an organization: it, its projects and their keys disappear from every lookup.
    async fn soft_delete_org(&self, organization_id: &str, now: DateTime<Utc>) -> StoreResult<()>;
}

/// Projects and their environments.
#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Creates a project with its staging, production and preview environments and a
    /// development environment for every member, in one transaction.
    async fn create_project(
        &self,
        organization_id: &str,
        name: &str,
        slug: &str,
        external_ref: &str,
        minter: &dyn KeyMinter,
        now: DateTime<Utc>,
    ) -> StoreResult<Project>;
    async fn list_projects(&self, organization_id: &str) -> StoreResult<Vec<Project>>;
    /// A live project by external ref, if `user_id` is a member of its organization.
    async fn find_project_access(
        &self,
        user_id: &str,
        external_ref: &str,
    ) -> StoreResult<Option<ProjectAccess>>;
    async fn soft_delete_project(&self, project_id: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// A root environment of a project by type; for DEVELOPMENT, the one of `member_id`.
    async fn find_root_environment(
        &self,
        project_id: &str,
        env_type: EnvType,
        member_id: Option<&str>,
    ) -> StoreResult<Option<Environment>>;
    /// Creates (or returns the existing, un-archiving it) branch child of a branchable root.
    async fn upsert_branch(
        &self,
        parent_environment_id: &str,
        branch_name: &str,
        minter: &dyn KeyMinter,
        now: DateTime<Utc>,
    ) -> StoreResult<Environment>;
    async fn archive_branch(&self, environment_id: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// The branches of a branchable root that are not archived, oldest first (by name within
    /// the same instant).
    async fn list_branches(&self, parent_environment_id: &str) -> StoreResult<Vec<Environment>>;
}

/// Environment keys: lookup, rotation and grace windows.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The SHA-256 (lowercase hex) of every key that authenticates at `now` within `scope`:
    /// environments' current keys and revoked keys still in their grace window. What the
    /// server's filter of live keys is built from.
    async fn live_key_hashes(
        &self,
        scope: KeyHashScope<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>>;
    /// Two-step lookup by key hash: the current key first; only on a miss, revoked keys whose
    /// `expires_at` is strictly after `now`. The environment always carries its current key.
    async fn find_env_by_key_hash(
        &self,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<KeyMatch>>;
    async fn get_environment_auth(
        &self,
        environment_id: &str,
    ) -> StoreResult<Option<EnvironmentAuth>>;
    /// The non-archived branch child of `parent_environment_id` named `branch_name`.
    async fn find_branch_child(
        &self,
        parent_environment_id: &str,
        branch_name: &str,
    ) -> StoreResult<Option<Environment>>;
    /// Archives the current key as revoked (expiring at `grace_expires_at`) and installs `keys`,
    /// in one transaction, with an audit record. Concurrent rotations serialize: every key that
    /// was ever current ends up either current or revoked with its own expiry.
    async fn rotate_api_key(
        &self,
        environment_id: &str,
        keys: EnvKeys,
        grace_expires_at: DateTime<Utc>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Rotation>;
    /// Revoked keys of an environment, newest first, expired ones included.
    async fn list_revoked_keys(&self, environment_id: &str) -> StoreResult<Vec<RevokedApiKey>>;
    /// Unexpired revoked keys of an environment (for JWT fallback verification).
    async fn live_revoked_keys(
        &self,
        environment_id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RevokedApiKey>>;
    async fn get_revoked_key(&self, id: &str) -> StoreResult<RevokedApiKey>;
    /// Moves a revoked key's expiry (ending, extending or re-opening its grace), audited.
    async fn set_revoked_key_expiry(
        &self,
        id: &str,
        expires_at: DateTime<Utc>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<GraceChange>;
    /// Adds usage counted in memory since the last flush.
    async fn record_revoked_key_usage(&self, usage: &[RevokedKeyUsage]) -> StoreResult<()>;
}

/// The append-only audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn list_audit_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;
}

/// Everything a taskgate server needs from its database.
#[async_trait]
pub trait Store:
    UserStore
    + TokenStore
    + OrgStore
    + ProjectStore
    + KeyStore
    + AuditStore
    + RunStore
    + EngineStore
    + ErrorStore
    + SessionStore
    + WaitStore
    + DeployStore
    + ScheduleStore
    + PacketStore
    + QueueStore
    + AlertStore
    + Send
    + Sync
{
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// Succeeds when the primary database answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;
    /// Change events from this node and, on PostgreSQL, from every other node.
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent>;
    /// Registers a hook called synchronously with every change event: for a change made
    /// through this store, before the method that made it returns (so this node's caches
    /// never serve the old state after a response); for another node's, when it arrives.
    fn on_change(&self, hook: ChangeHook);
    /// Sets the `taskgate_db_pool_connections` gauges (idle and in use, per pool).
    fn report_pool_metrics(&self);
    /// Closes pools and listeners.
    async fn close(&self);
}
