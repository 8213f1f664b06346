//! taskgate's wire types: request and response bodies of the management and key routes, with
//! their OpenAPI schemas. Field names follow trigger.dev's (camelCase) where a route is
//! compatible with it; taskgate's additions are marked in their docs.

pub mod alerts;
pub mod deployments;
pub mod engine;
pub mod envvars;
pub mod errors;
pub mod login;
pub mod packets;
pub mod queues;
pub mod ratelimit;
pub mod realtime;
pub mod runs;
pub mod schedules;
pub mod trace;
pub mod waitpoints;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The error body of every route: `{"error": "…"}`, with upstream's exact wording on
/// compatible routes, plus a stable `code` where it helps a client decide.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// `PATCH /admin/api/v1/users/{userId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetUserAdminRequest {
    pub admin: bool,
}

/// `POST /admin/api/v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub admin: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserResponse {
    pub id: String,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/personal-access-tokens` and the admin equivalent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
}

/// A newly created personal access token; `token` is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTokenResponse {
    pub id: String,
    pub token: String,
    pub obfuscated_token: String,
}

/// A personal access token as listed (never the plaintext).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub id: String,
    pub name: String,
    pub obfuscated_token: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_accessed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenListResponse {
    pub tokens: Vec<TokenResponse>,
}

/// `POST /api/v1/orgs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgRequest {
    pub title: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgResponse {
    pub id: String,
    pub title: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
}

/// `PATCH /api/v1/orgs/{orgParam}/members/{memberId}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMemberRoleRequest {
    /// `owner`, `admin`, `developer` or `viewer`.
    pub role: String,
}

/// `POST /api/v1/orgs/{orgParam}/members`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    pub email: String,
    /// `owner`, `admin`, `developer` or `viewer`.
    pub role: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberResponse {
    pub id: String,
    pub user_id: String,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/orgs/{orgParam}/projects`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectRequest {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectResponse {
    pub id: String,
    /// `proj_` + 20 characters: what clients put in URLs and `trigger.config`.
    pub external_ref: String,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub organization: OrgResponse,
}

/// One entry of `GET /api/v1/projects/runtimes`: a project's production environment and the
/// runtime of its current (promoted) deployment, `null` when it has none.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectRuntimeResponse {
    pub organization: RuntimeOrganization,
    pub project: RuntimeProject,
    pub environment: RuntimeEnvironment,
    pub deployment: Option<RuntimeDeployment>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeOrganization {
    pub title: String,
    pub slug: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeProject {
    pub name: String,
    pub slug: String,
    pub external_ref: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeEnvironment {
    pub slug: String,
}

/// A deployment's runtime (upstream's shape; taskgate has none to report).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDeployment {
    pub runtime: Option<String>,
    pub runtime_version: Option<String>,
    pub node_major: Option<u32>,
    pub deployed_at: Option<DateTime<Utc>>,
    pub short_code: String,
}

/// `GET /api/v1/projects/{projectRef}/{env}` (upstream shape).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentKeyResponse {
    pub api_key: String,
    pub name: String,
    pub api_url: String,
    pub project_id: String,
}

/// `POST /api/v1/projects/{projectRef}/{env}/regenerate-api-key`: upstream's `apiKey`, plus
/// taskgate's `revokedApiKey` naming the grace row of the key just replaced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegenerateApiKeyResponse {
    pub api_key: String,
    pub revoked_api_key: RevokedKeyRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokedKeyRef {
    pub id: String,
    pub expires_at: DateTime<Utc>,
}

/// A revoked key in its grace window, as an operator sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokedKeyResponse {
    pub id: String,
    pub last_four: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Whether the key is still accepted now.
    pub active: bool,
    /// Requests authenticated with this key since it was revoked (flushed every few seconds).
    pub use_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokedKeyListResponse {
    pub revoked_api_keys: Vec<RevokedKeyResponse>,
}

/// `POST /admin/api/v1/revoked-api-keys/{id}` response (upstream shape).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpdateRevokedKeyResponse {
    pub success: bool,
    #[serde(rename = "revokedApiKey")]
    pub revoked_api_key: UpdatedRevokedKey,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatedRevokedKey {
    pub id: String,
    pub runtime_environment_id: String,
    /// ISO-8601 with milliseconds and `Z`.
    pub expires_at: String,
}

/// One audit record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventResponse {
    pub id: String,
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    pub credential_kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_expires_at: Option<DateTime<Utc>>,
    /// What changed, for events that carry more than an expiry (a rate limit's `old` and
    /// `new` configuration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEventListResponse {
    pub data: Vec<AuditEventResponse>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/projects/{projectRef}/branches` (taskgate's own; upstream creates branches
/// from its deploy flow).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpsertBranchRequest {
    /// `preview` or `development` (`dev` is accepted too).
    pub env: String,
    pub branch: String,
    /// The CLI's git metadata for the branch; accepted, not kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub git: Option<serde_json::Value>,
}

/// `POST /api/v1/projects/{projectRef}/branches/archive`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveBranchRequest {
    /// `preview` (the default) or `development`: whose branch it is.
    #[serde(default)]
    pub env: Option<String>,
    pub branch: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveBranchResponse {
    pub success: bool,
    pub branch: ArchivedBranch,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedBranch {
    pub id: String,
    pub branch_name: String,
}

/// `GET /api/v1/projects/{projectRef}/branches`: the preview environment's branches.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BranchListResponse {
    pub branches: Vec<BranchListItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BranchListItem {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// taskgate keeps no edit time for a branch: its creation time.
    pub updated_at: DateTime<Utc>,
    /// taskgate does not pause environments: always `false`.
    pub is_paused: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BranchResponse {
    pub id: String,
    pub slug: String,
    pub branch_name: String,
    pub parent_environment_id: String,
}

/// `GET /api/v2/whoami` (upstream shape; `project` only with a known `projectRef`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmIResponse {
    pub user_id: String,
    pub email: String,
    pub dashboard_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<WhoAmIProject>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmIProject {
    pub name: String,
    pub url: String,
    pub org_title: String,
}

/// `GET /api/v1/auth/credential` (taskgate's addition): what a secret key or public JWT
/// resolves to.
// Borrowed from the principal, so answering this hot route copies no strings.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialDescription<'a> {
    /// The environment the credential acts in (the branch child, when a branch was resolved).
    pub environment_id: &'a str,
    /// `DEVELOPMENT`, `STAGING`, `PRODUCTION` or `PREVIEW`.
    pub environment_type: &'a str,
    pub project_ref: &'a str,
    /// `secretKey` or `publicJwt`.
    pub credential: &'a str,
    /// The revoked key the credential matched through (a grace-window key, or a JWT signed
    /// with one); absent for the current key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub grace_key_id: Option<&'a str>,
    /// The user the request is attributed to: a JWT's `act.sub`, or the owner of a dev key.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub acting_user_id: Option<&'a str>,
}

/// `{"token": "…"}`, the answer of the JWT-minting routes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenBody {
    pub token: String,
}

/// `POST /api/v1/auth/user-actor-token`: a delegated user-actor token (`tr_uat_…`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserActorTokenResponse {
    pub token: String,
    /// Its lifetime from now.
    pub expires_in_seconds: i64,
}

/// `POST /api/v1/auth/jwt/claims`: the claims the official SDK self-signs a public token with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JwtClaimsResponse {
    /// The environment's id.
    pub sub: String,
    /// Always true: a public token.
    #[serde(rename = "pub")]
    pub public: bool,
}

/// `GET /healthz`, `GET /readyz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    pub status: String,
}
