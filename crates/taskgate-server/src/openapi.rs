//! The OpenAPI 3.1 document, generated from the route definitions registered in
//! [`crate::router`], and a self-contained reference page that renders it with no network
//! access (no CDN: the page's script is inline).

use axum::response::Html;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
        (name = "deployments", description = "What `trigger.dev deploy` and `trigger.dev promote` call, and the deployments API"),
        (name = "waitpoints", description = "Wait tokens: made, listed, retrieved and completed (also by their callback URL)"),
        (name = "schedules", description = "Cron schedules: imperative ones made through the API, declarative ones from task code; time zones"),
        (name = "alerts", description = "Alert channels: signed webhooks and Slack incoming webhooks for failed runs and error groups"),
        (name = "queues", description = "Queues: their running and queued runs, pause and resume, and limit overrides"),
        (name = "envvars", description = "Environment variables (sealed at rest)"),
        (name = "errors", description = "Failed runs grouped by the fingerprint of their error; triage with attribution"),
    ),
    servers((url = "/", description = "The server serving this document")),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

/// The credentials routes declare in `security`: every one is a bearer token in
/// `Authorization`, told apart by its form.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |format: &str, description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(format)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "secretKey",
            bearer(
                "tr_<env>_…",
                "An environment's secret key (tr_dev_, tr_stg_, tr_prod_, tr_preview_), current or in its grace window",
            ),
        );
        components.add_security_scheme(
            "publicAccessToken",
            bearer(
                "JWT",
                "A public access token: an HS256 JWT signed with an environment's key, limited by its scopes",
            ),
        );
        components.add_security_scheme(
            "personalAccessToken",
            bearer(
                "tr_pat_…",
                "A user's personal access token (the /admin routes need an administrator's)",
            ),
        );
        components.add_security_scheme(
            "userActorToken",
            bearer(
                "tr_uat_…",
                "A delegated user-actor token: the user's role intersected with the token's cap",
            ),
        );
    }
}

/// What any route may answer besides its own outcomes, written into every operation so that
/// clients (and the schema-driven fuzzer) find every status they can get documented:
/// - 401 on every authenticated route, as JSON from the route, or as `application/problem+json`
///   when an `/api/*` request has no `Authorization` header at all (upstream's answer);
/// - 400 on every route that takes parameters or a body;
/// - 413 on every route that takes a body; 408 when the body does not arrive in time;
/// - 503 on every authenticated route: the database is unreachable, or the request missed its
///   deadline;
/// - 429 on every authenticated `/api/*` route the rate limiter does not exempt.
pub struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str, problem: bool| {
            let json = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let mut r = ResponseBuilder::new()
                .description(description)
                .content("application/json", json.clone());
            if problem {
                r = r.content("application/problem+json", json);
            }
            r.build()
        };
        use utoipa::PartialSchema;
        let components = openapi.components.get_or_insert_with(Default::default);
        components.schemas.insert(
            "RateLimitExceeded".into(),
            taskgate_api::ratelimit::RateLimitExceeded::schema(),
        );
        let limited = ResponseBuilder::new()
            .description("The credential's rate-limit bucket is empty: retry after `x-ratelimit-reset` (milliseconds since the epoch)")
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("RateLimitExceeded")))
                    .build(),
            )
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let rate_limited = crate::ratelimit::limited_path(path);
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let secured = op.security.as_ref().is_some_and(|reqs| {
                    reqs.iter()
                        .any(|r| serde_json::to_value(r).is_ok_and(|v| v != serde_json::json!({})))
                });
                let takes_input = op.parameters.as_ref().is_some_and(|p| !p.is_empty())
                    || op.request_body.is_some();
                let responses = &mut op.responses.responses;
                if secured {
                    // Replaced whatever the route wrote: the same error body, both types.
                    responses.insert(
                        "401".into(),
                        error("Missing, unknown, expired or revoked credential", true).into(),
                    );
                    if rate_limited {
                        responses.insert("429".into(), limited.clone().into());
                    }
                    responses.entry("503".into()).or_insert_with(|| {
                        error(
                            "The database is unreachable, or the request missed its deadline",
                            false,
                        )
                        .into()
                    });
                }
                if takes_input {
                    responses
                        .entry("400".into())
                        .or_insert_with(|| error("Invalid parameters or body", false).into());
                }
                if op.request_body.is_some() {
                    responses
                        .entry("413".into())
                        .or_insert_with(|| error("The body is over the size limit", false).into());
                    responses.entry("408".into()).or_insert_with(|| {
                        error("The body did not arrive within the body deadline", false).into()
                    });
                }
            }
        }
    }
}

/// The reference page served at `/api/docs`.
pub async fn docs_page() -> Html<&'static str> {
    Html(include_str!("openapi_page.html"))
}
