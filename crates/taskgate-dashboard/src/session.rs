//! Who is signed in: the session cookie, the [`SignedIn`] extractor, the CSRF check every form
//! passes, and one-time flash messages.
//!
//! The cookie holds a random session token signed with the server's session secret; the
//! database holds its hash. A session therefore survives a restart and works on every node,
//! ends on sign-out, and ends at once when its user is gone or an administrator loses the flag
//! (the lookup joins the user as they are now).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use taskgate_core::hash::sha256_hex;
use taskgate_core::signin::{csrf_matches, csrf_token, sign_session_cookie, verify_session_cookie};
use taskgate_server::auth::{UserCredential, UserPrincipal};
use taskgate_server::public_url::public_url;
use taskgate_server::state::AppState;
use taskgate_store::Session;

use crate::layout::{see_other, PageError, Viewer};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tg_session";
/// Where to go once signed in (set by `/login?next=…`).
pub const NEXT_COOKIE: &str = "tg_next";
/// A one-time message for the next page.
pub const FLASH_COOKIE: &str = "tg_flash";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::days(30);

/// A signed-in user. As an extractor, a request without a live session is sent to the
/// sign-in page (and back here afterwards).
pub struct SignedIn {
    pub session: Session,
    token: String,
    csrf: String,
}

impl SignedIn {
    /// The user as the API's policy code sees them: their whole role, as with a PAT.
    pub fn principal(&self) -> UserPrincipal {
        UserPrincipal {
            user: self.session.user.clone(),
            credential: UserCredential::Session {
                session_id: self.session.id.clone(),
            },
        }
    }

    /// The CSRF token of this session, for the forms of a page.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// The page header's view of this user.
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            user: &self.session.user,
            csrf: &self.csrf,
        }
    }

    /// Refuses a form whose CSRF token is missing or not this session's.
    pub fn check_csrf(&self, state: &AppState, presented: Option<&str>) -> Result<(), PageError> {
        let secret = state.session_secret.expose_secret();
        match presented {
            Some(p) if csrf_matches(secret, &self.token, p) => Ok(()),
            _ => Err(PageError::forbidden(
                "This form did not come from this page of your session. Reload the page and try again.",
            )),
        }
    }

    /// The hash the store knows this session by.
    pub fn token_hash(&self) -> String {
        sha256_hex(&self.token)
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match signed_in(&parts.headers, state).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                if parts.method == axum::http::Method::GET {
                    Err(see_other(&format!("/login?next={}", encode(next))))
                } else {
                    Err(PageError::new(
                        StatusCode::UNAUTHORIZED,
                        "Your session has ended. Sign in again.",
                    )
                    .into_response())
                }
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The live session the request's cookie names, if any.
pub async fn signed_in(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<SignedIn>, PageError> {
    let secret = state.session_secret.expose_secret();
    let Some(token) =
        cookie(headers, SESSION_COOKIE).and_then(|v| verify_session_cookie(secret, v))
    else {
        return Ok(None);
    };
    let Some(session) = state
        .store
        .find_session(&sha256_hex(token), state.now())
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(SignedIn {
        session,
        csrf: csrf_token(secret, token),
        token: token.to_string(),
    }))
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path `/`, Secure when the dashboard is served
/// over HTTPS. `max_age` 0 deletes the cookie.
pub fn set_cookie(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    value: &str,
    max_age: Duration,
) -> Option<HeaderValue> {
    let secure = if public_url(state, headers).starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age.num_seconds().max(0)
    ))
    .ok()
}

/// The session cookie for a new session token.
pub fn session_cookie(
    state: &AppState,
    headers: &HeaderMap,
    token: &SecretString,
) -> Option<HeaderValue> {
    let value = sign_session_cookie(state.session_secret.expose_secret(), token.expose_secret());
    set_cookie(state, headers, SESSION_COOKIE, &value, SESSION_TTL)
}

/// A flash message for the next page: sealed with the master key (it may hold a secret shown
/// once), readable once.
pub fn flash(state: &AppState, headers: &HeaderMap, message: &str) -> Option<HeaderValue> {
    let sealed = state
        .vault
        .seal_secret(&SecretString::from(message.to_string()))
        .sealed;
    set_cookie(
        state,
        headers,
        FLASH_COOKIE,
        &encode(&sealed),
        Duration::minutes(5),
    )
}

/// A 303 to `location` (post/redirect/get) carrying `message` for the page there.
pub fn redirect_with_flash(
    state: &AppState,
    headers: &HeaderMap,
    location: &str,
    message: &str,
) -> Response {
    let mut resp = see_other(location);
    if let Some(c) = flash(state, headers, message) {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// `resp`, clearing the flash cookie it showed (the second value of [`take_flash`]).
pub fn clearing_flash(mut resp: Response, clear: Option<HeaderValue>) -> Response {
    if let Some(c) = clear {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// The flash message of this request, if any, and the header that clears it.
pub fn take_flash(state: &AppState, headers: &HeaderMap) -> (Option<String>, Option<HeaderValue>) {
    let Some(raw) = cookie(headers, FLASH_COOKIE) else {
        return (None, None);
    };
    let message = decode(raw)
        .and_then(|sealed| state.vault.open_secret(&sealed).ok())
        .map(|s| s.expose_secret().to_string());
    (
        message,
        set_cookie(state, headers, FLASH_COOKIE, "", Duration::zero()),
    )
}

/// Percent-encodes everything but unreserved characters, for query strings and cookies.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode`]; `None` for a malformed escape or invalid UTF-8.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A path to return to after sign-in: a path on this server
/// ([`taskgate_core::return_path::return_path`]), else `/`.
pub fn local_path(next: Option<&str>) -> String {
    taskgate_core::return_path::return_path_or_root(next)
}
