//! Organizations' members: who may add, change and remove whom.

use taskgate_auth::UserPrincipal;
use taskgate_core::role::{can_manage_member, Role};
use taskgate_core::scope::Resource;
use taskgate_core::Problem;
use taskgate_store::StoreError;

use crate::access::require;
use crate::{Result, UseCases};

/// Adds the existing user with `email` to `org_param` with `role`, as `user`, if their role
/// allows it. The dashboard's team page goes through here.
pub async fn add(
    uc: &UseCases,
    user: &UserPrincipal,
    org_param: &str,
    email: &str,
    role: Role,
) -> Result<taskgate_store::Member> {
    let membership = membership(uc, &user.user.id, org_param).await?;
    require(uc, user, membership.role, "write", Resource::new("members"))?;
    if !can_manage_member(membership.role, role, Some(role)) {
        return Err(Problem::denied("Unauthorized").with("code", "role_not_allowed"));
    }
    let target = uc
        .store
        .find_user_by_email(email.trim())
        .await?
        .ok_or_else(|| Problem::not_found("User not found"))?;
    let org_id = &membership.organization.id;
    match uc
        .store
        .add_member(
            org_id,
            &target.id,
            role,
            &*uc.auth.vault,
            &user.actor(),
            uc.now(),
        )
        .await
    {
        Ok(member) => Ok(member),
        Err(StoreError::Conflict { .. }) => Err(Problem::conflict(
            "User is already a member of this organization",
        )
        .with("code", "already_member")),
        Err(e) => Err(e.into()),
    }
}

/// Gives `member_id` of `org_param` the role `role`, or removes them (`None`), as `user`, if
/// their role allows it. The dashboard's team page goes through here.
pub async fn change_member(
    uc: &UseCases,
    user: &UserPrincipal,
    org_param: &str,
    member_id: &str,
    role: Option<Role>,
) -> Result<taskgate_store::Member> {
    let membership = membership(uc, &user.user.id, org_param).await?;
    require(uc, user, membership.role, "write", Resource::new("members"))?;
    let org_id = &membership.organization.id;
    let target = uc
        .store
        .list_members(org_id)
        .await?
        .into_iter()
        .find(|m| m.id == member_id)
        .ok_or_else(|| Problem::not_found("Member not found"))?;
    if !can_manage_member(membership.role, target.role, role) {
        return Err(Problem::denied("Unauthorized").with("code", "role_not_allowed"));
    }
    let now = uc.now();
    let changed = match role {
        Some(r) => {
            uc.store
                .set_member_role(org_id, member_id, r, &user.actor(), now)
                .await
        }
        None => {
            uc.store
                .remove_member(org_id, member_id, &user.actor(), now)
                .await
        }
    };
    match changed {
        Ok(m) => {
            tracing::info!(org.id = %org_id, member.id = %member_id, role = role.map(Role::as_str).unwrap_or("removed"), "membership changed");
            Ok(m)
        }
        Err(StoreError::Conflict { .. }) => Err(Problem::conflict(
            "An organization keeps at least one owner: make another member an owner first",
        )
        .with("code", "last_owner")),
        Err(StoreError::NotFound) => Err(Problem::not_found("Member not found")),
        Err(e) => Err(e.into()),
    }
}

/// The caller's membership of `org_param`. A non-member gets 403 `Unauthorized`, the same
/// answer as for an organization that does not exist, so neither leaks the other.
pub async fn membership(
    uc: &UseCases,
    user_id: &str,
    org_param: &str,
) -> Result<taskgate_store::OrgMembership> {
    uc.store
        .find_membership(user_id, org_param)
        .await?
        .ok_or_else(|| Problem::denied("Unauthorized"))
}
