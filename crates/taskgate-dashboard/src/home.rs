//! `/`: the signed-in user's organizations and projects, with a link to each environment.

use axum::extract::State;
use maud::html;
use taskgate_server::state::AppState;

use crate::layout::{page, send, PageResult};
use crate::session::SignedIn;

/// The environments a project page links to, as they appear in dashboard URLs.
pub const ENVIRONMENTS: [(&str, &str); 4] = [
    ("dev", "Development"),
    ("staging", "Staging"),
    ("prod", "Production"),
    ("preview", "Preview"),
];

pub async fn home(State(state): State<AppState>, who: SignedIn) -> PageResult {
    let orgs = state.store.list_orgs_for_user(&who.session.user.id).await?;
    let mut sections = Vec::with_capacity(orgs.len());
    for m in orgs {
        let projects = state.store.list_projects(&m.organization.id).await?;
        sections.push((m, projects));
    }
    let body = html! {
        h1 { "Projects" }
        @if sections.is_empty() {
            p.panel { "You are not a member of any organization yet." }
        }
        @for (m, projects) in &sections {
            section aria-labelledby=(format!("org-{}", m.organization.slug)) {
                h2 #(format!("org-{}", m.organization.slug)) {
                    (m.organization.title) " "
                    span.muted { "(" (m.role.as_str()) ")" }
                }
                p { a href=(format!("/orgs/{}/settings/team", m.organization.slug)) { "Team of " (m.organization.title) } }
                @if projects.is_empty() {
                    p.muted { "No projects." }
                } @else {
                    table {
                        thead { tr {
                            th scope="col" { "Project" }
                            th scope="col" { "Reference" }
                            th scope="col" { "Environments" }
                        } }
                        tbody {
                            @for p in projects {
                                tr {
                                    th scope="row" { (p.name) }
                                    td { code { (p.external_ref) } }
                                    td.row-actions {
                                        @for (env, title) in ENVIRONMENTS {
                                            a href=(format!("/orgs/{}/projects/{}/env/{env}/runs", m.organization.slug, p.external_ref)) {
                                                (title)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(send(page("Projects", Some(&who.viewer()), body)))
}
