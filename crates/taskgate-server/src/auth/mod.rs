//! Authentication: who is calling, resolved from the `Authorization` header before a handler
//! runs. Environment credentials (secret keys, public JWTs) become an [`EnvPrincipal`]; user
//! credentials (personal access tokens, user-actor tokens) a [`UserPrincipal`]. Each route
//! picks the extractor that accepts exactly the credentials upstream accepts there, so the
//! error statuses and strings match upstream's.

pub mod access;
pub mod cache;
pub mod env_key;
pub mod extract;
pub mod filter;
pub mod jwt;
pub mod policy;
pub mod user;

use std::sync::Arc;

use secrecy::SecretString;
use serde_json::Value;
use taskgate_core::scope::{Ability, Resource};
use taskgate_core::uat::UatClaims;
use taskgate_store::{EnvironmentAuth, User};

use self::cache::GraceMatch;

use crate::error::{ApiError, ApiResult};

/// The user named by a JWT's `act` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActingUser {
    pub user_id: String,
    pub client: Option<String>,
}

/// What a public access token grants.
#[derive(Debug, Clone)]
pub struct JwtGrant {
    pub ability: Ability,
    pub one_time_use: bool,
    /// For a one-time-use token only: its one-time-use marker, the lowercase hex SHA-256 of the
    /// token's canonical signed part (`jwt::Decoded::one_time_marker`). Upstream hashes the
    /// presented string; the signed bytes cannot be varied by the client.
    pub one_time_marker: Option<String>,
    pub realtime: Option<Value>,
    pub actor: Option<ActingUser>,
    /// Set when the token was signed with a key in its grace window.
    pub grace_key_id: Option<String>,
}

/// How an environment principal authenticated.
#[derive(Debug, Clone)]
pub enum EnvCredential {
    /// A secret key: the current one, or a revoked one inside its grace window.
    SecretKey {
        grace: Option<GraceMatch>,
    },
    PublicJwt(JwtGrant),
}

/// A caller acting in one environment.
#[derive(Debug, Clone)]
pub struct EnvPrincipal {
    /// The environment acted in: the branch child when a branch was resolved. Shared with the
    /// auth cache, so authenticating copies no strings.
    pub env: Arc<EnvironmentAuth>,
    /// The canonical current key of the signing environment (the parent's, for a branch).
    pub signing_key: Arc<SecretString>,
    pub credential: EnvCredential,
}

impl EnvPrincipal {
    /// Secret keys pass every check (upstream's permissive ability); JWTs by their scopes.
    pub fn can(&self, action: &str, resources: &[Resource]) -> bool {
        match &self.credential {
            EnvCredential::SecretKey { .. } => true,
            EnvCredential::PublicJwt(grant) => grant.ability.can(action, resources),
        }
    }

    /// 403 with upstream's authorization body unless [`Self::can`].
    pub fn authorize(&self, action: &str, resources: &[Resource]) -> ApiResult<()> {
        if self.can(action, resources) {
            Ok(())
        } else {
            Err(ApiError::scope_denied())
        }
    }

    pub fn jwt(&self) -> Option<&JwtGrant> {
        match &self.credential {
            EnvCredential::PublicJwt(grant) => Some(grant),
            EnvCredential::SecretKey { .. } => None,
        }
    }

    /// The user a request is attributed to: a JWT's `act.sub`, or the owner of a dev key.
    pub fn acting_user_id(&self) -> Option<&str> {
        match &self.credential {
            EnvCredential::PublicJwt(grant) => grant.actor.as_ref().map(|a| a.user_id.as_str()),
            EnvCredential::SecretKey { .. } => self.env.member_user_id.as_deref(),
        }
    }
}

/// How a user principal authenticated.
#[derive(Debug, Clone)]
pub enum UserCredential {
    Pat {
        pat_id: String,
    },
    Uat {
        claims: UatClaims,
    },
    /// A signed-in dashboard session: the user's whole role, as with a PAT.
    Session {
        session_id: String,
    },
}

/// A user acting through a personal access token or a user-actor token.
#[derive(Debug, Clone)]
pub struct UserPrincipal {
    pub user: User,
    pub credential: UserCredential,
}

impl UserPrincipal {
    /// The personal access token behind the credential (a UAT's source token).
    pub fn pat_id(&self) -> Option<&str> {
        match &self.credential {
            UserCredential::Pat { pat_id } => Some(pat_id),
            UserCredential::Uat { claims } => claims.pat.as_deref(),
            UserCredential::Session { .. } => None,
        }
    }

    /// The audit actor of this principal.
    pub fn actor(&self) -> taskgate_store::Actor {
        let (kind, id) = match &self.credential {
            UserCredential::Pat { pat_id } => ("personal_access_token", Some(pat_id.clone())),
            UserCredential::Uat { claims } => ("user_actor_token", claims.pat.clone()),
            UserCredential::Session { session_id } => {
                ("dashboard_session", Some(session_id.clone()))
            }
        };
        taskgate_store::Actor {
            user_id: Some(self.user.id.clone()),
            credential_id: id,
            credential_kind: kind.into(),
        }
    }
}
