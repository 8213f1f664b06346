//! What a user may do where: resolving the project and environment a user credential names
//! (a member reaches every environment of the org's projects, and their own development
//! environment only), and the user's effective ability: their role, intersected with the
//! token's cap for a user-actor token.

use taskgate_core::branch::sanitize_branch;
use taskgate_core::env::EnvType;
use taskgate_core::role::Role;
use taskgate_core::scope::{Ability, Resource};
use taskgate_store::{Environment, EnvironmentAuth, ProjectAccess};

use taskgate_auth::UserPrincipal;
use taskgate_core::Problem;

use crate::{Result, UseCases};

/// The effective ability of `principal` with `role`, as the server's policy decides.
pub fn effective_ability(uc: &UseCases, principal: &UserPrincipal, role: Role) -> Ability {
    uc.auth.policy.ability(principal, role)
}

/// 403 `Unauthorized` (route-builder body) unless the principal may `action` on `resource`.
pub fn require(
    uc: &UseCases,
    principal: &UserPrincipal,
    role: Role,
    action: &str,
    resource: Resource,
) -> Result<()> {
    if uc.auth.policy.can(principal, role, action, &[resource]) {
        Ok(())
    } else {
        Err(Problem::scope_denied())
    }
}

/// The environment type named by a URL segment (`dev`, `staging`, `prod`, `preview`).
pub fn url_env(env: &str) -> Result<EnvType> {
    EnvType::from_url_env(env).ok_or_else(|| {
        Problem::invalid("Invalid Params").with(
            "detail",
            "The environment must be one of dev, staging, prod or preview",
        )
    })
}

/// A project the user is a member of, by external ref.
pub async fn project_for_user(
    uc: &UseCases,
    principal: &UserPrincipal,
    project_ref: &str,
) -> Result<ProjectAccess> {
    uc.store
        .find_project_access(&principal.user.id, project_ref)
        .await?
        .ok_or_else(|| Problem::not_found("Project not found"))
}

/// Resolves `{projectRef}/{env}` plus an optional `x-trigger-branch` for a user:
/// DEVELOPMENT means the caller's own dev environment; a branch pivots to the child.
pub async fn environment_for_user(
    uc: &UseCases,
    principal: &UserPrincipal,
    project_ref: &str,
    env: &str,
    branch_header: Option<&str>,
) -> Result<(ProjectAccess, EnvironmentAuth)> {
    let env_type = url_env(env)?;
    let access = project_for_user(uc, principal, project_ref).await?;
    let member = (env_type == EnvType::Development).then_some(access.member_id.as_str());
    let root = uc
        .store
        .find_root_environment(&access.project.id, env_type, member)
        .await?
        .ok_or_else(|| Problem::not_found("Environment not found"))?;
    let branch = sanitize_branch(branch_header)
        .filter(|b| !(env_type == EnvType::Development && b == "default"));
    let environment: Environment = match branch {
        None => root,
        Some(name) => uc
            .store
            .find_branch_child(&root.id, &name)
            .await?
            .ok_or_else(|| Problem::not_found("Branch not found"))?,
    };
    let auth = EnvironmentAuth {
        environment,
        project_ref: access.project.external_ref.clone(),
        project_name: access.project.name.clone(),
        project_slug: access.project.slug.clone(),
        project_deleted: false,
        organization_slug: access.organization.slug.clone(),
        organization_title: access.organization.title.clone(),
        member_user_id: member.map(|_| principal.user.id.clone()),
    };
    Ok((access, auth))
}

/// The sealed current key clients authenticate with for `env`: the parent's for a branch.
pub async fn client_key_sealed(uc: &UseCases, env: &Environment) -> Result<String> {
    match &env.parent_environment_id {
        None => Ok(env.api_key_sealed.clone()),
        Some(parent) => Ok(uc
            .store
            .get_environment_auth(parent)
            .await?
            .ok_or_else(|| Problem::not_found("Environment not found"))?
            .environment
            .api_key_sealed),
    }
}

/// Key access on an environment tier, worded as upstream's `authorizePatEnvironmentAccess`.
pub fn require_key_access(
    uc: &UseCases,
    principal: &UserPrincipal,
    role: Role,
    action: &str,
    env_type: EnvType,
) -> Result<()> {
    let resource = taskgate_core::role::api_key_resource(env_type);
    if uc.auth.policy.can(principal, role, action, &[resource]) {
        Ok(())
    } else {
        Err(Problem::denied(
            "You don't have permission to access this environment's API keys.",
        ))
    }
}
