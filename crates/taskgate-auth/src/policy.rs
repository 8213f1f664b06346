//! [`AccessPolicy`]: the one place that decides what a user may do in an organization.
//! [`RolePolicy`], the default, gives the four roles the permissions documented in
//! docs/auth.md; an operator can plug in another policy (`Auth::policy`) without touching
//! a route.

use taskgate_core::role::{self, Role};
use taskgate_core::scope::{Ability, Resource};
use taskgate_core::uat::{self, UatClaims, UatError};

use crate::{UserCredential, UserPrincipal};

/// The scopes a user-actor token without a cap is ceilinged by (upstream's
/// `CAPLESS_USER_ACTOR_SCOPES`).
pub const CAPLESS_SCOPES: &[&str] = &["read:all"];

/// Authentication of user-actor tokens and authorization of user principals.
pub trait AccessPolicy: Send + Sync {
    /// Verifies a `tr_uat_` token (signature, expiry, shape) and returns its claims.
    fn authenticate_user_actor(
        &self,
        token: &str,
        secret: &[u8],
        now_secs: i64,
    ) -> Result<UatClaims, UatError> {
        uat::verify_uat(token, secret, now_secs)
    }

    /// What a member with `role` may do.
    fn role_ability(&self, role: Role) -> Ability;

    /// What `principal` may do where it is a member with `role`: the role's ability, narrowed
    /// by a user-actor token's cap (capless: `read:all`). A cap never widens a role.
    fn ability(&self, principal: &UserPrincipal, role: Role) -> Ability {
        let by_role = self.role_ability(role);
        match &principal.credential {
            UserCredential::Pat { .. } | UserCredential::Session { .. } => by_role,
            UserCredential::Uat { claims } => {
                let cap: Vec<String> = match &claims.cap {
                    Some(cap) => cap.clone(),
                    None => CAPLESS_SCOPES.iter().map(|s| s.to_string()).collect(),
                };
                Ability::And(Box::new(by_role), Box::new(Ability::from_scopes(&cap)))
            }
        }
    }

    /// Whether `principal`, a member with `role`, may `action` any of `resources`.
    fn can(
        &self,
        principal: &UserPrincipal,
        role: Role,
        action: &str,
        resources: &[Resource],
    ) -> bool {
        self.ability(principal, role).can(action, resources)
    }
}

/// The built-in policy: taskgate's four roles.
#[derive(Debug, Default, Clone, Copy)]
pub struct RolePolicy;

impl AccessPolicy for RolePolicy {
    fn role_ability(&self, role: Role) -> Ability {
        role::role_ability(role)
    }
}
