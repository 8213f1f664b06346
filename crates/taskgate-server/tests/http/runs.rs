//! Runs: trigger, list, retrieve, cancel, replay, batches.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};
use taskgate_core::jwt;

use crate::common::{t0, Backend, TestApp};
use crate::on_both;

pub async fn trigger(app: &TestApp, key: &str, task: &str, body: Value) -> crate::common::Response {
    app.post(&format!("/api/v1/tasks/{task}/trigger"), key, body)
        .await
}

pub async fn trigger_id(app: &TestApp, key: &str, task: &str, body: Value) -> String {
    let r = trigger(app, key, task, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

async fn debounced_triggers_share_one_delayed_run(b: Backend) {
    use taskgate_core::time::Clock;
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let body = |n: i64, mode: &str| json!({ "payload": { "n": n }, "options": { "debounce": { "key": format!("user-{mode}"), "delay": "5s", "mode": mode } } });
    let first = trigger_id(&app, &key, "digest", body(1, "leading")).await;
    app.clock.advance(chrono::Duration::seconds(2));
    let second = trigger_id(&app, &key, "digest", body(2, "leading")).await;
    assert_eq!(second, first);
    let run = app.get(&format!("/api/v3/runs/{first}"), &key).await;
    assert_eq!(run.body["status"], "DELAYED", "{}", run.text);
    assert_eq!(
        run.body["payload"],
        json!({ "n": 1 }),
        "leading keeps the first payload"
    );
    let until =
        chrono::DateTime::parse_from_rfc3339(run.body["delayedUntil"].as_str().unwrap()).unwrap();
    assert_eq!(
        until.with_timezone(&chrono::Utc),
        app.clock.now() + chrono::Duration::seconds(5)
    );

    let t1 = trigger_id(&app, &key, "digest", body(1, "trailing")).await;
    let t2 = trigger_id(&app, &key, "digest", body(2, "trailing")).await;
    assert_eq!(t2, t1);
    assert_ne!(t1, first, "another key");
    let run = app.get(&format!("/api/v3/runs/{t1}"), &key).await;
    assert_eq!(
        run.body["payload"],
        json!({ "n": 2 }),
        "trailing takes the last payload"
    );

    for bad in [
        json!({ "key": "", "delay": "5s" }),
        json!({ "key": "k", "delay": "500ms" }),
        json!({ "key": "k", "delay": "2026-01-01T00:00:00Z" }),
        json!({ "key": "k" }),
        json!({ "key": "k", "delay": "5s", "mode": "middle" }),
        json!({ "key": "k", "delay": "5s", "maxDelay": "forever" }),
        json!({ "key": "k".repeat(513), "delay": "5s" }),
    ] {
        let r = trigger(
            &app,
            &key,
            "digest",
            json!({ "payload": {}, "options": { "debounce": bad.clone() } }),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }
    app.cleanup().await;
}

async fn triggered_runs_are_retrievable_with_the_sdks_fields(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let payload = json!({ "json": { "a": 1, "d": "1970-01-01T00:00:00.000Z" }, "meta": { "values": { "d": ["Date"] } } }).to_string();
    let body = json!({ "payload": payload, "options": {
        "payloadType": "application/super+json", "tags": ["t1", "t2"], "idempotencyKey": "hash-1",
        "idempotencyKeyOptions": { "key": "my-key", "scope": "run" }, "ttl": "1h", "maxAttempts": 3,
        "metadata": "{\"progress\":1}", "metadataType": "application/json", "machine": "small-1x"
    }});
    let r = trigger(&app, &key, "hello", body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("run_"));
    assert_eq!(r.body["isCached"], false);
    // The run token: signed with the environment key, scoped to this run.
    let token = r.headers["x-trigger-jwt"].to_str().unwrap();
    let claims: Value =
        serde_json::from_str(r.headers["x-trigger-jwt-claims"].to_str().unwrap()).unwrap();
    assert_eq!(
        claims["scopes"],
        json!([
            format!("read:runs:{id}"),
            format!("write:inputStreams:{id}")
        ])
    );
    assert!(jwt::verify_hs256(token, key.as_bytes(), t0().timestamp()).is_ok());
    // The same idempotency key returns the same run.
    let again = trigger(&app, &key, "hello", body).await;
    assert_eq!(
        (again.body["id"].as_str(), again.body["isCached"].as_bool()),
        (Some(id.as_str()), Some(true))
    );

    let r = app.get(&format!("/api/v3/runs/{id}"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let run = &r.body;
    assert_eq!(run["status"], "QUEUED");
    assert_eq!(run["taskIdentifier"], "hello");
    assert_eq!(run["tags"], json!(["t1", "t2"]));
    assert_eq!(
        run["payload"],
        json!({ "a": 1, "d": "1970-01-01T00:00:00.000Z" })
    );
    assert_eq!(run["metadata"], json!({ "progress": 1 }));
    assert_eq!(run["idempotencyKey"], "my-key");
    assert_eq!(run["ttl"], "1h");
    assert_eq!(run["relatedRuns"], json!({}));
    assert_eq!(
        (run["isQueued"].as_bool(), run["isCompleted"].as_bool()),
        (Some(true), Some(false))
    );
    for absent in ["startedAt", "finishedAt", "output", "error", "batchId"] {
        assert!(
            run.get(absent).is_none(),
            "{absent} must be omitted, not null"
        );
    }
    let r = app.get("/api/v3/runs/run_doesnotexist", &key).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("Not found"))
    );
    assert_eq!(r.headers["x-should-retry"], "false");
    app.cleanup().await;
}

async fn retried_triggers_get_the_run_of_their_first_attempt(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let send = |token: String, task: &'static str, request_key: String| {
        let app = &app;
        async move {
            let headers = [("x-trigger-request-idempotency-key", request_key.as_str())];
            app.request(
                Method::POST,
                &format!("/api/v1/tasks/{task}/trigger"),
                Some(&token),
                Some(json!({ "payload": "{}" })),
                &headers,
            )
            .await
        }
    };
    let uuid = "7d0f3c2e-9a51-4b7c-8a3e-3f1d2c4b5a69".to_string();
    let first = send(key.clone(), "email", uuid.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let id = first.body["id"].as_str().unwrap().to_string();
    // A retry (the SDK reuses the key) gets the same run, not a cached idempotent one,
    // with a fresh run token.
    let retry = send(key.clone(), "email", uuid.clone()).await;
    assert_eq!(
        (
            retry.status,
            retry.body["id"].as_str(),
            retry.body["isCached"].as_bool()
        ),
        (StatusCode::OK, Some(id.as_str()), Some(false))
    );
    let claims: Value =
        serde_json::from_str(retry.headers["x-trigger-jwt-claims"].to_str().unwrap()).unwrap();
    assert_eq!(claims["scopes"][0], format!("read:runs:{id}"));
    // The key is scoped to the task, and another call's key is another run.
    for (task, call) in [("sms", uuid.clone()), ("email", "another-call".into())] {
        let other = send(key.clone(), task, call).await;
        assert_eq!(other.status, StatusCode::OK, "{}", other.text);
        let other_id = other.body["id"].as_str().unwrap_or_default();
        assert!(
            other_id.starts_with("run_") && other_id != id,
            "{task}: a new run, got {other_id:?}"
        );
    }
    let r = app
        .get("/api/v1/runs?filter[taskIdentifier]=email", &key)
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2, "{}", r.text);
    // A retry with a one-time token is not refused as a second use.
    let once = app
        .post(
            "/api/v1/auth/public-tokens",
            &key,
            json!({ "scopes": ["trigger:tasks:email"], "oneTimeUse": true }),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let a = send(once.clone(), "email", "otu-call".into()).await;
    let b = send(once.clone(), "email", "otu-call".into()).await;
    assert_eq!(
        (a.status, b.status, b.body["id"].as_str()),
        (StatusCode::OK, StatusCode::OK, a.body["id"].as_str())
    );
    let c = send(once, "email", "another-otu-call".into()).await;
    assert_eq!(c.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", c.text);
    // The header has a size limit and says so.
    let r = send(key, "email", "k".repeat(257)).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("x-trigger-request-idempotency-key must be at most 256 characters")
        )
    );
    app.cleanup().await;
}

async fn trigger_validates_its_body(b: Backend) {
    let app = TestApp::with_config(b, |c| c.engine.max_payload_bytes = 1024).await;
    let (_, key) = app.project_with_key("prod").await;
    let raw = |body: &'static str| {
        Request::post("/api/v1/tasks/t/trigger")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let r = app.send(raw("")).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Request body is empty"))
    );
    let r = app.send(raw("nope")).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Invalid JSON"))
    );
    let r = trigger(&app, &key, "t", json!({ "options": { "tags": [1] } })).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .starts_with("Validation error"),
        "{}",
        r.text
    );
    let r = trigger(
        &app,
        &key,
        "t",
        json!({ "options": { "tags": (0..11).map(|i| format!("t{i}")).collect::<Vec<_>>() } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = trigger(&app, &key, "t", json!({ "payload": "x".repeat(2000) })).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.body["error"].as_str().unwrap().contains("1024 bytes"),
        "{}",
        r.text
    );
    let r = trigger(
        &app,
        &key,
        "t",
        json!({ "payload": "{}", "options": { "ttl": "soon" } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

async fn jwts_trigger_and_read_within_their_scopes(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let mint = |scopes: Value, once: bool| {
        let app = &app;
        let key = key.clone();
        async move {
            let r = app
                .post(
                    "/api/v1/auth/public-tokens",
                    &key,
                    json!({ "scopes": scopes, "oneTimeUse": once }),
                )
                .await;
            r.body["token"].as_str().unwrap().to_string()
        }
    };
    let trigger_only = mint(json!(["trigger:tasks:email"]), false).await;
    assert_eq!(
        trigger(&app, &trigger_only, "email", json!({}))
            .await
            .status,
        StatusCode::OK
    );
    let r = trigger(&app, &trigger_only, "sms", json!({})).await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("unauthorized"))
    );
    let write_tasks = mint(json!(["write:tasks"]), false).await;
    assert_eq!(
        trigger(&app, &write_tasks, "sms", json!({})).await.status,
        StatusCode::OK,
        "write:tasks covers trigger"
    );
    // One-time tokens: the second use is refused with upstream's words.
    let once = mint(json!(["trigger:tasks:email"]), true).await;
    assert_eq!(
        trigger(&app, &once, "email", json!({})).await.status,
        StatusCode::OK
    );
    let r = trigger(&app, &once, "email", json!({})).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Cannot trigger email with a one-time use token as it has already been used.")
        )
    );
    // Read scopes: by run, by task, by tag.
    let a = trigger_id(
        &app,
        &key,
        "email",
        json!({ "options": { "tags": ["vip"] } }),
    )
    .await;
    let other = trigger_id(&app, &key, "report", json!({})).await;
    let by_run = mint(json!([format!("read:runs:{a}")]), false).await;
    assert_eq!(
        app.get(&format!("/api/v3/runs/{a}"), &by_run).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v3/runs/{other}"), &by_run)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let by_tag = mint(json!(["read:tags:vip"]), false).await;
    assert_eq!(
        app.get(&format!("/api/v3/runs/{a}"), &by_tag).await.status,
        StatusCode::OK
    );
    let by_task = mint(json!(["read:tasks:report"]), false).await;
    assert_eq!(
        app.get(&format!("/api/v3/runs/{other}"), &by_task)
            .await
            .status,
        StatusCode::OK
    );
    // The handle's own token reads its run.
    let r = trigger(&app, &key, "email", json!({})).await;
    let handle = r.headers["x-trigger-jwt"].to_str().unwrap().to_string();
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v3/runs/{id}"), &handle).await.status,
        StatusCode::OK
    );
    // Another environment's run is not visible.
    let (_, staging) = {
        let (p, _) = app.project_with_key("prod").await;
        (
            p.clone(),
            app.env_key(&app.admin_token, &p, "staging").await,
        )
    };
    assert_eq!(
        app.get(&format!("/api/v3/runs/{a}"), &staging).await.status,
        StatusCode::NOT_FOUND
    );
    app.cleanup().await;
}

async fn runs_list_pages_filters_and_cursors(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        app.clock.advance(Duration::seconds(1));
        let task = if i % 2 == 0 { "even" } else { "odd" };
        ids.push(
            trigger_id(
                &app,
                &key,
                task,
                json!({ "options": { "tags": [format!("n{i}")] } }),
            )
            .await,
        );
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut url = "/api/v1/runs?page[size]=2".to_string();
    loop {
        let r = app.get(&url, &key).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let data = r.body["data"].as_array().unwrap();
        seen.extend(data.iter().map(|d| d["id"].as_str().unwrap().to_string()));
        assert!(data.iter().all(|d| d["env"]["name"] == "prod"));
        match r.body["pagination"]["next"].as_str() {
            Some(next) => url = format!("/api/v1/runs?page[size]=2&page[after]={next}"),
            None => break,
        }
    }
    assert_eq!(
        seen, ids,
        "every run once, newest first, last page without next"
    );
    let r = app
        .get("/api/v1/runs?filter[taskIdentifier]=even", &key)
        .await;
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(3));
    let r = app.get("/api/v1/runs?filter[tag]=n1,n3", &key).await;
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(2));
    let r = app.get("/api/v1/runs?filter[status]=QUEUED", &key).await;
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(5));
    let r = app.get("/api/v1/runs?filter[status]=COMPLETED", &key).await;
    assert_eq!(
        r.body["data"].as_array().map(Vec::len),
        Some(0),
        "an empty page"
    );
    assert!(r.body["pagination"].get("next").is_none());
    for bad in [
        "page[size]=0",
        "page[size]=101",
        "page[after]=garbage",
        "filter[status]=NOPE",
        "filter[isTest]=maybe",
        "filter[machine]=huge",
    ] {
        let r = app.get(&format!("/api/v1/runs?{bad}"), &key).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }
    // The default window is 7 days.
    app.clock.advance(Duration::days(8));
    let r = app.get("/api/v1/runs", &key).await;
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(0));
    let r = app
        .get("/api/v1/runs?filter[createdAt][period]=30d", &key)
        .await;
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(5));
    // Scopes: a task-scoped token may list that task only.
    let tok = app
        .post(
            "/api/v1/auth/public-tokens",
            &key,
            json!({ "scopes": ["read:tasks:even"] }),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.get("/api/v1/runs?filter[createdAt][period]=30d", &tok)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = app
        .get(
            "/api/v1/runs?filter[createdAt][period]=30d&filter[taskIdentifier]=even",
            &tok,
        )
        .await;
    assert_eq!(
        (r.status, r.body["data"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(3))
    );
    app.cleanup().await;
}

/// A public token with `scopes`, minted with `key`.
async fn public_token(app: &TestApp, key: &str, scopes: &[String]) -> String {
    let r = app
        .post(
            "/api/v1/auth/public-tokens",
            key,
            json!({ "scopes": scopes }),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

async fn a_public_token_replays_with_write_and_trigger_scopes(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let id = trigger_id(&app, &key, "email", json!({ "payload": "{}" })).await;
    let replay = |token: String, run: String| {
        let app = &app;
        async move {
            app.request(
                Method::POST,
                &format!("/api/v1/runs/{run}/replay"),
                Some(&token),
                None,
                &[],
            )
            .await
        }
    };
    // What the MCP server's replay_run asks for.
    let scopes = [
        format!("read:runs:{id}"),
        format!("write:runs:{id}"),
        "trigger:tasks:email".to_string(),
    ];
    let r = replay(public_token(&app, &key, &scopes).await, id.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new_id = r.body["id"].as_str().unwrap();
    assert!(new_id.starts_with("run_") && new_id != id, "{new_id}");
    // Either scope alone is not enough: a replay acts on the run and starts a run of the task.
    for partial in [&scopes[..2], &scopes[2..]] {
        let r = replay(public_token(&app, &key, partial).await, id.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{partial:?}: {}", r.text);
    }
    // Another run's scopes do not reach this one, and an unknown run is not revealed.
    let other = [
        "write:runs:run_other".to_string(),
        "trigger:tasks:email".to_string(),
    ];
    let token = public_token(&app, &key, &other).await;
    assert_eq!(
        replay(token.clone(), id.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        replay(token, "run_nope".into()).await.status,
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}

async fn cancel_and_replay(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let id = trigger_id(
        &app,
        &key,
        "email",
        json!({ "payload": "{\"to\":\"a\"}", "options": { "tags": ["x"] } }),
    )
    .await;
    let r = app
        .request(
            Method::POST,
            &format!("/api/v2/runs/{id}/cancel"),
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["id"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );
    let run = app.get(&format!("/api/v3/runs/{id}"), &key).await.body;
    assert_eq!(
        (
            run["status"].as_str(),
            run["isCancelled"].as_bool(),
            run["isFailed"].as_bool()
        ),
        (Some("CANCELED"), Some(true), Some(true))
    );
    assert!(run["finishedAt"].is_string());
    // Idempotent on a finished run.
    let r = app
        .request(
            Method::POST,
            &format!("/api/v2/runs/{id}/cancel"),
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .request(
            Method::POST,
            "/api/v2/runs/run_nope/cancel",
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("Resource not found"))
    );
    // An under-scoped token gets 403 whether or not the run exists.
    let ro = app
        .post(
            "/api/v1/auth/public-tokens",
            &key,
            json!({ "scopes": ["read:runs"] }),
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.request(
            Method::POST,
            "/api/v2/runs/run_nope/cancel",
            Some(&ro),
            None,
            &[]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );

    let r = app
        .request(
            Method::POST,
            &format!("/api/v1/runs/{id}/replay"),
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new_id = r.body["id"].as_str().unwrap();
    assert!(new_id.starts_with("run_") && new_id != id, "{new_id}");
    let replayed = app.get(&format!("/api/v3/runs/{new_id}"), &key).await.body;
    assert_eq!(
        (
            replayed["payload"].clone(),
            replayed["tags"].clone(),
            replayed["status"].as_str()
        ),
        (json!({ "to": "a" }), json!(["x"]), Some("QUEUED"))
    );
    let r = app
        .request(
            Method::POST,
            &format!("/api/v1/runs/{id}/replay"),
            Some(&key),
            Some(json!({ "payload": "{\"to\":\"b\"}", "tags": ["y"] })),
            &[],
        )
        .await;
    let over = app
        .get(
            &format!("/api/v3/runs/{}", r.body["id"].as_str().unwrap()),
            &key,
        )
        .await
        .body;
    assert_eq!(
        (over["payload"].clone(), over["tags"].clone()),
        (json!({ "to": "b" }), json!(["y"]))
    );
    let r = app
        .request(
            Method::POST,
            "/api/v1/runs/run_nope/replay",
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("Run not found"))
    );
    // A read-only token may not replay (what it needs: the public-token case above).
    assert_eq!(
        app.request(
            Method::POST,
            &format!("/api/v1/runs/{id}/replay"),
            Some(&ro),
            None,
            &[]
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}

async fn delayed_and_ttl_runs_move_on_their_own(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let delayed = trigger_id(&app, &key, "t", json!({ "options": { "delay": "5m" } })).await;
    let ttl = trigger_id(&app, &key, "t", json!({ "options": { "ttl": "10m" } })).await;
    assert_eq!(
        app.get(&format!("/api/v3/runs/{delayed}"), &key).await.body["status"],
        "DELAYED"
    );
    app.clock.advance(Duration::minutes(6));
    app.state
        .store
        .advance_due_runs(app.state.now())
        .await
        .unwrap();
    assert_eq!(
        app.get(&format!("/api/v3/runs/{delayed}"), &key).await.body["status"],
        "QUEUED"
    );
    app.clock.advance(Duration::minutes(5));
    app.state
        .store
        .advance_due_runs(app.state.now())
        .await
        .unwrap();
    let r = app.get(&format!("/api/v3/runs/{ttl}"), &key).await.body;
    assert_eq!(r["status"], "EXPIRED");
    assert!(r["expiredAt"].is_string());
    app.cleanup().await;
}

async fn batches_trigger_in_two_phases(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let r = app
        .post(
            "/api/v3/batches",
            &key,
            json!({ "runCount": 3, "taskIdentifiers": ["a"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let batch = r.body["id"].as_str().unwrap().to_string();
    assert!(batch.starts_with("batch_") && r.body["isCached"] == false);
    assert!(r.headers["x-trigger-jwt-claims"]
        .to_str()
        .unwrap()
        .contains(&format!("read:batch:{batch}")));
    // batch.retrieve: still receiving its items.
    let r = app.get(&format!("/api/v2/batches/{batch}"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "PROCESSING");
    assert_eq!(r.body["runCount"], 3);
    assert_eq!(r.body["runs"], json!([]));
    let lines = (0..3)
        .map(|i| {
            json!({ "index": i, "task": "a", "payload": format!("{{\"i\":{i}}}") }).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let send = |body: String| {
        Request::post(format!("/api/v3/batches/{batch}/items"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/x-ndjson")
            .body(Body::from(body))
            .unwrap()
    };
    let r = app.send(send(lines.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["itemsAccepted"].as_i64(), r.body["sealed"].as_bool()),
        (Some(3), Some(true))
    );
    // Resending is deduplicated by index and creates no runs.
    let r = app.send(send(lines)).await;
    assert_eq!(
        (
            r.body["itemsAccepted"].as_i64(),
            r.body["itemsDeduplicated"].as_i64()
        ),
        (Some(0), Some(3))
    );
    let r = app
        .get(&format!("/api/v1/runs?filter[batch]={batch}"), &key)
        .await;
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(3));
    // batch.retrieve: its runs in the order they were made, pending until every one ends.
    let mut listed: Vec<String> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    listed.reverse();
    let r = app.get(&format!("/api/v2/batches/{batch}"), &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], batch.as_str());
    assert_eq!(r.body["status"], "PENDING");
    assert_eq!(r.body["runs"], json!(listed));
    assert_eq!(r.body["processing"]["errors"], json!([]));
    for id in &listed {
        let c = app
            .post(&format!("/api/v2/runs/{id}/cancel"), &key, json!({}))
            .await;
        assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    }
    let r = app.get(&format!("/api/v1/batches/{batch}"), &key).await;
    assert_eq!(r.body["status"], "COMPLETED", "{}", r.text);
    // Another environment's key, or a token for another batch, reads nothing of it.
    let (_, other) = app.project_with_key("prod").await;
    assert_eq!(
        app.get(&format!("/api/v2/batches/{batch}"), &other)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let jwt = app
        .post(
            "/api/v1/auth/jwt",
            &key,
            json!({ "claims": { "scopes": ["read:batch:batch_other"] } }),
        )
        .await;
    let jwt = jwt.body["token"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v2/batches/{batch}"), jwt)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    for bad in [json!({ "runCount": 0 }), json!({ "runCount": 1001 })] {
        assert_eq!(
            app.post("/api/v3/batches", &key, bad).await.status,
            StatusCode::BAD_REQUEST
        );
    }
    let r = app
        .send(send("{\"index\": 7, \"task\": \"a\"}".into()))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    app.cleanup().await;
}

/// A one-time token for `task`, minted with `key`.
async fn one_time_token(app: &TestApp, key: &str, scopes: Value) -> String {
    let r = app
        .post(
            "/api/v1/auth/public-tokens",
            key,
            json!({ "scopes": scopes, "oneTimeUse": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["token"].as_str().unwrap().to_string()
}

async fn run_count(app: &TestApp, key: &str) -> usize {
    let r = app.get("/api/v1/runs?page[size]=100", key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["data"].as_array().unwrap().len()
}

async fn one_time_tokens_cannot_be_replayed_by_respelling(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let once = one_time_token(&app, &key, json!(["trigger:tasks:email"])).await;
    assert_eq!(
        trigger(&app, &once, "email", json!({})).await.status,
        StatusCode::OK
    );
    let (head, sig) = once.rsplit_once('.').unwrap();
    let mut respellings = vec![
        format!("{once}="),
        format!("{once}=="),
        format!("{once}{}", "=".repeat(100)),
        format!("{head}=.{sig}"),
        once.replace('-', "+").replace('_', "/"),
    ];
    // The signature's last character carries two unused bits; a lenient decoder ignores them.
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let i = alphabet.find(last).unwrap();
    let flipped = alphabet.chars().nth(i ^ 1).unwrap();
    respellings.push(format!("{head}.{}{flipped}", &sig[..sig.len() - 1]));
    for token in respellings {
        if token == once {
            continue;
        }
        let r = trigger(&app, &token, "email", json!({})).await;
        assert!(
            r.status == StatusCode::UNAUTHORIZED || r.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{token}: {} {}",
            r.status,
            r.text
        );
    }
    assert_eq!(run_count(&app, &key).await, 1, "one token, one run");
    app.cleanup().await;
}

async fn one_time_tokens_create_one_batch(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let once = one_time_token(&app, &key, json!(["batchTrigger:tasks:email"])).await;
    let body = json!({ "runCount": 1, "taskIdentifiers": ["email"] });
    let r = app.post("/api/v3/batches", &once, body.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let r = app.post("/api/v3/batches", &once, body).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Cannot batch trigger with a one-time use token as it has already been used.")
        )
    );
    app.cleanup().await;
}

async fn huge_durations_are_refused_by_name(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let once = one_time_token(&app, &key, json!(["trigger:tasks:t"])).await;
    let cases = [
        (json!({ "options": { "delay": "99999999999d" } }), "delay"),
        (
            json!({ "options": { "delay": "9223372036854775807s" } }),
            "delay",
        ),
        (
            json!({ "options": { "delay": "+275760-09-13T00:00:00Z" } }),
            "delay",
        ),
        (json!({ "options": { "ttl": "99999999999d" } }), "ttl"),
        (
            json!({ "options": { "ttl": 9_223_372_036_854_775_807_i64 } }),
            "ttl",
        ),
        (
            json!({ "options": { "idempotencyKey": "k", "idempotencyKeyTTL": "9223372036854775807s" } }),
            "idempotencyKeyTTL",
        ),
        (
            json!({ "options": { "maxAttempts": 1_000_000 } }),
            "maxAttempts",
        ),
    ];
    for (credential, label) in [(&key, "secret key"), (&once, "public token")] {
        for (body, field) in &cases {
            let r = trigger(&app, credential, "t", body.clone()).await;
            assert_eq!(
                r.status,
                StatusCode::BAD_REQUEST,
                "{label} {body}: {}",
                r.text
            );
            let message = r.body["error"].as_str().unwrap();
            assert!(message.contains(field), "{label}: {message} names {field}");
        }
    }
    let r = app
        .request(
            Method::POST,
            "/api/v1/tasks/t/trigger",
            Some(&key),
            Some(json!({})),
            &[
                ("idempotency-key", "k"),
                ("idempotency-key-ttl", "99999999999d"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // In a batch item too.
    let r = app
        .post("/api/v3/batches", &key, json!({ "runCount": 1 }))
        .await;
    let batch = r.body["id"].as_str().unwrap().to_string();
    let line = json!({ "index": 0, "task": "t", "options": { "delay": "99999999999d" } });
    let req = Request::post(format!("/api/v3/batches/{batch}/items"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/x-ndjson")
        .body(Body::from(line.to_string()))
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("delay"), "{}", r.text);
    assert_eq!(run_count(&app, &key).await, 0, "nothing was created");
    app.cleanup().await;
}

async fn tags_are_added_up_to_ten(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = app.project_with_key("prod").await;
    let id = trigger_id(
        &app,
        &key,
        "t",
        json!({ "options": { "tags": ["a", "b"] } }),
    )
    .await;
    let add = |tags: Value| {
        let app = &app;
        let key = key.clone();
        let id = id.clone();
        async move {
            app.post(
                &format!("/api/v1/runs/{id}/tags"),
                &key,
                json!({ "tags": tags }),
            )
            .await
        }
    };
    let r = add(json!(["b", "c", "c"])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["message"], "Successfully set 1 new tags.");
    let r = add(json!("a")).await;
    assert_eq!(r.body["message"], "No new tags to add");
    let run = app.get(&format!("/api/v3/runs/{id}"), &key).await;
    assert_eq!(run.body["tags"], json!(["a", "b", "c"]));
    // Listed by the new tag at once.
    let r = app.get("/api/v1/runs?filter[tag]=c", &key).await;
    assert_eq!(r.body["data"][0]["id"], id.as_str(), "{}", r.text);
    // Past ten, nothing is added and the answer names what was not.
    let many: Vec<String> = (0..8).map(|i| format!("n{i}")).collect();
    let r = add(json!(many)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["error"],
        "Runs can only have 10 tags, you're trying to set 11. These tags have not been set: 'n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7'."
    );
    let run = app.get(&format!("/api/v3/runs/{id}"), &key).await;
    assert_eq!(run.body["tags"].as_array().unwrap().len(), 3);
    // Bad bodies, other environments and tokens without the run are refused.
    for body in [json!({ "tags": 5 }), json!({ "tags": [""] })] {
        let r = app
            .post(&format!("/api/v1/runs/{id}/tags"), &key, body)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    }
    let (_, other) = app.project_with_key("prod").await;
    let r = app
        .post(
            &format!("/api/v1/runs/{id}/tags"),
            &other,
            json!({ "tags": ["x"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let jwt = app
        .post(
            "/api/v1/auth/jwt",
            &key,
            json!({ "claims": { "scopes": ["read:runs"] } }),
        )
        .await;
    let jwt = jwt.body["token"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/runs/{id}/tags"),
            jwt,
            json!({ "tags": ["x"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    app.cleanup().await;
}

on_both!(
    debounced_triggers_share_one_delayed_run,
    triggered_runs_are_retrievable_with_the_sdks_fields,
    retried_triggers_get_the_run_of_their_first_attempt,
    trigger_validates_its_body,
    jwts_trigger_and_read_within_their_scopes,
    runs_list_pages_filters_and_cursors,
    cancel_and_replay,
    a_public_token_replays_with_write_and_trigger_scopes,
    delayed_and_ttl_runs_move_on_their_own,
    one_time_tokens_cannot_be_replayed_by_respelling,
    one_time_tokens_create_one_batch,
    huge_durations_are_refused_by_name,
    batches_trigger_in_two_phases,
    tags_are_added_up_to_ten
);
