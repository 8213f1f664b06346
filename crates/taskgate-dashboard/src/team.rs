//! `/orgs/{org}/settings/team`: an organization's members and their roles; adding a user,
//! changing a role and removing a member, as the caller's role allows (through the API's own
//! `routes::orgs::{add, change_member}`, which enforce the same rules).

use std::collections::HashMap;

use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use maud::html;
use taskgate_core::role::{can_manage_member, Role};
use taskgate_server::state::AppState;
use taskgate_usecases::orgs::{add, change_member, membership};

use crate::layout::{page, send, time, PageError, PageResult};
use crate::session::{clearing_flash, redirect_with_flash, take_flash, SignedIn};

fn path(org: &str) -> String {
    format!("/orgs/{org}/settings/team")
}

/// `GET`.
pub async fn team_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path(org): Path<String>,
) -> PageResult {
    let mine = membership(&state.usecases, &who.session.user.id, &org).await?;
    let members = state.store.list_members(&mine.organization.id).await?;
    let manages = matches!(mine.role, Role::Owner | Role::Admin);
    let (message, clear) = take_flash(&state, &headers);
    let here = path(&org);
    let body = html! {
        p.muted { a href="/" { "Projects" } " / " (mine.organization.title) }
        h1 { "Team" }
        @if let Some(m) = &message { div.panel.flash role="status" { (m) } }
        p { "Owners and admins manage members; an admin cannot make or change owners. An organization keeps at least one owner." }
        table {
            thead { tr {
                th scope="col" { "Member" }
                th scope="col" { "Role" }
                th scope="col" { "Joined" }
                @if manages { th scope="col" { "Remove" } }
            } }
            tbody {
                @for m in &members {
                    @let allowed = manages && can_manage_member(mine.role, m.role, None);
                    tr {
                        th scope="row" { (m.email) @if m.user_id == who.session.user.id { " " span.muted { "(you)" } } }
                        td {
                            @if allowed {
                                form.row-actions method="post" action=(format!("{here}/{}/role", m.id)) {
                                    input type="hidden" name="_csrf" value=(who.csrf());
                                    label.inline for=(format!("role-{}", m.id)) { span.muted { "Role of " (m.email) ": " } }
                                    select #(format!("role-{}", m.id)) name="role" {
                                        @for r in Role::ALL {
                                            @if can_manage_member(mine.role, m.role, Some(r)) {
                                                option value=(r.as_str()) selected[r == m.role] { (r.as_str()) }
                                            }
                                        }
                                    }
                                    button type="submit" { "Save" }
                                }
                            } @else {
                                (m.role.as_str())
                            }
                        }
                        td { (time(m.created_at)) }
                        @if manages {
                            td {
                                @if allowed {
                                    details {
                                        summary { "Remove…" }
                                        form method="post" action=(format!("{here}/{}/remove", m.id)) {
                                            input type="hidden" name="_csrf" value=(who.csrf());
                                            p { "Remove " (m.email) "? Their development environments go with them." }
                                            button.danger type="submit" { "Remove " (m.email) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if manages {
            section.panel aria-labelledby="add-heading" {
                h2 #add-heading { "Add a member" }
                form method="post" action=(here) {
                    input type="hidden" name="_csrf" value=(who.csrf());
                    label for="email" { "Email of an existing user" }
                    input #email name="email" type="email" required size="32";
                    label for="role" { "Role" }
                    select #role name="role" {
                        @for r in Role::ALL {
                            @if can_manage_member(mine.role, r, Some(r)) {
                                option value=(r.as_str()) selected[r == Role::Developer] { (r.as_str()) }
                            }
                        }
                    }
                    " "
                    button.primary type="submit" { "Add member" }
                }
            }
        }
    };
    Ok(clearing_flash(
        send(page("Team", Some(&who.viewer()), body)),
        clear,
    ))
}

fn role_of(form: &HashMap<String, String>) -> PageResult<Role> {
    form.get("role")
        .and_then(|r| Role::parse(r))
        .ok_or_else(|| PageError::bad_request("Choose one of the offered roles."))
}

fn back(
    state: &AppState,
    headers: &HeaderMap,
    org: &str,
    message: &str,
) -> axum::response::Response {
    redirect_with_flash(state, headers, &path(org), message)
}

/// `POST`: adds a member.
pub async fn add_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path(org): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    who.check_csrf(&state, form.get("_csrf").map(String::as_str))?;
    let role = role_of(&form)?;
    let email = form.get("email").map(|e| e.trim()).unwrap_or("");
    let member = add(&state.usecases, &who.principal(), &org, email, role).await?;
    Ok(back(
        &state,
        &headers,
        &org,
        &format!("Added {} as {}.", member.email, member.role.as_str()),
    ))
}

/// `POST …/{member}/role`.
pub async fn set_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, member_id)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    who.check_csrf(&state, form.get("_csrf").map(String::as_str))?;
    let role = role_of(&form)?;
    let member = change_member(
        &state.usecases,
        &who.principal(),
        &org,
        &member_id,
        Some(role),
    )
    .await?;
    Ok(back(
        &state,
        &headers,
        &org,
        &format!("{} is now {}.", member.email, role.as_str()),
    ))
}

/// `POST …/{member}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, member_id)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    who.check_csrf(&state, form.get("_csrf").map(String::as_str))?;
    let member = change_member(&state.usecases, &who.principal(), &org, &member_id, None).await?;
    Ok(back(
        &state,
        &headers,
        &org,
        &format!("Removed {}.", member.email),
    ))
}
