//! Authentication at the edge: the extractors that say which credentials each route accepts
//! and answer a refusal in upstream's words ([`extract`]). Resolving credentials, their
//! caches and the policy are [`taskgate_auth`]'s; what a user may do where is
//! [`taskgate_usecases::access`].

pub mod extract;

pub use taskgate_auth::{
    ActingUser, EnvCredential, EnvPrincipal, JwtGrant, UserCredential, UserPrincipal,
};
