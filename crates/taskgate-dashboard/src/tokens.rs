//! `/account/tokens`: the signed-in user's personal access tokens (created and shown once,
//! revoked), and minting a user-actor token from one of them, with a lifetime and a scope cap.
//!
//! Creation and revocation go through the API's own functions (`routes::tokens::issue_pat`,
//! the store's `revoke_pat`, `routes::user_actor::sign_user_actor_token`), with the same
//! checks and audit records.

use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use maud::html;
use serde::Deserialize;
use serde_json::Value;
use taskgate_core::uat::validate_ttl;
use taskgate_server::auth::{UserCredential, UserPrincipal};
use taskgate_server::state::AppState;
use taskgate_store::StoreError;
use taskgate_usecases::text::required_name;
use taskgate_usecases::tokens::{issue_pat, sign_user_actor_token};

use crate::layout::{page, send, time, PageError, PageResult};
use crate::session::{clearing_flash, redirect_with_flash, take_flash, SignedIn};

const PATH: &str = "/account/tokens";
/// Lifetimes offered for a user-actor token, in seconds.
const TTL_CHOICES: [(i64, &str); 4] = [
    (3600, "1 hour"),
    (86_400, "1 day"),
    (604_800, "7 days"),
    (2_592_000, "30 days"),
];

/// `GET`: the tokens, and the forms to make more.
pub async fn tokens_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
) -> PageResult {
    let tokens = state.store.list_pats(&who.session.user.id).await?;
    let live: Vec<_> = tokens.iter().filter(|t| t.revoked_at.is_none()).collect();
    let (message, clear) = take_flash(&state, &headers);
    let body = html! {
        h1 { "Personal access tokens" }
        @if let Some(m) = &message {
            div.panel.flash role="status" { (m) }
        }
        p { "A personal access token acts as you, with your role in each organization: the CLI ("
            code { "TRIGGER_ACCESS_TOKEN" } ") and the API use one. Revoking a token ends it at once, with every user-actor token minted from it." }
        @if tokens.is_empty() {
            p.panel { "You have no tokens yet." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "Token" }
                    th scope="col" { "Created" }
                    th scope="col" { "Last accessed" }
                    th scope="col" { "Status" }
                } }
                tbody {
                    @for t in &tokens {
                        tr {
                            th scope="row" { (t.name) }
                            td { code { (t.obfuscated_token) } }
                            td { (time(t.created_at)) }
                            td { @if let Some(at) = t.last_accessed_at { (time(at)) } @else { span.muted { "Never" } } }
                            td {
                                @if let Some(at) = t.revoked_at {
                                    span.badge.muted { "Revoked " (time(at)) }
                                } @else {
                                    form method="post" action=(format!("{PATH}/{}/revoke", t.id)) {
                                        input type="hidden" name="_csrf" value=(who.csrf());
                                        button.danger type="submit" aria-label=(format!("Revoke {}", t.name)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.panel aria-labelledby="create-heading" {
            h2 #create-heading { "Create a token" }
            form method="post" action=(PATH) {
                input type="hidden" name="_csrf" value=(who.csrf());
                label for="name" { "Name" }
                input #name name="name" required minlength="1" maxlength="50" autocomplete="off";
                " "
                button.primary type="submit" { "Create token" }
            }
        }
        section.panel aria-labelledby="uat-heading" {
            h2 #uat-heading { "Mint a user-actor token" }
            p { "A short-lived token for an agent or a script: it can do at most what you can, narrowed by its cap, and it ends when its lifetime does or when the token it is minted from is revoked." }
            @if live.is_empty() {
                p.muted { "Create a personal access token first: a user-actor token is minted from one." }
            } @else {
                form method="post" action=(format!("{PATH}/user-actor")) {
                    input type="hidden" name="_csrf" value=(who.csrf());
                    label for="source" { "Minted from" }
                    select #source name="source" {
                        @for t in &live { option value=(t.id) { (t.name) " (" (t.obfuscated_token) ")" } }
                    }
                    label for="ttl" { "Lifetime" }
                    select #ttl name="ttl" {
                        @for (secs, label) in TTL_CHOICES {
                            @if secs <= state.config.tokens.max_uat_ttl_seconds {
                                option value=(secs) selected[secs == 3600] { (label) }
                            }
                        }
                    }
                    label for="cap" { "Scope cap (optional, space-separated, e.g. " code { "read:runs write:errors" } ")" }
                    input #cap name="cap" autocomplete="off" size="50";
                    " "
                    button.primary type="submit" { "Mint token" }
                }
            }
        }
    };
    Ok(clearing_flash(
        send(page("Tokens", Some(&who.viewer()), body)),
        clear,
    ))
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    name: Option<String>,
}

/// `POST`: creates a token; its plaintext is shown once, in the next page's message.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Form(form): Form<CreateForm>,
) -> PageResult {
    who.check_csrf(&state, form.csrf.as_deref())?;
    let name = required_name("name", form.name.as_deref().unwrap_or(""), 50)?;
    let created = issue_pat(
        &state.usecases,
        &who.session.user.id,
        &name,
        &who.principal().actor(),
    )
    .await?;
    let message = format!(
        "Created the token \"{name}\": {} (shown once here; copy it now, you will not be able to see it again).",
        created.token
    );
    Ok(redirect_with_flash(&state, &headers, PATH, &message))
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// `POST /account/tokens/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> PageResult {
    who.check_csrf(&state, form.csrf.as_deref())?;
    let revoked = match state
        .store
        .revoke_pat(
            &who.session.user.id,
            &id,
            &who.principal().actor(),
            state.now(),
        )
        .await
    {
        Ok(t) => t,
        Err(StoreError::NotFound) => return Err(PageError::not_found()),
        Err(e) => return Err(e.into()),
    };
    let message = format!("Revoked the token \"{}\".", revoked.name);
    Ok(redirect_with_flash(&state, &headers, PATH, &message))
}

#[derive(Debug, Deserialize)]
pub struct MintForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    source: Option<String>,
    ttl: Option<i64>,
    cap: Option<String>,
}

/// `POST /account/tokens/user-actor`: mints a user-actor token, shown once.
pub async fn mint(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Form(form): Form<MintForm>,
) -> PageResult {
    who.check_csrf(&state, form.csrf.as_deref())?;
    let tokens = state.store.list_pats(&who.session.user.id).await?;
    let source = tokens
        .into_iter()
        .find(|t| Some(&t.id) == form.source.as_ref() && t.revoked_at.is_none())
        .ok_or_else(|| PageError::bad_request("Choose one of your live tokens to mint from."))?;
    let ttl = validate_ttl(
        form.ttl.map(Value::from).as_ref(),
        state.config.tokens.max_uat_ttl_seconds,
    )
    .map_err(|e| PageError::bad_request(format!("Lifetime: {e}")))?;
    let scopes: Vec<String> = form
        .cap
        .as_deref()
        .unwrap_or("")
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for scope in &scopes {
        taskgate_core::scope::check_grammar(scope)
            .map_err(|e| PageError::bad_request(format!("Scope cap: {e}")))?;
    }
    let cap = (!scopes.is_empty()).then_some(scopes);
    let principal = UserPrincipal {
        user: who.session.user.clone(),
        credential: UserCredential::Pat {
            pat_id: source.id.clone(),
        },
    };
    let token = sign_user_actor_token(
        &state.usecases,
        &principal,
        cap,
        Some("dashboard".into()),
        ttl,
    );
    let message = format!(
        "Minted a user-actor token from \"{}\", valid for {} seconds: {token} (shown once here; copy it now).",
        source.name, ttl
    );
    Ok(redirect_with_flash(&state, &headers, PATH, &message))
}
