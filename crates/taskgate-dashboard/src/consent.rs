//! `/account/authorization-code/{code}`: where a signed-in user approves `trigger.dev login`.
//!
//! Approving hands the approving browser an approval code: redirected to the CLI's loopback
//! port when the CLI listens on one, otherwise shown to paste into the terminal. The CLI needs
//! it, with the PKCE verifier only it holds, to redeem the login (see
//! `taskgate_server::routes::cli_login`).

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use maud::html;
use secrecy::ExposeSecret;
use taskgate_core::hash::sha256_hex;
use taskgate_core::signin::{new_approval_code, normalize_approval_code};
use taskgate_store::{AuthorizationCode, StoreError};

use crate::layout::{page, see_other, send, send_with, PageError, PageResult, CSP};
use crate::session::SignedIn;
use crate::signin::CsrfForm;
use taskgate_server::state::AppState;

/// The code if it can still be approved.
async fn pending(state: &AppState, code: &str) -> PageResult<AuthorizationCode> {
    let found = if code.len() <= 128 {
        state
            .store
            .find_authorization_code(&sha256_hex(code))
            .await?
    } else {
        None
    };
    match found {
        Some(c) if c.approved_by.is_some() => Err(PageError::new(
            StatusCode::CONFLICT,
            "This login was already approved. If that was not you, revoke the token named \"cli\" and run trigger.dev login again.",
        )),
        Some(c) if c.expires_at > state.now() => Ok(c),
        _ => Err(PageError::not_found_with(
            "This login has expired or does not exist. Run trigger.dev login again.",
        )),
    }
}

/// The consent page's policy: its form may also go to the CLI's loopback port, where the
/// approval redirects.
fn consent_csp(code: &AuthorizationCode) -> String {
    match code.callback_port {
        Some(port) => CSP.replace(
            "form-action 'self'",
            &format!("form-action 'self' http://127.0.0.1:{port}"),
        ),
        None => CSP.to_string(),
    }
}

/// `GET`: what approving means, and the button.
pub async fn consent_page(
    State(state): State<AppState>,
    who: SignedIn,
    Path(code): Path<String>,
) -> PageResult {
    let pending = pending(&state, &code).await?;
    let body = html! {
        h1 { "Authorize the trigger.dev CLI" }
        div.panel {
            p { "A trigger.dev CLI asks to sign in to this server as " strong { (who.session.user.email) } "." }
            p { "Approving gives it a personal access token named " code { "cli" } " that can do anything you can. You can revoke it at any time." }
            p.muted { "Only approve a login you started yourself, in your own terminal, a moment ago." }
            form method="post" {
                input type="hidden" name="_csrf" value=(who.csrf());
                button.primary type="submit" { "Authorize" }
                " "
                a href="/" { "Cancel" }
            }
        }
    };
    Ok(send_with(
        StatusCode::OK,
        page("Authorize the CLI", Some(&who.viewer()), body),
        &consent_csp(&pending),
    ))
}

/// `POST`: approves the login for the signed-in user.
pub async fn approve(
    State(state): State<AppState>,
    who: SignedIn,
    Path(code): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    who.check_csrf(&state, form.csrf())?;
    let pending = pending(&state, &code).await?;
    let approval = new_approval_code();
    let normal = normalize_approval_code(approval.expose_secret()).unwrap_or_default();
    match state
        .store
        .approve_authorization_code(
            &pending.code_hash,
            &who.session.user.id,
            &sha256_hex(&normal),
            state.now(),
        )
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict { .. }) => {
            return Err(PageError::new(
                StatusCode::CONFLICT,
                "This login was already approved.",
            ))
        }
        Err(StoreError::NotFound) => {
            return Err(PageError::not_found_with(
                "This login has expired. Run trigger.dev login again.",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user.id = %who.session.user.id, "CLI login approved");
    if let Some(port) = pending.callback_port {
        return Ok(see_other(&format!(
            "http://127.0.0.1:{port}/callback?approval_code={}",
            approval.expose_secret()
        )));
    }
    // Shown once: this answer is not cached, and reloading it re-posts an approval that
    // is refused.
    let body = html! {
        h1 { "Login approved" }
        div.panel role="status" {
            p { "Paste this code into the terminal that asked for it:" }
            p { code.secret #approval-code { (approval.expose_secret()) } " "
                button type="button" data-copy=(approval.expose_secret()) hidden { "Copy" } }
            p { "or run " code { "trigger.dev login --code " (approval.expose_secret()) } "." }
            p.muted { "The code works once, with the login that asked for it, for a few minutes." }
        }
    };
    Ok(send(page("Login approved", Some(&who.viewer()), body)))
}
