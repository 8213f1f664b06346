//! taskgate's web dashboard, served by the same binary as the API: server-rendered HTML on the
//! same store and the same authorization code as the API (a page can do nothing its user could
//! not do over the API), with no build step and no third-party requests.
//!
//! - sign-in with one-time links and server-side sessions ([`signin`], [`session`]);
//! - the consent page of `trigger.dev login` ([`consent`]);
//! - an environment's API keys with their grace windows ([`apikeys`]);
//! - personal access tokens and user-actor tokens ([`tokens`]);
//! - an environment's runs, one run (what it waits for, its parent and children), cancel and
//!   replay ([`runs`]);
//! - an environment's deployments, which one runs, promoting another ([`deployments`]);
//! - an environment's wait tokens, completed from the page ([`waitpoints`]);
//! - the project's alert channels and their deliveries ([`alerts`]);
//! - an environment's queues, their limits and runs, and their pause and overrides
//!   ([`queues`]);
//! - an environment's schedules, their next times and last runs, and their switch
//!   ([`schedules`]);
//! - an environment's error groups, one group, triage of one
//!   or many groups and its history ([`errors`]);
//! - an organization's members and roles ([`team`]);
//! - for administrators: users, organizations and the audit log ([`admin`]).
//!
//! Every page is sent with a strict Content-Security-Policy and works without JavaScript;
//! every form posts, carries the session's CSRF token and answers with a redirect.

pub mod admin;
pub mod alerts;
pub mod apikeys;
pub mod assets;
pub mod consent;
pub mod deployments;
pub mod envs;
pub mod errors;
pub mod home;
pub mod layout;
pub mod mail;
pub mod queues;
pub mod runs;
pub mod schedules;
pub mod session;
pub mod signin;
pub mod team;
pub mod tokens;
pub mod waitpoints;

use axum::routing::{get, post};
use axum::Router;
use taskgate_server::state::AppState;

pub use signin::issue_link;

/// The dashboard's routes, to serve beside the API (`taskgate_server::router::router_with`).
pub fn pages() -> Router<AppState> {
    const ENV: &str = "/orgs/{org}/projects/{project}/env/{env}";
    const KEYS: &str = "/orgs/{org}/projects/{project}/env/{env}/apikeys";
    Router::new()
        .route("/", get(home::home))
        .route("/login", get(signin::login_page))
        .route("/login/magic", post(signin::email_link))
        .route("/magic", get(signin::magic).post(signin::switch_account))
        .route("/logout", post(signin::logout))
        .route(
            "/account/authorization-code/{code}",
            get(consent::consent_page).post(consent::approve),
        )
        .route(&format!("{ENV}/runs"), get(runs::runs_page))
        .route(&format!("{ENV}/runs/{{run}}"), get(runs::run_page))
        .route(
            &format!("{ENV}/runs/{{run}}/cancel"),
            post(runs::cancel_run),
        )
        .route(
            &format!("{ENV}/runs/{{run}}/replay"),
            post(runs::replay_run),
        )
        .route(
            &format!("{ENV}/deployments"),
            get(deployments::deployments_page),
        )
        .route(
            &format!("{ENV}/deployments/{{version}}/promote"),
            post(deployments::promote),
        )
        .route(&format!("{ENV}/schedules"), get(schedules::schedules_page))
        .route(
            &format!("{ENV}/schedules/{{id}}/{{action}}"),
            post(schedules::switch),
        )
        .route(&format!("{ENV}/alerts"), get(alerts::alerts_page))
        .route(&format!("{ENV}/alerts/channels"), post(alerts::create))
        .route(
            &format!("{ENV}/alerts/channels/{{id}}/{{action}}"),
            post(alerts::change),
        )
        .route(
            &format!("{ENV}/alerts/deliveries/{{id}}/resend"),
            post(alerts::resend),
        )
        .route(&format!("{ENV}/queues"), get(queues::queues_page))
        .route(
            &format!("{ENV}/queues/{{id}}/{{action}}"),
            post(queues::change),
        )
        .route(&format!("{ENV}/waitpoints"), get(waitpoints::tokens_page))
        .route(
            &format!("{ENV}/waitpoints/{{id}}/complete"),
            post(waitpoints::complete_token),
        )
        .route(&format!("{ENV}/errors"), get(errors::errors_page))
        .route(&format!("{ENV}/errors/bulk"), post(errors::bulk))
        .route(&format!("{ENV}/errors/{{id}}"), get(errors::error_page))
        .route(
            &format!("{ENV}/errors/{{id}}/resolve"),
            post(errors::resolve),
        )
        .route(&format!("{ENV}/errors/{{id}}/ignore"), post(errors::ignore))
        .route(
            &format!("{ENV}/errors/{{id}}/unresolve"),
            post(errors::unresolve),
        )
        .route(KEYS, get(apikeys::keys_page))
        .route(&format!("{KEYS}/regenerate"), post(apikeys::regenerate))
        .route(&format!("{KEYS}/grace/{{id}}"), post(apikeys::grace))
        .route(
            "/account/tokens",
            get(tokens::tokens_page).post(tokens::create),
        )
        .route("/account/tokens/user-actor", post(tokens::mint))
        .route("/account/tokens/{id}/revoke", post(tokens::revoke))
        .route(
            "/orgs/{org}/settings/team",
            get(team::team_page).post(team::add_member),
        )
        .route(
            "/orgs/{org}/settings/team/{member}/role",
            post(team::set_role),
        )
        .route(
            "/orgs/{org}/settings/team/{member}/remove",
            post(team::remove),
        )
        .route("/admin", get(admin::admin_page))
        .route("/admin/audit", get(admin::audit_page))
        .route("/admin/users", post(admin::create_user))
        .route("/admin/users/{id}/admin", post(admin::set_user_admin))
        .route(
            "/admin/orgs/{id}/rate-limit",
            get(admin::org_rate_limit_page).post(admin::set_org_rate_limit),
        )
        .route(
            "/admin/orgs/{id}/rate-limit/reset",
            post(admin::reset_org_rate_limit),
        )
        .route("/assets/{file}", get(assets::asset))
}
