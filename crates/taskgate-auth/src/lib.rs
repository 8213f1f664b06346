//! Who is calling, as whom, and how often: credentials resolved to principals before a
//! handler runs, the caches that make that cost no query in steady state, the policy that
//! decides what a user may do, and the API's rate-limit buckets.
//!
//! - environment credentials (secret keys, public JWTs) become an [`EnvPrincipal`]
//!   ([`env_key`], [`jwt`]); user credentials (personal access tokens, user-actor tokens) a
//!   [`UserPrincipal`] ([`user`]);
//! - [`cache`] and [`filter`]: the credential caches and the filter of live keys, kept
//!   current by the store's change events;
//! - [`policy`]: what a member with a role (and a token's cap) may do;
//! - [`ratelimit`]: the buckets requests are counted in.
//!
//! Refusals are [`Problem`]s in upstream's words; the server's extractors say which
//! credentials each route accepts and answer them.

pub mod cache;
pub mod env_key;
pub mod filter;
pub mod jwt;
pub mod policy;
pub mod ratelimit;
pub mod user;

use std::sync::Arc;

use secrecy::{SecretBox, SecretString};
use serde_json::Value;
use taskgate_core::scope::{Ability, Resource};
use taskgate_core::time::Clock;
use taskgate_core::uat::UatClaims;
use taskgate_core::vault::KeyVault;
use taskgate_core::Problem;
use taskgate_store::{EnvironmentAuth, Store, User};

use self::cache::{AuthCache, GraceMatch};
use self::filter::KeyFilter;
use self::policy::AccessPolicy;

/// The result of authenticating: a principal, or upstream's refusal.
pub type Result<T, E = Problem> = std::result::Result<T, E>;

/// What authenticating needs: the store, the clock, the secrets, the caches and the policy.
#[derive(Clone)]
pub struct Auth {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub vault: Arc<KeyVault>,
    /// Signs user-actor tokens.
    pub session_secret: Arc<SecretBox<Vec<u8>>>,
    pub cache: Arc<AuthCache>,
    /// Every live secret key, so that one never issued is refused without a query.
    pub key_filter: Arc<KeyFilter>,
    /// Decides what users may do; [`policy::RolePolicy`] unless replaced.
    pub policy: Arc<dyn AccessPolicy>,
    /// Longest lifetime of a JWT accepted, in seconds.
    pub max_jwt_ttl_seconds: i64,
}

impl Auth {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// [`Self::now`] in milliseconds since the Unix epoch, without building a date.
    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    /// The same, with another authorization policy (an operator's own).
    pub fn with_policy(&self, policy: Arc<dyn AccessPolicy>) -> Auth {
        Auth {
            policy,
            ..self.clone()
        }
    }
}

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

    /// Upstream's authorization refusal unless [`Self::can`].
    pub fn authorize(&self, action: &str, resources: &[Resource]) -> Result<(), Problem> {
        if self.can(action, resources) {
            Ok(())
        } else {
            Err(Problem::scope_denied())
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
