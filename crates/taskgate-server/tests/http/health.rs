use axum::http::{Method, StatusCode};

use crate::common::{Backend, TestApp};
use crate::on_both;

async fn health_and_readiness_answer(b: Backend) {
    let app = TestApp::new(b).await;
    let r = app.request(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let r = app.request(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    // A database that is gone makes the server unready, never dead.
    app.state.store.close().await;
    let r = app.request(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = app.request(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    app.cleanup().await;
}

async fn metrics_count_requests_by_route_template(b: Backend) {
    let app = TestApp::new(b).await;
    let (project, _) = app.project_with_key("prod").await;
    app.get(
        &format!("/api/v1/projects/{project}/prod"),
        &app.admin_token,
    )
    .await;
    let r = app.request(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("taskgate_http_requests_total"),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains(r#"route="/api/v1/projects/{projectRef}/{env}""#),
        "route templates, not raw paths"
    );
    assert!(!r.text.contains(&project), "raw ids never become labels");
    assert!(r.text.contains("taskgate_db_queries_total"));
    assert!(r.text.contains("taskgate_http_request_duration_seconds"));
    assert!(r.text.contains("taskgate_db_pool_connections"));
    app.cleanup().await;
}

async fn openapi_document_lists_every_route(b: Backend) {
    let app = TestApp::new(b).await;
    let r = app
        .request(Method::GET, "/api/openapi.json", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["openapi"].as_str().map(|v| v.starts_with("3.1")),
        Some(true)
    );
    // Every documented operation is served: with a garbage credential it is refused or
    // answered, never the router's fallback 404 or a 405.
    let paths = r.body["paths"].as_object().cloned().unwrap_or_default();
    assert!(paths.len() > 40, "{} paths documented", paths.len());
    let mut unrouted = Vec::new();
    for (path, ops) in &paths {
        let concrete: String = path
            .split('/')
            .map(|s| match s {
                // The one parameter whose value picks a handler: an unknown signal is a 404.
                "{signal}" => "traces",
                s if s.starts_with('{') => "x",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let answer = app
                .request(m, &concrete, Some("tr_garbage"), None, &[])
                .await;
            let fallback =
                answer.status == StatusCode::NOT_FOUND && answer.body["error"] == "Not found";
            if fallback || answer.status == StatusCode::METHOD_NOT_ALLOWED {
                unrouted.push(format!(
                    "{method} {path}: {} {}",
                    answer.status, answer.text
                ));
            }
        }
    }
    assert!(
        unrouted.is_empty(),
        "documented but not routed:\n{}",
        unrouted.join("\n")
    );
    let page = app.request(Method::GET, "/api/docs", None, None, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("/api/openapi.json"));
    assert!(
        !page.text.contains("<script src=\"http"),
        "the reference page loads nothing from the network"
    );
    app.cleanup().await;
}

async fn unknown_routes_are_json_404s(b: Backend) {
    let app = TestApp::new(b).await;
    let r = app.request(Method::GET, "/nope", None, None, &[]).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("Not found"))
    );
    app.cleanup().await;
}

async fn browsers_may_call_with_public_tokens(b: Backend) {
    let app = TestApp::new(b).await;
    let preflight = axum::http::Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v3/runs/run_x")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = app.send(preflight).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert_eq!(
        r.headers["access-control-allow-headers"], "authorization",
        "a wildcard never covers Authorization, so the requested headers are named back"
    );
    assert_eq!(r.headers["access-control-allow-methods"], "*");
    assert!(r.headers["vary"].to_str().unwrap().contains("origin"));
    // A preflight that names no headers is answered with the wildcard.
    let bare = axum::http::Request::builder()
        .method(Method::OPTIONS)
        .uri("/api/v1/auth/credential")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .body(axum::body::Body::empty())
        .unwrap();
    let r = app.send(bare).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["access-control-allow-headers"], "*");
    let (_, key) = app.project_with_key("prod").await;
    let req = axum::http::Request::post("/api/v1/tasks/t/trigger")
        .header("origin", "https://app.example.com")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{}"))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert_eq!(
        r.headers["access-control-expose-headers"], "*",
        "the run token headers are readable"
    );
    app.cleanup().await;
}

async fn sibling_paths_reach_their_own_routes(b: Backend) {
    let app = TestApp::new(b).await;
    let admin = app.admin_token.clone();
    let (_, project) = app.org_and_project(&admin).await;
    let key = app.env_key(&admin, &project, "dev").await;
    // Each of these used to be taken for `{projectRef}/{env}` and refused as a PAT route.
    let r = app
        .get(&format!("/api/v1/projects/{project}/envvars"), &key)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/projects/{project}/dev-status"), &admin)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/projects/{project}/dev"), &admin)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.cleanup().await;
}

async fn a_wrong_method_is_a_json_405_naming_the_allowed_ones(b: Backend) {
    let app = TestApp::new(b).await;
    let (project, key) = app.project_with_key("prod").await;
    let r = app
        .get(
            &format!("/api/v1/projects/{project}/background-workers"),
            &key,
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body["error"], "Method Not Allowed: use POST");
    assert_eq!(r.body["allowed"], serde_json::json!(["POST"]));
    assert_eq!(r.headers["allow"], "POST");
    app.cleanup().await;
}

/// The request counter of `GET /healthz` answered 200, as `/metrics` shows it.
async fn healthz_count(app: &TestApp) -> u64 {
    let r = app.request(Method::GET, "/metrics", None, None, &[]).await;
    r.text
        .lines()
        .find(|l| {
            l.starts_with("taskgate_http_requests_total{")
                && l.contains(r#"method="GET""#)
                && l.contains(r#"route="/healthz""#)
                && l.contains(r#"status="200""#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn every_repeated_request_is_counted(b: Backend) {
    let app = TestApp::new(b).await;
    app.request(Method::GET, "/healthz", None, None, &[]).await;
    let before = healthz_count(&app).await;
    for _ in 0..3 {
        app.request(Method::GET, "/healthz", None, None, &[]).await;
    }
    // Other tests in this process may count too, never fewer.
    assert!(healthz_count(&app).await >= before + 3);
    app.cleanup().await;
}

async fn every_response_is_counted_with_bounded_labels(b: Backend) {
    let app = TestApp::new(b).await;
    app.request(Method::GET, "/no/such/route/xyz123", None, None, &[])
        .await;
    let invented = Method::from_bytes(b"FROBNICATE42").unwrap();
    app.request(invented, "/healthz", None, None, &[]).await;
    app.request(Method::GET, "/api/v3/runs/run_x", None, None, &[])
        .await;
    let r = app.request(Method::GET, "/metrics", None, None, &[]).await;
    let line = |needle: &str| {
        r.text
            .lines()
            .any(|l| l.starts_with("taskgate_http_requests_total") && l.contains(needle))
    };
    assert!(
        line(r#"route="unmatched""#) && line(r#"status="404""#),
        "404s are counted"
    );
    assert!(
        line(r#"method="OTHER""#),
        "invented methods share one label"
    );
    assert!(!r.text.contains("FROBNICATE42") && !r.text.contains("xyz123"));
    assert!(
        line(r#"status="401""#),
        "refusals before any handler are counted"
    );
    app.cleanup().await;
}

on_both!(
    sibling_paths_reach_their_own_routes,
    a_wrong_method_is_a_json_405_naming_the_allowed_ones,
    every_response_is_counted_with_bounded_labels,
    every_repeated_request_is_counted,
    browsers_may_call_with_public_tokens,
    health_and_readiness_answer,
    metrics_count_requests_by_route_template,
    openapi_document_lists_every_route,
    unknown_routes_are_json_404s
);
