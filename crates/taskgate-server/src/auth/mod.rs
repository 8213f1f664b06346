//! Authentication at the edge: the extractors that say which credentials each route accepts
//! and answer a refusal in upstream's words ([`extract`]), and what a user may do where
//! ([`access`]). Resolving credentials, their caches and the policy are
//! [`taskgate_auth`]'s.

pub mod access;
pub mod extract;

pub use taskgate_auth::{
    ActingUser, EnvCredential, EnvPrincipal, JwtGrant, UserCredential, UserPrincipal,
};
