//! Organizations and their members.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use taskgate_api::*;
use taskgate_core::role::{can_manage_member, Role};
use taskgate_core::scope::Resource;
use taskgate_store::StoreError;

use super::{org_response, required_name, slugify};
use crate::auth::access::require;
use crate::auth::extract::UserAuth;
use crate::auth::UserPrincipal;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;

/// Organizations the caller belongs to.
#[utoipa::path(get, path = "/api/v1/orgs", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])),
    responses((status = 200, body = Vec<OrgResponse>), (status = 401, body = ErrorBody)))]
pub async fn list_orgs(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
) -> ApiResult<Json<Vec<OrgResponse>>> {
    let orgs = state.store.list_orgs_for_user(&user.user.id).await?;
    Ok(Json(
        orgs.iter().map(|m| org_response(&m.organization)).collect(),
    ))
}

/// Creates an organization; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])), request_body = CreateOrgRequest,
    responses((status = 201, body = OrgResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_org(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    ApiJson(body): ApiJson<CreateOrgRequest>,
) -> ApiResult<(StatusCode, Json<OrgResponse>)> {
    // A user-actor token needs `manage organization` (upstream §5.7); a PAT does not.
    require(
        &state,
        &user,
        Role::Owner,
        "manage",
        Resource::new("organization"),
    )?;
    let title = required_name("title", &body.title, 100)?;
    let base = slugify(&title);
    let mut slug = base.clone();
    for _ in 0..5 {
        match state
            .store
            .create_org(&title, &slug, &user.user.id, state.now())
            .await
        {
            Ok(org) => return Ok((StatusCode::CREATED, Json(org_response(&org)))),
            Err(StoreError::Conflict { .. }) => {
                slug = format!("{base}-{}", &taskgate_core::ids::new_id()[1..7]);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "Could not choose a unique slug for this organization",
    ))
}

/// Members of an organization (any member may list them).
#[utoipa::path(get, path = "/api/v1/orgs/{orgParam}/members", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])),
    params(("orgParam" = String, Path, description = "organization id or slug")),
    responses((status = 200, body = Vec<MemberResponse>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_members(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path(org_param): Path<String>,
) -> ApiResult<Json<Vec<MemberResponse>>> {
    let membership = membership(&state, &user.user.id, &org_param).await?;
    require(
        &state,
        &user,
        membership.role,
        "read",
        Resource::new("members"),
    )?;
    let members = state
        .store
        .list_members(&membership.organization.id)
        .await?;
    Ok(Json(members.iter().map(member_response).collect()))
}

/// Adds an existing user to an organization with a role; they get a dev environment in every
/// project.
#[utoipa::path(post, path = "/api/v1/orgs/{orgParam}/members", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])), request_body = AddMemberRequest,
    params(("orgParam" = String, Path, description = "organization id or slug")),
    responses((status = 201, body = MemberResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_member(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path(org_param): Path<String>,
    ApiJson(body): ApiJson<AddMemberRequest>,
) -> ApiResult<(StatusCode, Json<MemberResponse>)> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::invalid_body("role must be one of owner, admin, developer, viewer")
    })?;
    let member = add(&state, &user, &org_param, &body.email, role).await?;
    Ok((StatusCode::CREATED, Json(member_response(&member))))
}

/// Adds the existing user with `email` to `org_param` with `role`, as `user`, if their role
/// allows it. The dashboard's team page goes through here.
pub async fn add(
    state: &AppState,
    user: &UserPrincipal,
    org_param: &str,
    email: &str,
    role: Role,
) -> ApiResult<taskgate_store::Member> {
    let membership = membership(state, &user.user.id, org_param).await?;
    require(
        state,
        user,
        membership.role,
        "write",
        Resource::new("members"),
    )?;
    if !can_manage_member(membership.role, role, Some(role)) {
        return Err(ApiError::forbidden("Unauthorized").with("code", "role_not_allowed"));
    }
    let target = state
        .store
        .find_user_by_email(email.trim())
        .await?
        .ok_or_else(|| ApiError::not_found("User not found"))?;
    let org_id = &membership.organization.id;
    match state
        .store
        .add_member(
            org_id,
            &target.id,
            role,
            &*state.vault,
            &user.actor(),
            state.now(),
        )
        .await
    {
        Ok(member) => Ok(member),
        Err(StoreError::Conflict { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "User is already a member of this organization",
        )
        .with("code", "already_member")),
        Err(e) => Err(e.into()),
    }
}

/// Changes a member's role, within what the caller's role may manage (an admin cannot make
/// or unmake owners); the last owner cannot step down.
#[utoipa::path(patch, path = "/api/v1/orgs/{orgParam}/members/{memberId}", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])), request_body = SetMemberRoleRequest,
    params(("orgParam" = String, Path, description = "organization id or slug"), ("memberId" = String, Path)),
    responses((status = 200, body = MemberResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_member_role(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path((org_param, member_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<SetMemberRoleRequest>,
) -> ApiResult<Json<MemberResponse>> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::invalid_body("role must be one of owner, admin, developer, viewer")
    })?;
    let member = change_member(&state, &user, &org_param, &member_id, Some(role)).await?;
    Ok(Json(member_response(&member)))
}

/// Removes a member with their development environments; the last owner cannot leave.
#[utoipa::path(delete, path = "/api/v1/orgs/{orgParam}/members/{memberId}", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])),
    params(("orgParam" = String, Path, description = "organization id or slug"), ("memberId" = String, Path)),
    responses((status = 200, body = MemberResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path((org_param, member_id)): Path<(String, String)>,
) -> ApiResult<Json<MemberResponse>> {
    let member = change_member(&state, &user, &org_param, &member_id, None).await?;
    Ok(Json(member_response(&member)))
}

/// Gives `member_id` of `org_param` the role `role`, or removes them (`None`), as `user`, if
/// their role allows it. The dashboard's team page goes through here.
pub async fn change_member(
    state: &AppState,
    user: &UserPrincipal,
    org_param: &str,
    member_id: &str,
    role: Option<Role>,
) -> ApiResult<taskgate_store::Member> {
    let membership = membership(state, &user.user.id, org_param).await?;
    require(
        state,
        user,
        membership.role,
        "write",
        Resource::new("members"),
    )?;
    let org_id = &membership.organization.id;
    let target = state
        .store
        .list_members(org_id)
        .await?
        .into_iter()
        .find(|m| m.id == member_id)
        .ok_or_else(|| ApiError::not_found("Member not found"))?;
    if !can_manage_member(membership.role, target.role, role) {
        return Err(ApiError::forbidden("Unauthorized").with("code", "role_not_allowed"));
    }
    let now = state.now();
    let changed = match role {
        Some(r) => {
            state
                .store
                .set_member_role(org_id, member_id, r, &user.actor(), now)
                .await
        }
        None => {
            state
                .store
                .remove_member(org_id, member_id, &user.actor(), now)
                .await
        }
    };
    match changed {
        Ok(m) => {
            tracing::info!(org.id = %org_id, member.id = %member_id, role = role.map(Role::as_str).unwrap_or("removed"), "membership changed");
            Ok(m)
        }
        Err(StoreError::Conflict { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "An organization keeps at least one owner: make another member an owner first",
        )
        .with("code", "last_owner")),
        Err(StoreError::NotFound) => Err(ApiError::not_found("Member not found")),
        Err(e) => Err(e.into()),
    }
}

/// The caller's membership of `org_param`. A non-member gets 403 `Unauthorized`, the same
/// answer as for an organization that does not exist, so neither leaks the other.
pub async fn membership(
    state: &AppState,
    user_id: &str,
    org_param: &str,
) -> ApiResult<taskgate_store::OrgMembership> {
    state
        .store
        .find_membership(user_id, org_param)
        .await?
        .ok_or_else(|| ApiError::forbidden("Unauthorized"))
}

pub fn member_response(m: &taskgate_store::Member) -> MemberResponse {
    MemberResponse {
        id: m.id.clone(),
        user_id: m.user_id.clone(),
        email: m.email.clone(),
        name: m.name.clone(),
        role: m.role.as_str().to_string(),
        created_at: m.created_at,
    }
}

/// Soft-deletes an organization (owners only): its projects' keys and tokens stop working at
/// once; its rows are kept.
#[utoipa::path(delete, path = "/api/v1/orgs/{orgParam}", tag = "tenancy", security(("personalAccessToken" = []), ("userActorToken" = [])),
    params(("orgParam" = String, Path, description = "organization id or slug")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn delete_org(
    State(state): State<AppState>,
    UserAuth(user): UserAuth,
    Path(org_param): Path<String>,
) -> ApiResult<StatusCode> {
    let membership = membership(&state, &user.user.id, &org_param).await?;
    if membership.role != Role::Owner {
        return Err(
            ApiError::forbidden("Only an owner can delete an organization")
                .with("code", "owner_required"),
        );
    }
    require(
        &state,
        &user,
        membership.role,
        "delete",
        Resource::new("organization"),
    )?;
    state
        .store
        .soft_delete_org(&membership.organization.id, state.now())
        .await?;
    tracing::info!(org.id = %membership.organization.id, "organization deleted");
    Ok(StatusCode::NO_CONTENT)
}
