//! Queues over HTTP, as the SDK's `queues.*` calls them: counts of running and queued runs,
//! pause and resume (a paused queue's runs are not dequeued), limit overrides that hold until
//! reset, and upstream's refusals.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::common::{Backend, TestApp};
use crate::engine::{dequeue, dev_project, manifest, trigger};
use crate::on_both;

/// Registers `fan` (on the shared queue `shared`, limit 2) and `solo` (its own queue).
async fn register(app: &TestApp, project: &str, key: &str) -> Value {
    let mut m = manifest(&["fan", "solo"]);
    m["metadata"]["tasks"][0]["queue"] = json!({ "name": "shared", "concurrencyLimit": 2 });
    m["metadata"]["queues"] = json!([{ "name": "shared", "concurrencyLimit": 2 }]);
    let r = app
        .post(
            &format!("/api/v1/projects/{project}/background-workers"),
            key,
            m,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

/// The tasks of dequeued runs (a message names its run; `solo` is the one run of `solo`).
fn tasks_of(messages: &[Value], solo: &str) -> Vec<&'static str> {
    let mut t: Vec<&'static str> = messages
        .iter()
        .map(|m| {
            if m["run"]["friendlyId"] == solo {
                "solo"
            } else {
                "fan"
            }
        })
        .collect();
    t.sort();
    t
}

async fn queues_are_listed_paused_and_overridden(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.engine.dequeue_wait = std::time::Duration::ZERO;
    })
    .await;
    let (project, key) = dev_project(&app).await;
    let worker = register(&app, &project, &key).await;
    trigger(&app, &key, "fan", json!({})).await;
    trigger(&app, &key, "fan", json!({})).await;
    trigger(&app, &key, "fan", json!({})).await;
    let solo_run = trigger(&app, &key, "solo", json!({})).await;

    let r = app.get("/api/v1/queues", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["pagination"],
        json!({ "currentPage": 1, "totalPages": 1, "count": 2 })
    );
    let shared = r.body["data"][0].clone();
    assert_eq!(shared["name"], "shared");
    assert_eq!(shared["type"], "custom");
    assert_eq!(shared["version"], "V1");
    assert_eq!(
        (shared["queued"].as_u64(), shared["running"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(shared["concurrencyLimit"], 2);
    assert_eq!(
        shared["concurrency"],
        json!({ "current": 2, "base": 2, "override": null, "overriddenAt": null, "overriddenBy": null })
    );
    let solo = &r.body["data"][1];
    assert_eq!(
        (solo["name"].as_str(), solo["type"].as_str()),
        (Some("solo"), Some("task"))
    );
    assert_eq!(solo["concurrencyLimit"], Value::Null);
    let shared_id = shared["id"].as_str().unwrap().to_string();
    assert!(shared_id.starts_with("queue_"));

    // By id, by task id, by custom name; a page of one.
    for path in [
        format!("/api/v1/queues/{shared_id}"),
        format!("/api/v1/queues/{shared_id}?type=id"),
        "/api/v1/queues/shared?type=custom".to_string(),
    ] {
        let r = app.get(&path, &key).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.body["id"], shared_id.as_str(), "{path}");
    }
    let r = app.get("/api/v1/queues/solo?type=task", &key).await;
    assert_eq!(r.body["name"], "solo", "{}", r.text);
    let r = app.get("/api/v1/queues?page=2&perPage=1", &key).await;
    assert_eq!(r.body["data"][0]["name"], "solo", "{}", r.text);
    assert_eq!(r.body["pagination"]["totalPages"], 2);

    // Pausing `solo` keeps its run queued; the shared queue still gives its limit's worth.
    let r = app
        .post(
            "/api/v1/queues/solo/pause",
            &key,
            json!({ "type": "task", "action": "pause" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["paused"], true);
    let mut taken = dequeue(&app, &key, &worker).await;
    taken.extend(dequeue(&app, &key, &worker).await);
    taken.extend(dequeue(&app, &key, &worker).await);
    assert_eq!(
        tasks_of(&taken, &solo_run),
        vec!["fan", "fan"],
        "two of `shared`, none of the paused queue"
    );
    let r = app.get(&format!("/api/v1/queues/{shared_id}"), &key).await;
    assert_eq!(
        (r.body["running"].as_u64(), r.body["queued"].as_u64()),
        (Some(2), Some(1))
    );
    let r = app
        .post(
            "/api/v1/queues/solo/pause",
            &key,
            json!({ "type": "task", "action": "resume" }),
        )
        .await;
    assert_eq!(r.body["paused"], false, "{}", r.text);
    assert_eq!(
        tasks_of(&dequeue(&app, &key, &worker).await, &solo_run),
        vec!["solo"]
    );

    // An override raises the limit until reset.
    let r = app
        .post(
            &format!("/api/v1/queues/{shared_id}/concurrency/override"),
            &key,
            json!({ "concurrencyLimit": 3 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["concurrencyLimit"], 3);
    assert_eq!(r.body["concurrency"]["base"], 2);
    assert_eq!(r.body["concurrency"]["override"], 3);
    assert!(r.body["concurrency"]["overriddenAt"].is_string());
    assert_eq!(
        tasks_of(&dequeue(&app, &key, &worker).await, &solo_run),
        vec!["fan"],
        "the third slot"
    );
    let r = app
        .post(
            "/api/v1/queues/shared/concurrency/reset",
            &key,
            json!({ "type": "custom" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["concurrency"]["current"], 2);
    assert_eq!(r.body["concurrency"]["override"], Value::Null);
    let r = app
        .post(
            "/api/v1/queues/shared/concurrency/reset",
            &key,
            json!({ "type": "custom" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["error"], "Queue is not overridden");
    app.cleanup().await;
}

async fn bad_queue_requests_are_refused_as_upstream(b: Backend) {
    let app = TestApp::new(b).await;
    let (project, key) = dev_project(&app).await;
    register(&app, &project, &key).await;
    let r = app.get("/api/v1/queues/queue_nope", &key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(r.body["error"], "queue-not-found");
    let refused = [
        (
            "/api/v1/queues/shared/pause",
            json!({ "type": "custom", "action": "stop" }),
        ),
        (
            "/api/v1/queues/shared/pause",
            json!({ "type": "queue", "action": "pause" }),
        ),
        ("/api/v1/queues/shared/pause", json!({ "type": "custom" })),
        (
            "/api/v1/queues/shared/concurrency/override",
            json!({ "type": "custom", "concurrencyLimit": -1 }),
        ),
        (
            "/api/v1/queues/shared/concurrency/override",
            json!({ "type": "custom", "concurrencyLimit": 100_001 }),
        ),
        (
            "/api/v1/queues/shared/concurrency/override",
            json!({ "type": "custom", "concurrencyLimit": "2" }),
        ),
    ];
    for (path, body) in refused {
        let r = app.post(path, &key, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{path} {body}: {}",
            r.text
        );
    }
    let r = app
        .post(
            "/api/v1/queues/shared/pause",
            &key,
            json!({ "type": "custom", "action": "pause", "pad": "x".repeat(8 * 1024) }),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    let r = app.get("/api/v1/queues?perPage=0", &key).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = app.get("/api/v1/queues?perPage=1000", &key).await;
    assert_eq!(r.status, StatusCode::OK, "more than 100 is 100: {}", r.text);

    // A public token reads a queue with `read:queues`, and nothing else of the API.
    let token = |scopes: Value| {
        let app = &app;
        let key = key.clone();
        async move {
            app.post(
                "/api/v1/auth/public-tokens",
                &key,
                json!({ "scopes": scopes }),
            )
            .await
            .body["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let reader = token(json!(["read:queues"])).await;
    let r = app.get("/api/v1/queues/shared?type=custom", &reader).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let other = token(json!(["read:runs"])).await;
    let r = app.get("/api/v1/queues/shared?type=custom", &other).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        app.get("/api/v1/queues", &reader).await.status,
        StatusCode::UNAUTHORIZED,
        "listing takes the secret key"
    );
    let r = app
        .post(
            "/api/v1/queues/shared/pause",
            &reader,
            json!({ "type": "custom", "action": "pause" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // Another environment's key finds nothing.
    let (_, other_key) = app.project_with_key("prod").await;
    let shared = app
        .get("/api/v1/queues/shared?type=custom", &key)
        .await
        .body["id"]
        .clone();
    let r = app
        .get(
            &format!("/api/v1/queues/{}", shared.as_str().unwrap()),
            &other_key,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    app.cleanup().await;
}

on_both!(
    queues_are_listed_paused_and_overridden,
    bad_queue_requests_are_refused_as_upstream
);
