//! The HTTP routes, one module per resource. Handlers extract and authorize, call one store use
//! case and map the result to a wire type from `taskgate-api`.

pub mod admin;
pub mod auth_tokens;
pub mod cli_login;
pub mod engine;
pub mod envvars;
pub mod errors;
pub mod health;
pub mod keys;
pub mod orgs;
pub mod otel;
pub mod projects;
pub mod rate_limits;
pub mod runs;
pub mod tokens;
pub mod unserved;
pub mod user_actor;
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

/// A URL slug: lowercase ASCII alphanumerics separated by single dashes, at most 48 long.
pub(crate) fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 48 {
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "untitled".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Trims a required name field and checks its length.
pub fn required_name(
    field: &str,
    value: &str,
    max: usize,
) -> Result<String, crate::error::ApiError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(taskgate_core::text::is_unsafe_char)
    {
        return Err(crate::error::ApiError::invalid_body(format!(
            "{field} must be 1 to {max} characters, without control characters or bidirectional overrides"
        )));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slugify("Acme, Inc."), "acme-inc");
        assert_eq!(slugify("  Ünïcode  !! "), "n-code");
        assert_eq!(slugify("!!!"), "untitled");
    }
}
