//! Signing in with a one-time link, and signing out.
//!
//! A link is issued by `taskgate login-link --email …` on the server's host ([`issue_link`]);
//! it works once, for [`SIGN_IN_LINK_TTL`], and is never written to a log.

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::html;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use taskgate_config::Config;
use taskgate_core::hash::sha256_hex;
use taskgate_core::ratelimit::{Interval, LimitConfig};
use taskgate_core::signin::{
    new_session_token, new_sign_in_token, SIGN_IN_LINKS_PER_WINDOW, SIGN_IN_LINK_TTL,
    SIGN_IN_LINK_WINDOW, SIGN_IN_REQUESTS_PER_ADDRESS,
};
use taskgate_server::client_ip::ClientIp;
use taskgate_server::state::AppState;
use taskgate_store::{Actor, NewSession, NewSignInLink, NewUser, Store, User};

use crate::layout::{page, see_other, send, PageError, PageResult};
use crate::session::{
    self, cookie, local_path, set_cookie, signed_in, SignedIn, NEXT_COOKIE, SESSION_COOKIE,
    SESSION_TTL,
};

/// Why [`issue_link`] issued no link. Its message names the email, for the operator who typed
/// it; logs use [`LinkRefused::kind`], which does not.
#[derive(Debug, thiserror::Error)]
pub enum LinkRefused {
    #[error("{0:?} is not an email address")]
    NotAnEmail(String),
    #[error("no user has the email {0:?}, and --sign-in-allow / --admin-emails do not admit it")]
    NotAdmitted(String),
    #[error("{recent} sign-in links were issued for {email:?} in the last {minutes} minutes: wait before asking for another")]
    TooMany {
        email: String,
        recent: u32,
        minutes: i64,
    },
    #[error(transparent)]
    Store(#[from] taskgate_store::StoreError),
}

impl LinkRefused {
    /// What kind of refusal this is, without the address.
    pub fn kind(&self) -> &'static str {
        match self {
            LinkRefused::NotAnEmail(_) => "not an email address",
            LinkRefused::NotAdmitted(_) => "no such user, and sign-up does not admit the address",
            LinkRefused::TooMany { .. } => "too many links for this address in the window",
            LinkRefused::Store(_) => "the database could not be reached",
        }
    }
}

/// Issues a one-time sign-in link for `email` and returns it, as
/// `<base_url>/magic?token=…`. Refused when no user has that email and the configuration does
/// not admit it as a newcomer, or after [`SIGN_IN_LINKS_PER_WINDOW`] links for one email
/// within [`SIGN_IN_LINK_WINDOW`].
pub async fn issue_link(
    store: &dyn Store,
    config: &Config,
    base_url: &str,
    email: &str,
    now: DateTime<Utc>,
) -> Result<SecretString, LinkRefused> {
    let email = email.trim();
    if !email.contains('@') || email.len() > 254 {
        return Err(LinkRefused::NotAnEmail(email.to_string()));
    }
    let known = find_user(store, email).await?.is_some();
    if !known && !config.sign_in.may_sign_up(email) {
        return Err(LinkRefused::NotAdmitted(email.to_string()));
    }
    let recent = store
        .count_sign_in_links(email, now - SIGN_IN_LINK_WINDOW)
        .await?;
    if recent >= SIGN_IN_LINKS_PER_WINDOW {
        return Err(LinkRefused::TooMany {
            email: email.to_string(),
            recent,
            minutes: SIGN_IN_LINK_WINDOW.num_minutes(),
        });
    }
    let token = new_sign_in_token();
    store
        .create_sign_in_link(
            NewSignInLink {
                token_hash: sha256_hex(token.expose_secret()),
                email: email.to_string(),
                expires_at: now + SIGN_IN_LINK_TTL,
            },
            now,
        )
        .await?;
    Ok(SecretString::from(format!(
        "{}/magic?token={}",
        base_url.trim_end_matches('/'),
        token.expose_secret()
    )))
}

