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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::Value;

    /// Every `$ref` in `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    /// The whole document holds together, so that it cannot drift from the routes again:
    /// path parameters are exactly those of the path, every operation says which credentials
    /// it takes (`[{}]` for none) from the declared schemes, has answers and a unique id, and
    /// every reference resolves.
    #[test]
    fn the_document_is_consistent() {
        let doc = serde_json::to_value(crate::router::openapi_document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        assert!(!doc["servers"].as_array().unwrap().is_empty());
        let schemes: HashSet<&str> = doc["components"]["securitySchemes"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut ids = HashSet::new();
        let mut problems = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            let in_path: HashSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, op) in ops.as_object().unwrap() {
                let at = format!("{method} {path}");
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                let declared: HashSet<String> = params
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap().to_string())
                    .collect();
                let wanted: HashSet<String> = in_path.iter().map(|s| s.to_string()).collect();
                if declared != wanted {
                    problems.push(format!(
                        "{at}: path parameters {declared:?}, path has {wanted:?}"
                    ));
                }
                for p in &params {
                    let place = p["in"].as_str().unwrap_or("");
                    if !["path", "query", "header", "cookie"].contains(&place) {
                        problems.push(format!("{at}: parameter in {place:?}"));
                    }
                }
                match op["security"].as_array() {
                    Some(reqs) if !reqs.is_empty() => {
                        for name in reqs.iter().flat_map(|r| r.as_object().unwrap().keys()) {
                            if !schemes.contains(name.as_str()) {
                                problems.push(format!("{at}: unknown security scheme {name}"));
                            }
                        }
                    }
                    _ => problems.push(format!("{at}: no security declared")),
                }
                if op["responses"].as_object().is_none_or(|r| r.is_empty()) {
                    problems.push(format!("{at}: no responses"));
                }
                if let Some(id) = op["operationId"].as_str() {
                    if !ids.insert(id.to_string()) {
                        problems.push(format!("{at}: operationId {id} used twice"));
                    }
                }
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
            if doc["components"]["schemas"].get(name).is_none() {
                problems.push(format!("unresolved reference {r}"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
