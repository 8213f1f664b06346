//! What taskgate does not serve, said plainly. A request to a trigger.dev route whose subject
//! taskgate has no part of (remote builds, worker groups, queries, dashboards, prompts, webhooks, monitoring alerts, concurrency limits,
//! reports, …) answers 404 with a JSON error naming the subject, which the official CLI and
//! its MCP server print as they are; any other unknown path is a bare `Not found`.
//! docs/compatibility.md has the same table for people.

use axum::http::{Method, Uri};
use axum::routing::any;
use axum::Router;

use crate::error::ApiError;

/// Route prefixes, a segment at a time, and what they are about.
const UNSERVED: &[(&str, &str)] = &[
    (
        "/api/v2/deployments",
        "deployments v2 (`trigger.dev deploy` uses v1)",
    ),
    (
        "/api/v3/deployments",
        "deployments v3 (`trigger.dev deploy` uses v1)",
    ),
    ("/api/v1/remote-build-provider-status", "remote builds"),
    ("/api/v1/workers", "worker groups"),
    ("/api/v1/query/dashboards", "dashboards"),
    ("/api/v1/query", "queries"),
    ("/api/v1/prompts", "prompts"),
    ("/api/v1/webhooks", "webhooks"),
    ("/api/v1/reports", "reports"),
    ("/api/v1/concurrency-limits", "concurrency limits"),
    ("/api/v1/sessions", "sessions"),
    ("/api/v1/bulk-actions", "bulk actions"),
];

/// Under `/api/v1/projects/{ref}/`: the segment after the ref (or after `{ref}/{env}/`) and
/// what it is about.
const UNSERVED_IN_PROJECT: &[(&str, &str)] = &[
    ("monitoring-alerts", "monitoring alerts"),
    ("monitoring-alert-capabilities", "monitoring alerts"),
    ("deployments", "deployments"),
];

/// The subject of `path` when it is a route taskgate knowingly does not serve.
pub fn unserved_subject(path: &str) -> Option<&'static str> {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if let Some((_, subject)) = UNSERVED.iter().find(|(prefix, _)| under(prefix)) {
        return Some(subject);
    }
    let rest = path.strip_prefix("/api/v1/projects/")?;
    // `{ref}/{segment}…` or `{ref}/{env}/{segment}…`.
    let segments: Vec<&str> = rest.split('/').take(3).collect();
    segments.iter().skip(1).find_map(|segment| {
        UNSERVED_IN_PROJECT
            .iter()
            .find(|(name, _)| name == segment)
            .map(|(_, subject)| *subject)
    })
}

/// Routes for the unserved subjects that sit where a served route's parameter would take
/// them (`/api/v1/projects/{ref}/monitoring-alerts` looks like `/api/v1/projects/{ref}/{env}`):
/// a static segment wins over a parameter, so these answer as unserved, whatever the method.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new();
    for (name, _) in UNSERVED_IN_PROJECT {
        router = router
            .route(
                &format!("/api/v1/projects/{{projectRef}}/{name}"),
                any(fallback),
            )
            .route(
                &format!("/api/v1/projects/{{projectRef}}/{name}/{{*rest}}"),
                any(fallback),
            );
    }
    router
}

/// The answer to a request no route took. Under the prefixes the SDK, the CLI and workers
/// call (`/api/`, `/engine/`, `/realtime/`), it says plainly that taskgate does not serve the
/// route, so a task's error names what is missing rather than a bare "Not found".
pub async fn fallback(method: Method, uri: Uri) -> ApiError {
    let path = uri.path();
    match unserved_subject(path) {
        Some(subject) => ApiError::not_found(format!(
            "taskgate does not serve {subject}: this trigger.dev route has no counterpart in \
             taskgate (its documentation lists what it serves)"
        )),
        None if ["/api/", "/engine/", "/realtime/"]
            .iter()
            .any(|p| path.starts_with(p)) =>
        {
            ApiError::not_found(format!(
                "taskgate does not serve {method} {}: no route here answers it (its \
                 documentation lists what it serves)",
                path.chars().take(200).collect::<String>()
            ))
        }
        None => ApiError::not_found("Not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::unserved_subject;

    #[test]
    fn subjects_are_found_by_whole_segments() {
        assert_eq!(
            unserved_subject("/api/v1/remote-build-provider-status"),
            Some("remote builds")
        );
        assert_eq!(
            unserved_subject("/api/v1/workers/w1"),
            Some("worker groups")
        );
        // Deployments are served (v1, what the CLI calls).
        assert_eq!(unserved_subject("/api/v1/deployments"), None);
        assert_eq!(
            unserved_subject("/api/v1/query/dashboards/d1/widgets"),
            Some("dashboards")
        );
        assert_eq!(unserved_subject("/api/v1/query/schema"), Some("queries"));
        assert_eq!(unserved_subject("/api/v1/queryx"), None);
        assert_eq!(
            unserved_subject("/api/v1/projects/proj_abc/monitoring-alerts/a1"),
            Some("monitoring alerts")
        );
        assert_eq!(
            unserved_subject("/api/v1/projects/proj_abc/prod/deployments/d1"),
            Some("deployments")
        );
        assert_eq!(
            unserved_subject("/api/v1/projects/proj_abc/prod/deploy-settings"),
            None
        );
        assert_eq!(unserved_subject("/api/v1/projects/proj_abc/nothing"), None);
        assert_eq!(unserved_subject("/api/v1/runs/run_1"), None);
        assert_eq!(unserved_subject("/nowhere"), None);
    }
}
