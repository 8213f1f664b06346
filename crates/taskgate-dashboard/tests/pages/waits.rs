//! What waits look like in the dashboard: a waiting run says what it waits for and since when,
//! parent and child link to each other, and wait tokens are listed and completed from a page.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{Backend, TestApp};

/// A signed-in owner's project with a dev worker for `parent` and `child`: (the dev
/// environment's page base, dev key, worker id).
async fn dev_env(app: &TestApp) -> (String, String, String) {
    let token = app.admin_token.clone();
    let (org, project) = app.org_and_project(&token).await;
    let key = app.env_key(&token, &project, "dev").await;
    let tasks: Vec<Value> = ["parent", "child"]
        .iter()
        .map(|t| json!({ "id": t, "filePath": format!("src/{t}.ts") }))
        .collect();
    let r = app
        .api(
            Method::POST,
            &format!("/api/v1/projects/{project}/background-workers"),
            Some(&key),
            Some(json!({ "metadata": { "contentHash": "h", "packageVersion": "4.8.3", "tasks": tasks } })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let worker = r.json()["id"].as_str().unwrap().to_string();
    app.sign_in("admin@taskgate.local").await;
    (
        format!("/orgs/{org}/projects/{project}/env/dev"),
        key,
        worker,
    )
}

/// Triggers `task` with `options`, dequeues and starts it; returns its id.
async fn executing(app: &TestApp, key: &str, worker: &str, task: &str, options: Value) -> String {
    let r = app
        .api(
            Method::POST,
            &format!("/api/v1/tasks/{task}/trigger"),
            Some(key),
            Some(json!({ "payload": {}, "options": options })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let d = app
        .api(
            Method::POST,
            "/engine/v1/dev/dequeue",
            Some(key),
            Some(json!({ "currentWorker": worker })),
        )
        .await;
    let message = d.json()["dequeuedMessages"][0].clone();
    assert_eq!(message["run"]["friendlyId"], id.as_str(), "{}", d.text);
    let snapshot = message["snapshot"]["friendlyId"].as_str().unwrap();
    let s = app
        .api(
            Method::POST,
            &format!("/engine/v1/dev/runs/{id}/snapshots/{snapshot}/attempts/start"),
            Some(key),
            Some(json!({})),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    id
}

async fn a_waiting_run_shows_what_it_waits_for_and_its_family(b: Backend) {
    let app = TestApp::with_config(b, |c| c.engine.dequeue_wait = std::time::Duration::ZERO).await;
    let (base, key, worker) = dev_env(&app).await;
    // A run that waits for a time.
    let sleeper = executing(&app, &key, &worker, "child", json!({})).await;
    let until = app.state.now() + chrono::Duration::hours(1);
    let r = app
        .api(
            Method::POST,
            &format!("/engine/v1/runs/{sleeper}/wait/duration"),
            Some(&key),
            Some(json!({ "date": until })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let page = app.get(&format!("{base}/runs/{sleeper}")).await;
    assert!(page.text.contains("A time: "), "{}", page.text);
    assert!(page
        .text
        .contains(&until.format("%Y-%m-%d %H:%M UTC").to_string()));
    let parent = executing(&app, &key, &worker, "parent", json!({})).await;
    let r = app
        .api(
            Method::POST,
            "/api/v1/tasks/child/trigger",
            Some(&key),
            Some(json!({ "payload": {}, "options": { "parentRunId": parent, "resumeParentOnCompletion": true } })),
        )
        .await;
    let child = r.json()["id"].as_str().unwrap().to_string();
    let page = app.get(&format!("{base}/runs/{parent}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("Waiting for"), "{}", page.text);
    assert!(page.text.contains(&format!("href=\"{base}/runs/{child}\"")));
    assert!(page.text.contains("Runs it triggered"));
    assert!(page.text.contains(">waiting<"), "the status says it waits");
    let page = app.get(&format!("{base}/runs/{child}")).await;
    assert!(page.text.contains("Triggered by"));
    assert!(page
        .text
        .contains(&format!("href=\"{base}/runs/{parent}\"")));
    assert!(page.text.contains("which waits for it"));
    app.cleanup().await;
}

async fn tokens_are_listed_and_completed_from_the_page(b: Backend) {
    let app = TestApp::new(b).await;
    let (base, key, _) = dev_env(&app).await;
    let made = app
        .api(
            Method::POST,
            "/api/v1/waitpoints/tokens",
            Some(&key),
            Some(json!({ "tags": ["order:9"], "timeout": "1d" })),
        )
        .await;
    let token = made.json()["id"].as_str().unwrap().to_string();
    let page = app.get(&format!("{base}/waitpoints")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains(&token) && page.text.contains("WAITING"));
    assert!(page.text.contains("order:9"));
    let csrf = page.input_value("_csrf").unwrap();
    let complete = format!("{base}/waitpoints/{token}/complete");
    let bad = app
        .post_form(&complete, &[("_csrf", &csrf), ("value", "{not json")])
        .await;
    assert_eq!(bad.status, StatusCode::SEE_OTHER);
    let after = app.get(&format!("{base}/waitpoints")).await;
    assert!(
        after.text.contains("that value is not JSON"),
        "{}",
        after.text
    );
    assert!(after.text.contains("WAITING"), "not completed");
    let done = app
        .post_form(
            &complete,
            &[("_csrf", &csrf), ("value", "{\"approved\": true}")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let r = app
        .api(
            Method::GET,
            &format!("/api/v1/waitpoints/tokens/{token}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.json()["status"], "COMPLETED");
    assert_eq!(r.json()["output"], "{\"json\":{\"approved\":true}}");
    let page = app.get(&format!("{base}/waitpoints?status=WAITING")).await;
    assert!(page.text.contains("No tokens match."), "{}", page.text);
    assert_eq!(
        app.post_form(&complete, &[("value", "1")]).await.status,
        StatusCode::FORBIDDEN,
        "no CSRF token"
    );
    assert_eq!(
        app.get(&format!("{base}/waitpoints?status=NOPE"))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // A viewer reads no tokens.
    let org = base.split('/').nth(2).unwrap().to_string();
    app.user("viewer@example.com").await;
    app.api(
        Method::POST,
        &format!("/api/v1/orgs/{org}/members"),
        Some(&app.admin_token),
        Some(json!({ "email": "viewer@example.com", "role": "viewer" })),
    )
    .await;
    app.jar.lock().unwrap().clear();
    app.sign_in("viewer@example.com").await;
    assert_eq!(
        app.get(&format!("{base}/waitpoints")).await.status,
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}

crate::on_both!(
    a_waiting_run_shows_what_it_waits_for_and_its_family,
    tokens_are_listed_and_completed_from_the_page,
);
