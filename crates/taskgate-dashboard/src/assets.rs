//! The stylesheet and script, compiled into the binary and served under names that carry a
//! hash of their content, so browsers may cache them for good and a new build is fetched at
//! once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use taskgate_core::hash::sha256_hex;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// An asset's path: `/assets/<name>.<first 12 hex of its SHA-256>.<ext>`.
fn hashed(name: &str, ext: &str, body: &str) -> String {
    format!("/assets/{name}.{}.{ext}", &sha256_hex(body)[..12])
}

static CSS_PATH: LazyLock<String> = LazyLock::new(|| hashed("app", "css", CSS));
static JS_PATH: LazyLock<String> = LazyLock::new(|| hashed("app", "js", JS));

pub fn css_path() -> &'static str {
    &CSS_PATH
}

pub fn js_path() -> &'static str {
    &JS_PATH
}

/// `GET /assets/{file}`: an asset by its hashed name; any other name is a 404.
pub async fn asset(Path(file): Path<String>) -> Response {
    let path = format!("/assets/{file}");
    let (body, kind) = if path == *CSS_PATH {
        (CSS, "text/css; charset=utf-8")
    } else if path == *JS_PATH {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
