//! The HTTP routes, one module per resource. Handlers extract and authorize, call one store use
//! case and map the result to a wire type from `taskgate-api`.

pub mod admin;
pub mod alerts;
pub mod auth_tokens;
pub mod cli_login;
pub mod deployments;
pub mod engine;
pub mod envvars;
pub mod errors;
pub mod health;
pub mod keys;
pub mod orgs;
pub mod otel;
pub mod packets;
pub mod projects;
pub mod queues;
pub mod rate_limits;
pub mod runs;
pub mod schedules;
pub mod tokens;
pub mod unserved;
pub mod user_actor;
pub mod waitpoints;
pub mod whoami;
pub mod workers;

use taskgate_api::*;
use taskgate_store as store;

pub(crate) fn org_response(o: &store::Organization) -> OrgResponse {
    OrgResponse {
        id: o.id.clone(),
        title: o.title.clone(),
        slug: o.slug.clone(),
        created_at: o.created_at,
    }
}

pub(crate) fn project_response(p: &store::Project, o: &store::Organization) -> ProjectResponse {
    ProjectResponse {
        id: p.id.clone(),
        external_ref: p.external_ref.clone(),
        name: p.name.clone(),
        slug: p.slug.clone(),
        created_at: p.created_at,
        organization: org_response(o),
    }
}

pub(crate) fn user_response(u: &store::User) -> UserResponse {
    UserResponse {
        id: u.id.clone(),
        email: u.email.clone(),
        name: u.name.clone(),
        admin: u.admin,
        created_at: u.created_at,
    }
}
