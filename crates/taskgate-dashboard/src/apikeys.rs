//! `/orgs/{org}/projects/{project}/env/{env}/apikeys`: the environment's secret key, its
//! rotation, and every previous key still inside its grace window, with how much it is still
//! used, so a team can see when its clients have moved over. Administrators can end a grace
//! window now or extend it.
//!
//! Every action goes through the same code as the API's (`routes::keys::rotate`,
//! `routes::admin::change_grace`) and the same role checks.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Duration;
use maud::{html, Markup};
use secrecy::ExposeSecret;
use serde::Deserialize;
use taskgate_core::hash::hmac_sha256;
use taskgate_core::rotation::grace_active;
use taskgate_server::state::AppState;
use taskgate_store::{EnvironmentAuth, StoreError};
use taskgate_usecases::access::{client_key_sealed, require_key_access};
use taskgate_usecases::admin::change_grace;
use taskgate_usecases::keys::rotate;

use crate::envs::{self, env_title};
use crate::layout::{page, send, time, PageError, PageResult};
use crate::session::{clearing_flash, redirect_with_flash, take_flash, SignedIn};

/// Words of the typed confirmation: short, distinct, easy to type.
const WORDS: [&str; 64] = [
    "amber", "anchor", "apple", "arrow", "badge", "basil", "beacon", "birch", "bison", "blaze",
    "cedar", "chalk", "cider", "clover", "comet", "coral", "delta", "dune", "ember", "falcon",
    "fern", "fjord", "flint", "forest", "frost", "garnet", "glacier", "granite", "harbor", "hazel",
    "heron", "indigo", "island", "jasper", "juniper", "kelp", "lagoon", "lantern", "lemon",
    "lilac", "maple", "marble", "meadow", "mesa", "nectar", "nickel", "oak", "olive", "onyx",
    "orchid", "pebble", "pepper", "pine", "quartz", "raven", "river", "saffron", "sage", "slate",
    "spruce", "thistle", "tundra", "violet", "willow",
];

/// How far an administrator may extend a grace window at once.
const EXTEND_CHOICES: [(i64, &str); 4] = [
    (1, "1 hour"),
    (24, "24 hours"),
    (72, "3 days"),
    (168, "7 days"),
];

/// The two words a user types to confirm regenerating this key: fixed for one key and
/// session, so the form needs no server-side state, and different after every rotation.
fn confirmation(state: &AppState, who: &SignedIn, env: &EnvironmentAuth) -> String {
    let data = format!(
        "regenerate\0{}\0{}\0{}",
        who.session.id, env.environment.id, env.environment.api_key_last_four
    );
    let mac = hmac_sha256(state.session_secret.expose_secret(), data.as_bytes());
    format!(
        "{} {}",
        WORDS[usize::from(mac[0] & 63)],
        WORDS[usize::from(mac[1] & 63)]
    )
}

/// `tr_dev_••••••••abcd`.
fn masked(key: &str) -> String {
    let prefix = key.rfind('_').map(|i| &key[..=i]).unwrap_or("");
    let tail = &key[key.len().saturating_sub(4)..];
    format!("{prefix}{}{tail}", "\u{2022}".repeat(8))
}

/// The environment `{org}/{project}/{env}` for the signed-in user, if they may read its keys.
async fn environment(
    state: &AppState,
    who: &SignedIn,
    org: &str,
    project: &str,
    env: &str,
) -> PageResult<envs::PageEnv> {
    let page = envs::resolve(state, who, org, project, env).await?;
    require_key_access(
        &state.usecases,
        &who.principal(),
        page.access.role,
        "read",
        page.auth.environment.env_type,
    )?;
    Ok(page)
}

fn base(org: &str, project: &str, env: &str) -> String {
    format!("/orgs/{org}/projects/{project}/env/{env}/apikeys")
}

