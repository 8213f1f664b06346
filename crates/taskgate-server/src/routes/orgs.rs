//! Organizations and their members.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use taskgate_api::*;
use taskgate_core::role::Role;
use taskgate_core::scope::Resource;
use taskgate_store::StoreError;

use taskgate_usecases::orgs::{add, change_member, membership};
use taskgate_usecases::text::{required_name, slugify};

use super::org_response;
use crate::auth::extract::UserAuth;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use taskgate_usecases::access::require;

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
        &state.usecases,
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
    let membership = membership(&state.usecases, &user.user.id, &org_param).await?;
    require(
        &state.usecases,
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
    let member = add(&state.usecases, &user, &org_param, &body.email, role).await?;
    Ok((StatusCode::CREATED, Json(member_response(&member))))
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
    let member = change_member(&state.usecases, &user, &org_param, &member_id, Some(role)).await?;
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
    let member = change_member(&state.usecases, &user, &org_param, &member_id, None).await?;
    Ok(Json(member_response(&member)))
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
    let membership = membership(&state.usecases, &user.user.id, &org_param).await?;
    if membership.role != Role::Owner {
        return Err(
            ApiError::forbidden("Only an owner can delete an organization")
                .with("code", "owner_required"),
        );
    }
    require(
        &state.usecases,
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
