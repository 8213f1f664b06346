//! The page shell, the headers every page is sent with, and error pages.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use taskgate_server::error::ApiError;
use taskgate_store::{StoreError, User};

use crate::assets;

/// The Content-Security-Policy of every page: nothing but this origin's own stylesheet,
/// script and forms; no inline code, frames or plug-ins.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the header shows of the signed-in user, and the token its sign-out form carries.
pub struct Viewer<'a> {
    pub user: &'a User,
    pub csrf: &'a str,
}

/// A whole page.
pub fn page(title: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · taskgate" }
                link rel="stylesheet" href=(assets::css_path());
                script src=(assets::js_path()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "taskgate" }
                    @if let Some(v) = viewer {
                        nav aria-label="Main" {
                            a href="/" { "Projects" }
                            a href="/account/tokens" { "Tokens" }
                            @if v.user.admin { a href="/admin" { "Admin" } }
                        }
                        span.muted { (v.user.email) }
                        form method="post" action="/logout" {
                            input type="hidden" name="_csrf" value=(v.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// An HTML response with the page headers: the CSP, no caching (every page is someone's
/// own, and some show secrets), no referrer (URLs carry one-time codes).
pub fn send(markup: Markup) -> Response {
    send_with(StatusCode::OK, markup, CSP)
}

/// [`send`] with another status and policy.
pub fn send_with(status: StatusCode, markup: Markup, csp: &str) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// A 303 to `location` (post/redirect/get).
pub fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// An error shown as a page: the status and a sentence saying what to do.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "There is nothing here.")
    }

    pub fn not_found_with(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_string();
        send_with(
            self.status,
            page(
                &title,
                None,
                html! {
                    h1 { (title) }
                    p.panel role="alert" { (self.message) }
                    p { a href="/" { "Back to your projects" } }
                },
            ),
            CSP,
        )
    }
}

/// The API's refusals keep their status and words: a page refuses what the API would.
impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        let mut message = e
            .body
            .get("error")
            .and_then(|v| v.as_str())
            .unwrap_or("Something went wrong.")
            .to_string();
        // Upstream-shaped query errors name the parameter and the problem in `details`.
        if let Some(detail) = e
            .body
            .get("details")
            .and_then(|d| d.get(0))
            .and_then(|d| d.get("message"))
            .and_then(|m| m.as_str())
        {
            message = format!("{message}: {detail}");
        }
        Self::new(e.status, message)
    }
}

impl From<taskgate_core::Problem> for PageError {
    /// A use case's refusal keeps its words: a page refuses what the API would.
    fn from(p: taskgate_core::Problem) -> Self {
        ApiError::from(p).into()
    }
}

impl From<taskgate_engine::Error> for PageError {
    fn from(e: taskgate_engine::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

pub type PageResult<T = Response> = Result<T, PageError>;

/// `2026-11-28 14:05 UTC` inside a `<time>` element.
pub fn time(at: chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {
            (at.format("%Y-%m-%d %H:%M UTC"))
        }
    }
}