/// `GET`: the keys.
pub async fn keys_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env)): Path<(String, String, String)>,
) -> PageResult {
    let page_env = environment(&state, &who, &org, &project, &env).await?;
    let (access, auth) = (&page_env.access, &page_env.auth);
    let sealed = client_key_sealed(&state.usecases, &auth.environment).await?;
    let key = state.vault.open_secret(&sealed).map_err(|_| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "This key cannot be read with the server's master key.",
        )
    })?;
    let now = state.now();
    let revoked = state.store.list_revoked_keys(&auth.environment.id).await?;
    let in_grace: Vec<_> = revoked
        .iter()
        .filter(|k| grace_active(k.expires_at, now))
        .collect();
    let ended: Vec<_> = revoked
        .iter()
        .filter(|k| !grace_active(k.expires_at, now))
        .take(10)
        .collect();
    let may_write = state.auth.policy.can(
        &who.principal(),
        access.role,
        "write",
        &[taskgate_core::role::api_key_resource(
            auth.environment.env_type,
        )],
    );
    let admin = who.session.user.admin;
    let (flash_message, clear) = take_flash(&state, &headers);
    let title = env_title(&env);
    let here = base(&org, &project, &env);
    let words = confirmation(&state, &who, auth);
    let grace_hours = state.config.tokens.grace.num_hours();
    let body = html! {
        (page_env.nav("apikeys"))
        h1 { "API keys" }
        @if let Some(m) = &flash_message {
            div.panel.flash role="status" { (m) }
        }
        div.panel {
            p { "Set " code { "TRIGGER_SECRET_KEY" } " to this key in your " (title.to_lowercase())
                " environment's variables; the SDK and the CLI read it from there." }
            @if env == "preview" {
                p { "For a preview branch, also set " code { "TRIGGER_PREVIEW_BRANCH" } " to the branch's name." }
            }
        }
        table {
            caption.muted { "The key clients use now" }
            thead { tr {
                th scope="col" { "Name" }
                th scope="col" { "Secret key" }
                th scope="col" { "Status" }
                th scope="col" { "Access" }
                th scope="col" { "Created" }
            } }
            tbody { tr {
                th scope="row" { "Root API key" }
                td {
                    code.secret { (masked(key.expose_secret())) }
                    " "
                    button type="button" data-copy=(key.expose_secret()) hidden { "Copy" }
                    details { summary { "Reveal" } code.secret { (key.expose_secret()) } }
                }
                td { span.badge.ok { "Active" } }
                td { "No restrictions" }
                td { (time(auth.environment.created_at)) }
            } }
        }
        @if may_write {
            details.panel #regenerate {
                summary { "Regenerate…" }
                h2 { "Regenerate " (title) " environment key" }
                p role="note" { "A new API key will be issued for the " (title) " environment. The previous key stays valid for "
                    (grace_hours) " hours so you can roll out the new key in your environment variables without downtime. After "
                    (grace_hours) " hours, the previous key stops working." }
                form method="post" action=(format!("{here}/regenerate")) {
                    input type="hidden" name="_csrf" value=(who.csrf());
                    label for="confirm" { "Enter this text below to confirm: " strong.mono { (words) } }
                    input #confirm name="confirm" autocomplete="off" required data-confirm=(words);
                    @if admin {
                        label for="grace" { "As an administrator, keep the previous key valid for" }
                        select #grace name="grace" {
                            option value="" selected { "the default (" (grace_hours) " hours)" }
                            @for (h, label) in EXTEND_CHOICES { option value=(h) { (label) } }
                        }
                    }
                    " "
                    button.danger type="submit" { "Regenerate" }
                }
            }
        }
        h2 { "Previous keys in their grace window" }
        @if in_grace.is_empty() {
            p.muted { "None: no previous key still works." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Key" }
                    th scope="col" { "Status" }
                    th scope="col" { "Uses since rotation" }
                    th scope="col" { "Last used" }
                    th scope="col" { "Rotated" }
                    @if admin { th scope="col" { "Grace window" } }
                } }
                tbody {
                    @for k in &in_grace {
                        tr {
                            th scope="row" { code { "••••" (k.last_four) } }
                            td { span.badge.warn { "Valid until " (time(k.expires_at)) } }
                            td { (k.use_count) }
                            td { @if let Some(at) = k.last_used_at { (time(at)) } @else { span.muted { "Not used since" } } }
                            td { (time(k.created_at)) }
                            @if admin { td { (grace_forms(&here, who.csrf(), &k.id)) } }
                        }
                    }
                }
            }
        }
        @if !ended.is_empty() {
            h2 { "Retired keys" }
            table {
                thead { tr {
                    th scope="col" { "Key" }
                    th scope="col" { "Stopped working" }
                    th scope="col" { "Uses after rotation" }
                    @if admin { th scope="col" { "Grace window" } }
                } }
                tbody {
                    @for k in &ended {
                        tr {
                            th scope="row" { code { "••••" (k.last_four) } }
                            td { (time(k.expires_at)) }
                            td { (k.use_count) }
                            @if admin { td { (grace_forms(&here, who.csrf(), &k.id)) } }
                        }
                    }
                }
            }
        }
    };
    Ok(clearing_flash(
        send(page("API keys", Some(&who.viewer()), body)),
        clear,
    ))
}