/// The user with `email`, matched exactly and then case-insensitively.
async fn find_user(store: &dyn Store, email: &str) -> taskgate_store::StoreResult<Option<User>> {
    if let Some(u) = store.find_user_by_email(email).await? {
        return Ok(Some(u));
    }
    store.find_user_by_email(&email.to_ascii_lowercase()).await
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`: how to sign in. Remembers where to return once signed in.
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> PageResult {
    let next = local_path(q.next.as_deref());
    if signed_in(&headers, &state).await?.is_some() {
        return Ok(see_other(&next));
    }
    let body = html! {
        h1 { "Sign in to taskgate" }
        @if state.config.sign_in.smtp.is_some() {
            form.panel method="post" action="/login/magic" {
                label for="email" { "Email" }
                input #email name="email" type="email" required autocomplete="email" size="32";
                " "
                button.primary type="submit" { "Email me a sign-in link" }
                p.muted { "The link works once, for " (SIGN_IN_LINK_TTL.num_minutes()) " minutes. Open it in this browser." }
            }
        } @else {
            div.panel {
                p { "This server signs you in with a one-time link. Ask its operator for one, or, on the server's host, run:" }
                pre tabindex="0" { code { "taskgate login-link --email you@example.com" } }
                p.muted { "The link works once, for " (SIGN_IN_LINK_TTL.num_minutes()) " minutes. Open it in this browser." }
            }
        }
    };
    let mut resp = send(page("Sign in", None, body));
    if next != "/" {
        if let Some(c) = set_cookie(
            &state,
            &headers,
            NEXT_COOKIE,
            &session::encode(&next),
            SIGN_IN_LINK_TTL,
        ) {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    Ok(resp)
}

#[derive(Debug, Deserialize)]
pub struct EmailForm {
    email: Option<String>,
}

/// The window sign-in requests are counted in, per client address.
fn per_address_window() -> Interval {
    Interval::parse(&format!("{}m", SIGN_IN_LINK_WINDOW.num_minutes()))
        .unwrap_or_else(|| unreachable!("the sign-in window is a whole number of minutes"))
}

/// `POST /login/magic`: emails a sign-in link. The answer is the same whether or not the
/// address may sign in, so the form does not tell who has an account; refusals are logged.
pub async fn email_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    Form(form): Form<EmailForm>,
) -> PageResult {
    let Some(smtp) = &state.config.sign_in.smtp else {
        return Err(PageError::not_found_with(
            "This server does not send email: sign-in links come from `taskgate login-link` on its host.",
        ));
    };
    // Per client address, whatever the email: one address cannot mail a list of strangers.
    // Requests whose address is unknown share one count.
    let address = ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let per_address = LimitConfig::FixedWindow {
        window: per_address_window(),
        tokens: SIGN_IN_REQUESTS_PER_ADDRESS,
    };
    let decision = state.sign_in_requests.take(
        &address,
        &per_address,
        taskgate_core::time::to_millis(state.now()),
    );
    if !decision.allowed {
        // Once per address and window, however many requests it goes on sending.
        let first_refusal = LimitConfig::FixedWindow {
            window: per_address_window(),
            tokens: 1,
        };
        let now_ms = taskgate_core::time::to_millis(state.now());
        if state
            .sign_in_requests
            .take(&format!("refused:{address}"), &first_refusal, now_ms)
            .allowed
        {
            tracing::warn!(
                client.address = %address,
                "sign-in link requests from one address passed {SIGN_IN_REQUESTS_PER_ADDRESS} in {} minutes; refusing until the window ends",
                SIGN_IN_LINK_WINDOW.num_minutes()
            );
        }
        let wait_ms = decision.reset_ms.saturating_sub(now_ms).max(0);
        let wait = (wait_ms + 59_999) / 60_000;
        return Err(PageError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many sign-in requests came from your address. Try again in {} minute{}.",
                wait.max(1),
                if wait > 1 { "s" } else { "" }
            ),
        ));
    }
    let email = form.email.as_deref().map(str::trim).unwrap_or("");
    if !email.contains('@') || email.len() > 254 {
        return Err(PageError::bad_request(
            "Enter the email address you sign in with.",
        ));
    }
    // Whether the address may sign in, the link and the mail are all decided off the request
    // path: the answer below comes at once and is the same for every address, so neither its
    // words nor its timing tell who has an account. What happened is logged.
    let base = taskgate_server::public_url::public_url(&state, &headers);
    let (smtp, email_owned) = (smtp.clone(), email.to_string());
    let task_state = state.clone();
    tokio::spawn(async move {
        let state = task_state;
        let issued = issue_link(
            &*state.store,
            &state.config,
            &base,
            &email_owned,
            state.now(),
        )
        .await;
        match issued {
            Ok(link) => match crate::mail::send_sign_in_link(&smtp, &email_owned, &link).await {
                Ok(()) => tracing::info!("sign-in link emailed"),
                Err(e) => tracing::error!(
                    error = %format!("{e:#}"),
                    "could not email a sign-in link; check --smtp-url and the mail server (the link was issued and expires unused)"
                ),
            },
            Err(e) => tracing::info!(reason = e.kind(), "sign-in link not sent"),
        }
    });
    let body = html! {
        h1 { "Check your email" }
        p.panel role="status" { "If " strong { (email) } " may sign in here, a sign-in link is on its way. It works once, for "
            (SIGN_IN_LINK_TTL.num_minutes()) " minutes." }
    };
    Ok(send(page("Check your email", None, body)))
}

#[derive(Debug, Deserialize)]
pub struct MagicQuery {
    token: Option<String>,
}

/// `GET /magic?token=…`: spends a sign-in link and starts a session. A browser that is already
/// signed in is asked first, and the link is not spent until it answers: opening someone
/// else's link (sent by an attacker, say) must not silently swap the session for theirs.
pub async fn magic(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<MagicQuery>,
) -> PageResult {
    let token = q.token.filter(|t| t.len() <= 128).unwrap_or_default();
    match signed_in(&headers, &state).await? {
        Some(current) => Ok(confirm_switch(&current, &token)),
        None => sign_in_with_link(&state, &headers, &token, None).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct SwitchForm {
    token: Option<String>,
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// `POST /magic`: the signed-in user chose to end their session and use the link. The form
/// carries the current session's CSRF token, so another site cannot post it for them.
pub async fn switch_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Form(form): Form<SwitchForm>,
) -> PageResult {
    who.check_csrf(&state, form.csrf.as_deref())?;
    let token = form.token.filter(|t| t.len() <= 128).unwrap_or_default();
    sign_in_with_link(&state, &headers, &token, Some(&who)).await
}

/// The page that asks a signed-in user before a sign-in link replaces their session.
fn confirm_switch(current: &SignedIn, token: &str) -> Response {
    let body = html! {
        h1 { "You are already signed in" }
        div.panel {
            p { "You are signed in as " strong { (current.session.user.email) } "." }
            p { "This sign-in link may belong to another account. Use it only if you asked for it: "
                "it ends your current session." }
            form method="post" action="/magic" {
                input type="hidden" name="_csrf" value=(current.csrf());
                input type="hidden" name="token" value=(token);
                button type="submit" { "Sign out and use the link" }
            }
            p { a href="/" { "Stay signed in as " (current.session.user.email) } }
        }
    };
    send(page("Already signed in", Some(&current.viewer()), body))
}

/// Spends the link `token` and starts a session for its account, ending `replacing` (the
/// session it replaces) once the link proved good.
async fn sign_in_with_link(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    replacing: Option<&SignedIn>,
) -> PageResult {
    let now = state.now();
    let spent = state
        .store
        .consume_sign_in_link(&sha256_hex(token), now)
        .await?;
    let Some(email) = spent else {
        return Err(PageError::bad_request(
            "This sign-in link has expired or was already used. Ask for a new one.",
        ));
    };
    let user = user_for_sign_in(state, &email, now).await?;
    if let Some(old) = replacing {
        state.store.end_session(&old.token_hash(), now).await?;
    }
    let session_token = new_session_token();
    state
        .store
        .create_session(
            NewSession {
                token_hash: sha256_hex(session_token.expose_secret()),
                user_id: user.id.clone(),
                expires_at: now + SESSION_TTL,
            },
            now,
        )
        .await?;
    tracing::info!(user.id = %user.id, replaced_session = replacing.is_some(), "dashboard sign-in");
    let next = cookie(headers, NEXT_COOKIE)
        .and_then(session::decode)
        .map(|p| local_path(Some(&p)))
        .unwrap_or_else(|| "/".into());
    let mut resp = see_other(&next);
    let h = resp.headers_mut();
    if let Some(c) = session::session_cookie(state, headers, &session_token) {
        h.append(header::SET_COOKIE, c);
    }
    if let Some(c) = set_cookie(state, headers, NEXT_COOKIE, "", chrono::Duration::zero()) {
        h.append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// The user signing in as `email`: an existing one (made an administrator if the admin emails
/// name them), or a new one when the configuration admits them.
async fn user_for_sign_in(state: &AppState, email: &str, now: DateTime<Utc>) -> PageResult<User> {
    let system = Actor {
        user_id: None,
        credential_id: None,
        credential_kind: "dashboard_sign_in".into(),
    };
    let config = &state.config;
    match find_user(&*state.store, email).await? {
        Some(user) if !user.admin && config.sign_in.is_admin_email(&user.email) => Ok(state
            .store
            .set_user_admin(&user.id, true, &system, now)
            .await?),
        Some(user) => Ok(user),
        None if config.sign_in.may_sign_up(email) => Ok(state
            .store
            .create_user(
                NewUser {
                    email: email.to_string(),
                    name: None,
                    admin: config.sign_in.is_admin_email(email),
                },
                &system,
                now,
            )
            .await?),
        None => Err(PageError::forbidden(
            "This email address isn't allowed to sign in on this instance.",
        )),
    }
}

/// A form that carries nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

impl CsrfForm {
    pub fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// `POST /logout`: ends the session everywhere (it is the database row that ends).
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: SignedIn,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    who.check_csrf(&state, form.csrf.as_deref())?;
    state
        .store
        .end_session(&who.token_hash(), state.now())
        .await?;
    let mut resp = see_other("/login").into_response();
    if let Some(c) = set_cookie(
        &state,
        &headers,
        SESSION_COOKIE,
        "",
        chrono::Duration::zero(),
    ) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(resp)
}

/// The response to a form that could not be read.
pub fn bad_form() -> Response {
    PageError::bad_request("The form could not be read. Reload the page and try again.")
        .into_response()
}
