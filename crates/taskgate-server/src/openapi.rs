//! The OpenAPI 3.1 document, generated from the route definitions registered in
//! [`crate::router`], and a self-contained reference page that renders it with no network
//! access (no CDN: the page's script is inline).

use axum::response::Html;
use utoipa::OpenApi;

/// Document-level metadata; paths and schemas come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "taskgate",
        description = "Self-hostable control plane for trigger.dev-compatible task platforms: tenancy, \
                       environment keys with zero-downtime rotation, public access tokens, personal and \
                       delegated user tokens. Wire-compatible with @trigger.dev/sdk and the trigger.dev CLI 4.8.3."
    ),
    tags(
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "tenancy", description = "Organizations, members and projects (personal access token or user-actor token)"),
        (name = "keys", description = "Environment secret keys, rotation and branches"),
        (name = "public tokens", description = "Public access tokens (HS256 JWTs signed with an environment key)"),
        (name = "tokens", description = "Personal access tokens"),
        (name = "user tokens", description = "Delegated user-actor tokens and their exchange for environment JWTs"),
        (name = "admin", description = "Platform administration (administrator's personal access token)"),
        (name = "runs", description = "Runs for the official SDK: trigger, batch, list, retrieve, cancel, replay"),
        (name = "realtime", description = "Run feed (Electric shape protocol) and run streams (SSE)"),
        (name = "engine", description = "What `trigger.dev dev` runs against: worker registration, dequeue, attempts, presence, OTLP"),
        (name = "envvars", description = "Environment variables (sealed at rest)"),
    )
)]
pub struct ApiDoc;

/// The reference page served at `/api/docs`.
pub async fn docs_page() -> Html<&'static str> {
    Html(include_str!("openapi_page.html"))
}
