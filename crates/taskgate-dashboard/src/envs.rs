//! The environment a page is about (`/orgs/{org}/projects/{project}/env/{env}/…`), resolved
//! for the signed-in user through the API's own access code, and the links between its pages.

use maud::{html, Markup};
use taskgate_core::scope::Resource;
use taskgate_server::state::AppState;
use taskgate_store::{EnvironmentAuth, ProjectAccess};
use taskgate_usecases::access::environment_for_user;

use crate::home::ENVIRONMENTS;
use crate::layout::{PageError, PageResult};
use crate::session::SignedIn;

/// An environment as a page sees it.
pub struct PageEnv {
    pub access: ProjectAccess,
    pub auth: EnvironmentAuth,
    pub org: String,
    pub project: String,
    /// `dev`, `staging`, `prod` or `preview`, as in the URL.
    pub env: String,
}

impl PageEnv {
    /// `/orgs/{org}/projects/{project}/env/{env}`.
    pub fn base(&self) -> String {
        format!(
            "/orgs/{}/projects/{}/env/{}",
            self.org, self.project, self.env
        )
    }

    /// `Production`, `Staging`…
    pub fn title(&self) -> &'static str {
        env_title(&self.env)
    }

    /// Whether the user may `action` `resources` here, by their role (the API's policy).
    pub fn can(
        &self,
        state: &AppState,
        who: &SignedIn,
        action: &str,
        resources: &[Resource],
    ) -> bool {
        state
            .auth
            .policy
            .can(&who.principal(), self.access.role, action, resources)
    }

    /// Refuses unless the user may `action` `resources` here.
    pub fn require(
        &self,
        state: &AppState,
        who: &SignedIn,
        action: &str,
        resources: &[Resource],
    ) -> PageResult<()> {
        if self.can(state, who, action, resources) {
            Ok(())
        } else {
            Err(PageError::forbidden(
                "Your role in this organization does not allow this.",
            ))
        }
    }

    /// The breadcrumb and the environment's page links, `current` marked.
    pub fn nav(&self, current: &str) -> Markup {
        let base = self.base();
        html! {
            p.muted { a href="/" { (self.auth.organization_title) } " / " (self.auth.project_name) " / " (self.title()) }
            nav.row-actions aria-label="Environment" {
                @for (page, label) in [("runs", "Runs"), ("deployments", "Deployments"), ("schedules", "Schedules"), ("queues", "Queues"), ("waitpoints", "Wait tokens"), ("errors", "Errors"), ("alerts", "Alerts"), ("apikeys", "API keys")] {
                    @if page == current {
                        a href=(format!("{base}/{page}")) aria-current="page" { strong { (label) } }
                    } @else {
                        a href=(format!("{base}/{page}")) { (label) }
                    }
                }
            }
        }
    }
}

/// `Production` for `prod`.
pub fn env_title(env: &str) -> &'static str {
    ENVIRONMENTS
        .iter()
        .find(|(slug, _)| *slug == env)
        .map(|(_, title)| *title)
        .unwrap_or("Unknown")
}

/// The environment `{org}/{project}/{env}` for the signed-in user: 404 unless they are a member
/// of the project and the project is `org`'s.
pub async fn resolve(
    state: &AppState,
    who: &SignedIn,
    org: &str,
    project: &str,
    env: &str,
) -> PageResult<PageEnv> {
    let (access, auth) =
        environment_for_user(&state.usecases, &who.principal(), project, env, None).await?;
    if access.organization.slug != org {
        return Err(PageError::not_found());
    }
    Ok(PageEnv {
        access,
        auth,
        org: org.to_string(),
        project: project.to_string(),
        env: env.to_string(),
    })
}