/// An administrator's controls of one key's grace window.
fn grace_forms(here: &str, csrf: &str, id: &str) -> Markup {
    html! {
        div.row-actions {
            form method="post" action=(format!("{here}/grace/{id}")) {
                input type="hidden" name="_csrf" value=(csrf);
                input type="hidden" name="action" value="end";
                button.danger type="submit" { "End now" }
            }
            form method="post" action=(format!("{here}/grace/{id}")) {
                input type="hidden" name="_csrf" value=(csrf);
                input type="hidden" name="action" value="extend";
                label.inline for=(format!("hours-{id}")) { "Extend by " }
                select #(format!("hours-{id}")) name="hours" {
                    @for (h, label) in EXTEND_CHOICES { option value=(h) selected[h == 24] { (label) } }
                }
                " "
                button type="submit" { "Extend" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RegenerateForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    confirm: Option<String>,
    /// An administrator's grace for the previous key, in hours (one of [`EXTEND_CHOICES`]).
    grace: Option<String>,
}

/// `POST …/regenerate`: rotates the key once the confirmation matches.
pub async fn regenerate(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env)): Path<(String, String, String)>,
    Form(form): Form<RegenerateForm>,
) -> PageResult {
    who.check_csrf(&state, form.csrf.as_deref())?;
    let auth = environment(&state, &who, &org, &project, &env).await?.auth;
    if form.confirm.as_deref().map(str::trim) != Some(confirmation(&state, &who, &auth).as_str()) {
        return Err(PageError::bad_request(
            "The confirmation text did not match. Go back and type the words shown.",
        ));
    }
    // Checked before rotating, so a bad choice changes nothing.
    let grace = match form.grace.as_deref().filter(|g| !g.is_empty()) {
        None => None,
        Some(_) if !who.session.user.admin => {
            return Err(PageError::forbidden(
                "Only an administrator can choose another grace window.",
            ))
        }
        Some(g) => Some(
            g.parse::<i64>()
                .ok()
                .filter(|h| EXTEND_CHOICES.iter().any(|(c, _)| c == h))
                .ok_or_else(|| {
                    PageError::bad_request("Choose one of the offered grace windows.")
                })?,
        ),
    };
    let (_, plaintext, rotation) = rotate(
        &state.usecases,
        &who.principal(),
        &project,
        &env,
        grace.map(Duration::hours),
    )
    .await?;
    let message = format!(
        "API keys regenerated for {} environment. The new key is {} (shown once here; copy it now). The previous key works until {}.",
        env_title(&env).to_lowercase(),
        plaintext.expose_secret(),
        rotation.revoked.expires_at.format("%Y-%m-%d %H:%M UTC"),
    );
    Ok(redirect_with_flash(
        &state,
        &headers,
        &base(&org, &project, &env),
        &message,
    ))
}

#[derive(Debug, Deserialize)]
pub struct GraceForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    action: Option<String>,
    hours: Option<i64>,
}

/// `POST …/grace/{id}`: an administrator ends a grace window now or extends it.
pub async fn grace(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path((org, project, env, id)): Path<(String, String, String, String)>,
    Form(form): Form<GraceForm>,
) -> PageResult {
    who.check_csrf(&state, form.csrf.as_deref())?;
    if !who.session.user.admin {
        return Err(PageError::forbidden(
            "Only an administrator can change a grace window.",
        ));
    }
    let auth = environment(&state, &who, &org, &project, &env).await?.auth;
    let key = match state.store.get_revoked_key(&id).await {
        Ok(k) if k.runtime_environment_id == auth.environment.id => k,
        Ok(_) | Err(StoreError::NotFound) => return Err(PageError::not_found()),
        Err(e) => return Err(e.into()),
    };
    let now = state.now();
    let expires_at =
        match (form.action.as_deref(), form.hours) {
            (Some("end"), _) => now,
            (Some("extend"), Some(h)) if EXTEND_CHOICES.iter().any(|(c, _)| *c == h) => {
                key.expires_at.max(now) + Duration::hours(h)
            }
            _ => return Err(PageError::bad_request(
                "Choose to end the grace window or to extend it by one of the offered durations.",
            )),
        };
    let change = change_grace(&state.usecases, &who.principal(), &id, expires_at).await?;
    let message = if expires_at <= now {
        format!("The key ending {} no longer works.", key.last_four)
    } else {
        format!(
            "The key ending {} now works until {}.",
            key.last_four,
            change.revoked.expires_at.format("%Y-%m-%d %H:%M UTC")
        )
    };
    Ok(redirect_with_flash(
        &state,
        &headers,
        &base(&org, &project, &env),
        &message,
    ))
}
