//! The engine routes `trigger.dev dev` uses: worker registration, dequeue, attempts,
//! cancellation, disconnect, stalls, dev TTLs, limits, variables, OTLP logs and presence.
//! Bodies go as `text/plain`, as the CLI sends them. Time moves on the injected clock.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::Duration;
use serde_json::{json, Value};

use crate::common::{Backend, Response, TestApp};
use crate::on_both;

/// A body posted as the CLI does: JSON text with a `text/plain` content type.
async fn post_text(app: &TestApp, path: &str, key: &str, body: Value) -> Response {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Body::from(body.to_string()))
        .unwrap();
    app.send(req).await
}

/// An admin-owned project and its development key.
pub(crate) async fn dev_project(app: &TestApp) -> (String, String) {
    let token = app.admin_token.clone();
    let (_, project) = app.org_and_project(&token).await;
    let key = app.env_key(&token, &project, "dev").await;
    (project, key)
}

pub(crate) fn manifest(tasks: &[&str]) -> Value {
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|t| {
            let mut task = json!({
                "id": t, "filePath": format!("src/trigger/{t}.ts"), "exportName": t,
                "retry": { "maxAttempts": 3, "minTimeoutInMs": 100, "randomize": false },
                "maxDuration": 60,
                "payloadSchema": { "type": "object", "properties": { "name": { "type": "string" } } },
                "entryPoint": "/abs/path/ignored.js"
            });
            // Tasks named `forever…` have no maxDuration.
            if t.starts_with("forever") {
                task.as_object_mut().map(|o| o.remove("maxDuration"));
            }
            task
        })
        .collect();
    json!({
        "localOnly": true, "engine": "V2", "supportsLazyAttempts": true,
        "metadata": {
            "packageVersion": "4.8.3", "cliPackageVersion": "4.8.3", "contentHash": "hash-1",
            "runtime": "node-24", "runtimeVersion": "20.20.2", "tasks": tasks, "queues": [],
            "sourceFiles": [{ "filePath": "src/trigger/a.ts", "contents": "…", "contentHash": "x", "taskIds": [] }]
        }
    })
}

/// Registers a worker; returns its id (what dequeued messages name).
pub(crate) async fn register(app: &TestApp, project: &str, key: &str, tasks: &[&str]) -> Value {
    let r = post_text(
        app,
        &format!("/api/v1/projects/{project}/background-workers"),
        key,
        manifest(tasks),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

pub(crate) async fn trigger(app: &TestApp, key: &str, task: &str, body: Value) -> String {
    let r = app
        .post(&format!("/api/v1/tasks/{task}/trigger"), key, body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

pub(crate) async fn dequeue(app: &TestApp, key: &str, worker: &Value) -> Vec<Value> {
    let r = post_text(
        app,
        "/engine/v1/dev/dequeue",
        key,
        json!({ "currentWorker": worker["id"], "oldWorkers": [] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["dequeuedMessages"].as_array().unwrap().clone()
}

fn attempt_path(run: &str, snapshot: &str, action: &str) -> String {
    format!("/engine/v1/dev/runs/{run}/snapshots/{snapshot}/{action}")
}

/// Starts the attempt of a dequeued message; returns the start answer.
pub(crate) async fn start(app: &TestApp, key: &str, message: &Value) -> Value {
    let run = message["run"]["friendlyId"].as_str().unwrap();
    let snap = message["snapshot"]["friendlyId"].as_str().unwrap();
    let r = post_text(
        app,
        &attempt_path(run, snap, "attempts/start"),
        key,
        json!({ "isWarmStart": false }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

pub(crate) async fn complete(
    app: &TestApp,
    key: &str,
    started: &Value,
    completion: Value,
) -> Response {
    let run = started["run"]["friendlyId"].as_str().unwrap();
    let snap = started["snapshot"]["friendlyId"].as_str().unwrap();
    post_text(
        app,
        &attempt_path(run, snap, "attempts/complete"),
        key,
        json!({ "completion": completion }),
    )
    .await
}

async fn retrieve(app: &TestApp, key: &str, run: &str) -> Value {
    let r = app.get(&format!("/api/v3/runs/{run}"), key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

/// A dev setup with a registered worker knowing `tasks`.
pub(crate) async fn with_worker(b: Backend, tasks: &[&str]) -> (TestApp, String, String, Value) {
    let app = TestApp::with_config(b, |c| {
        c.engine.dequeue_wait = std::time::Duration::ZERO;
    })
    .await;
    let (project, key) = dev_project(&app).await;
    let worker = register(&app, &project, &key, tasks).await;
    (app, project, key, worker)
}

async fn dev_config_describes_the_environment(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.engine.concurrency_limit = 7;
        c.engine.dev_max_concurrent_runs = 15;
    })
    .await;
    let (_, key) = dev_project(&app).await;
    let r = app.get("/engine/v1/dev/config", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The CLI keeps a process for each run that waits, beyond those executing.
    assert_eq!(r.body["maxConcurrentRuns"], 15);
    assert_eq!(r.body["dequeueIntervalWithRun"], 25);
    assert_eq!(r.body["engineUrl"], "http://127.0.0.1:3030");
    let claims = app.whoami_env(&key).await;
    assert_eq!(r.body["environmentId"], claims.body["sub"]);
    assert_eq!(
        app.get("/engine/v1/dev/config", "tr_dev_nope").await.status,
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

async fn workers_register_with_daily_versions_and_unique_task_ids(b: Backend) {
    let app = TestApp::new(b).await;
    let (project, key) = dev_project(&app).await;
    let first = register(&app, &project, &key, &["a", "b"]).await;
    let second = register(&app, &project, &key, &["a"]).await;
    assert_eq!(first["version"], "20260301.1");
    assert_eq!(second["version"], "20260301.2");
    assert_eq!(first["contentHash"], "hash-1");
    assert!(first["id"].as_str().unwrap().starts_with("worker_"));
    let mut dup = manifest(&["a"]);
    dup["metadata"]["tasks"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "a", "filePath": "src/other.ts" }));
    let r = post_text(
        &app,
        &format!("/api/v1/projects/{project}/background-workers"),
        &key,
        dup,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body["error"].as_str().unwrap().starts_with(
            "Duplicate task ids detected: \"a\" (defined in src/trigger/a.ts, src/other.ts)"
        ),
        "{}",
        r.text
    );
    let r = post_text(
        &app,
        "/api/v1/projects/proj_other/background-workers",
        &key,
        manifest(&["a"]),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("Project not found"))
    );
    let r = post_text(
        &app,
        &format!("/api/v1/projects/{project}/background-workers"),
        &key,
        json!({ "metadata": {} }),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // The current worker, with its tasks and their payload schemas.
    let r = app
        .get(
            &format!("/api/v1/projects/{project}/dev/workers/current"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["worker"]["id"], second["id"]);
    assert_eq!(r.body["worker"]["tasks"][0]["slug"], "a");
    assert_eq!(
        r.body["worker"]["tasks"][0]["payloadSchema"]["type"],
        "object"
    );
    app.cleanup().await;
}

async fn a_run_goes_from_trigger_to_completion(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["hello"]).await;
    let run = trigger(
        &app,
        &key,
        "hello",
        json!({ "payload": "{\"name\":\"x\"}", "options": { "payloadType": "application/json" } }),
    )
    .await;
    let messages = dequeue(&app, &key, &worker).await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["run"]["friendlyId"], run.as_str());
    assert_eq!(m["backgroundWorker"]["friendlyId"], worker["id"]);
    assert_eq!(m["snapshot"]["executionStatus"], "PENDING_EXECUTING");
    assert_eq!(m["run"]["attemptNumber"], 1);
    assert_eq!(m["environment"]["type"], "DEVELOPMENT");
    assert_eq!(m["deployment"], json!({}));
    assert_eq!(m["run"]["machine"]["name"], "small-1x");
    assert_eq!(retrieve(&app, &key, &run).await["status"], "DEQUEUED");
    let started = start(&app, &key, m).await;
    assert_eq!(started["snapshot"]["executionStatus"], "EXECUTING");
    assert_ne!(
        started["snapshot"]["friendlyId"],
        m["snapshot"]["friendlyId"]
    );
    let x = &started["execution"];
    assert_eq!(x["attempt"]["number"], 1);
    assert_eq!(x["run"]["id"], run.as_str());
    assert_eq!(x["run"]["payload"], "{\"name\":\"x\"}");
    assert_eq!(x["run"]["maxAttempts"], 3, "from the task's retry settings");
    assert_eq!(x["run"]["maxDuration"], 60);
    assert_eq!(x["run"]["version"], worker["version"]);
    assert_eq!(x["task"]["filePath"], "src/trigger/hello.ts");
    assert_eq!(x["queue"]["name"], "task/hello");
    assert_eq!(x["project"]["slug"], "web");
    assert!(started["envVars"]["TRIGGER_OTEL_EXPORTER_OTLP_ENDPOINT"]
        .as_str()
        .unwrap()
        .contains("/otel/"));
    assert_eq!(retrieve(&app, &key, &run).await["status"], "EXECUTING");
    let beat = post_text(
        &app,
        &attempt_path(
            &run,
            started["snapshot"]["friendlyId"].as_str().unwrap(),
            "heartbeat",
        ),
        &key,
        json!({ "cpu": 0, "memory": 0 }),
    )
    .await;
    assert_eq!(beat.body, json!({ "ok": true }));
    let r = complete(
        &app,
        &key,
        &started,
        json!({ "ok": true, "id": run, "output": "{\"json\":{\"greeting\":\"hi\"}}", "outputType": "application/super+json",
                "usage": { "durationMs": 15 } }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["result"]["attemptStatus"], "RUN_FINISHED");
    assert_eq!(r.body["result"]["run"]["status"], "COMPLETED_SUCCESSFULLY");
    assert_eq!(r.body["result"]["run"]["attemptNumber"], 1);
    assert_eq!(r.body["result"]["snapshot"]["executionStatus"], "FINISHED");
    let done = retrieve(&app, &key, &run).await;
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["output"], json!({ "greeting": "hi" }));
    assert_eq!(done["attemptCount"], 1);
    assert_eq!(done["version"], worker["version"]);
    let attempts = app.get(&format!("/api/v1/runs/{run}/attempts"), &key).await;
    assert_eq!(attempts.body["data"][0]["status"], "COMPLETED");
    app.cleanup().await;
}

async fn stale_snapshots_and_finished_runs_are_refused_as_upstream(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["t"]).await;
    let run = trigger(&app, &key, "t", json!({})).await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    let started = start(&app, &key, &m).await;
    // Starting again from the dequeue's snapshot: it is no longer the latest.
    let r = post_text(
        &app,
        &attempt_path(
            &run,
            m["snapshot"]["friendlyId"].as_str().unwrap(),
            "attempts/start",
        ),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("Snapshot changed inside startRunAttempt")
        )
    );
    assert_eq!(r.headers["x-should-retry"], "false");
    let stale =
        json!({ "completion": { "ok": true, "id": run, "outputType": "application/json" } });
    let r = post_text(
        &app,
        &attempt_path(&run, "snapshot_old", "attempts/complete"),
        &key,
        stale,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Snapshot ID doesn't match the latest snapshot")
        )
    );
    let ok = json!({ "ok": true, "id": run, "outputType": "application/json" });
    assert_eq!(
        complete(&app, &key, &started, ok.clone()).await.status,
        StatusCode::OK
    );
    let r = complete(&app, &key, &started, ok).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Task run is already finished")
        )
    );
    let r = post_text(
        &app,
        &attempt_path("run_nope", "snapshot_x", "attempts/start"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

async fn failed_attempts_retry_as_the_worker_asks(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["t"]).await;
    let run = trigger(&app, &key, "t", json!({})).await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    let error = json!({ "type": "BUILT_IN_ERROR", "name": "Error", "message": "boom\u{0}", "stackTrace": "Error: boom\n    at run (x.ts:1:1)" });
    let first = start(&app, &key, &m).await;
    let r = complete(&app, &key, &first, json!({ "ok": false, "id": run, "error": error, "retry": { "timestamp": 0, "delay": 200 } })).await;
    assert_eq!(
        r.body["result"]["attemptStatus"], "RETRY_IMMEDIATELY",
        "{}",
        r.text
    );
    assert_eq!(r.body["result"]["run"]["attemptNumber"], 1);
    // The CLI starts the next attempt on the snapshot the completion answered.
    let next = json!({ "run": r.body["result"]["run"], "snapshot": r.body["result"]["snapshot"] });
    let second = start(&app, &key, &next).await;
    assert_eq!(second["execution"]["attempt"]["number"], 2);
    let r = complete(&app, &key, &second, json!({ "ok": false, "id": run, "error": error, "retry": { "timestamp": 0, "delay": 60000 } })).await;
    assert_eq!(
        r.body["result"]["attemptStatus"], "RETRY_QUEUED",
        "{}",
        r.text
    );
    assert!(
        dequeue(&app, &key, &worker).await.is_empty(),
        "not before its time"
    );
    app.clock.advance(Duration::seconds(60));
    let m = dequeue(&app, &key, &worker).await.remove(0);
    assert_eq!(m["run"]["attemptNumber"], 3);
    let third = start(&app, &key, &m).await;
    let r = complete(
        &app,
        &key,
        &third,
        json!({ "ok": false, "id": run, "error": error }),
    )
    .await;
    assert_eq!(r.body["result"]["attemptStatus"], "RUN_FINISHED");
    let done = retrieve(&app, &key, &run).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(
        done["error"]["message"], "boom",
        "stored sanitised: NUL removed"
    );
    assert_eq!(done["attemptCount"], 3);
    app.cleanup().await;
}

async fn canceling_reaches_each_state(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["t"]).await;
    let cancel = |run: String| {
        let app = &app;
        let key = key.clone();
        async move {
            let r = app
                .post(&format!("/api/v2/runs/{run}/cancel"), &key, json!({}))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
    };
    // Queued: ends at once.
    let queued = trigger(&app, &key, "t", json!({})).await;
    cancel(queued.clone()).await;
    assert_eq!(retrieve(&app, &key, &queued).await["status"], "CANCELED");
    // Dequeued, not started: ends at once; the worker's start is refused as finished.
    let dequeued = trigger(&app, &key, "t", json!({})).await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    cancel(dequeued.clone()).await;
    let r = post_text(
        &app,
        &attempt_path(
            &dequeued,
            m["snapshot"]["friendlyId"].as_str().unwrap(),
            "attempts/start",
        ),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // Executing: CANCELED for clients at once, PENDING_CANCEL for the worker until it stops.
    let executing = trigger(&app, &key, "t", json!({})).await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    let started = start(&app, &key, &m).await;
    cancel(executing.clone()).await;
    assert_eq!(retrieve(&app, &key, &executing).await["status"], "CANCELED");
    let latest = app
        .get(
            &format!("/engine/v1/dev/runs/{executing}/snapshots/latest"),
            &key,
        )
        .await;
    let snapshot = &latest.body["execution"]["snapshot"];
    assert_eq!(snapshot["executionStatus"], "PENDING_CANCEL");
    let pending = json!({ "run": started["run"], "snapshot": snapshot });
    let r = complete(&app, &key, &pending, json!({ "ok": false, "id": executing, "error": { "type": "INTERNAL_ERROR", "code": "TASK_RUN_CANCELLED" } })).await;
    assert_eq!(
        r.body["result"]["attemptStatus"], "RUN_FINISHED",
        "{}",
        r.text
    );
    assert_eq!(r.body["result"]["snapshot"]["executionStatus"], "FINISHED");
    // Canceling a finished run changes nothing.
    cancel(executing.clone()).await;
    app.cleanup().await;
}

async fn disconnect_cancels_a_dead_clis_runs(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["t"]).await;
    let run = trigger(&app, &key, "t", json!({})).await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    start(&app, &key, &m).await;
    let r = app
        .post(
            "/engine/v1/dev/disconnect",
            &key,
            json!({ "runFriendlyIds": [run, "run_unknown"] }),
        )
        .await;
    assert_eq!(r.body, json!({ "cancelled": 1 }), "{}", r.text);
    let latest = app
        .get(&format!("/engine/v1/dev/runs/{run}/snapshots/latest"), &key)
        .await;
    assert_eq!(
        latest.body["execution"]["snapshot"]["executionStatus"],
        "FINISHED"
    );
    assert_eq!(retrieve(&app, &key, &run).await["status"], "CANCELED");
    app.cleanup().await;
}

async fn dev_runs_expire_after_ten_minutes_without_a_worker(b: Backend) {
    let app = TestApp::new(b).await;
    let (_, key) = dev_project(&app).await;
    let run = trigger(&app, &key, "t", json!({})).await;
    assert_eq!(retrieve(&app, &key, &run).await["ttl"], "10m");
    app.clock.advance(Duration::minutes(10));
    app.state
        .store
        .advance_due_runs(app.state.now())
        .await
        .unwrap();
    assert_eq!(retrieve(&app, &key, &run).await["status"], "EXPIRED");
    app.cleanup().await;
}

async fn stalled_and_overlong_runs_are_recovered(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["forever", "limited"]).await;
    let sweep = || async {
        app.state
            .store
            .advance_due_runs(app.state.now())
            .await
            .unwrap();
    };
    // Dequeued but never started: back in the queue after a minute.
    let stalled = trigger(&app, &key, "forever", json!({})).await;
    dequeue(&app, &key, &worker).await;
    app.clock.advance(Duration::seconds(60));
    sweep().await;
    assert_eq!(
        retrieve(&app, &key, &stalled).await["status"],
        "QUEUED",
        "back in the queue"
    );
    // Started, then silent: stalled after five minutes without a heartbeat.
    let m = dequeue(&app, &key, &worker).await.remove(0);
    start(&app, &key, &m).await;
    app.clock.advance(Duration::minutes(5));
    sweep().await;
    assert_eq!(
        retrieve(&app, &key, &stalled).await["status"],
        "CANCELED",
        "a stalled dev run counts as canceled"
    );
    // Over its maxDuration (60 s) by more than the grace: timed out.
    let overlong = trigger(&app, &key, "limited", json!({})).await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    let started = start(&app, &key, &m).await;
    let snap = started["snapshot"]["friendlyId"].as_str().unwrap();
    app.clock.advance(Duration::seconds(100));
    let beat = post_text(
        &app,
        &attempt_path(&overlong, snap, "heartbeat"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(beat.status, StatusCode::OK, "alive, but not for long");
    app.clock.advance(Duration::seconds(21));
    sweep().await;
    let run = retrieve(&app, &key, &overlong).await;
    assert_eq!(run["status"], "TIMED_OUT");
    assert_eq!(
        run["error"]["message"],
        "trigger.dev internal error (MAX_DURATION_EXCEEDED)"
    );
    app.cleanup().await;
}

async fn the_concurrency_limit_holds(b: Backend) {
    let app = TestApp::with_config(b, |c| {
        c.engine.dequeue_wait = std::time::Duration::ZERO;
        c.engine.concurrency_limit = 1;
    })
    .await;
    let (project, key) = dev_project(&app).await;
    let worker = register(&app, &project, &key, &["t"]).await;
    trigger(&app, &key, "t", json!({})).await;
    trigger(&app, &key, "t", json!({})).await;
    let first = dequeue(&app, &key, &worker).await.remove(0);
    assert!(
        dequeue(&app, &key, &worker).await.is_empty(),
        "the one slot is taken"
    );
    let started = start(&app, &key, &first).await;
    let run = first["run"]["friendlyId"].clone();
    complete(
        &app,
        &key,
        &started,
        json!({ "ok": true, "id": run, "outputType": "application/json" }),
    )
    .await;
    assert_eq!(
        dequeue(&app, &key, &worker).await.len(),
        1,
        "the slot is free again"
    );
    app.cleanup().await;
}

async fn a_waiting_dequeue_wakes_when_a_run_is_triggered(b: Backend) {
    // A broken wake would answer empty after the wait; the test would see no run.
    let app = TestApp::with_config(b, |c| {
        c.engine.dequeue_wait = std::time::Duration::from_secs(20);
    })
    .await;
    let (project, key) = dev_project(&app).await;
    let worker = register(&app, &project, &key, &["t"]).await;
    let waiting = {
        let router = app.router.clone();
        let key = key.clone();
        let body = json!({ "currentWorker": worker["id"] }).to_string();
        tokio::spawn(async move {
            let req = Request::post("/engine/v1/dev/dequeue")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::from(body))
                .unwrap();
            TestApp::send_via(&router, req).await
        })
    };
    // The dequeue registers its wait before it looks; watch for it, then trigger.
    while app.state.engine.watchers().is_empty() {
        tokio::task::yield_now().await;
    }
    let run = trigger(&app, &key, "t", json!({})).await;
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("the dequeue answered once the run was queued")
        .unwrap();
    assert_eq!(
        r.body["dequeuedMessages"][0]["run"]["friendlyId"],
        run.as_str()
    );
    app.cleanup().await;
}

async fn a_dequeue_waiting_at_the_limit_wakes_when_a_slot_frees(b: Backend) {
    // A dequeue that found every slot taken waits for one to free, not for the deadline.
    let app = TestApp::with_config(b, |c| {
        c.engine.dequeue_wait = std::time::Duration::from_secs(20);
        c.engine.concurrency_limit = 1;
    })
    .await;
    let (project, key) = dev_project(&app).await;
    let worker = register(&app, &project, &key, &["t"]).await;
    let a = trigger(&app, &key, "t", json!({})).await;
    let b = trigger(&app, &key, "t", json!({})).await;
    let first = dequeue(&app, &key, &worker).await.remove(0);
    // Triggered in the same instant: either may go first; the other waits for the slot.
    let second = if first["run"]["friendlyId"] == a.as_str() {
        b
    } else {
        a
    };
    let started = start(&app, &key, &first).await;
    let waiting = {
        let router = app.router.clone();
        let key = key.clone();
        let body = json!({ "currentWorker": worker["id"] }).to_string();
        tokio::spawn(async move {
            let req = Request::post("/engine/v1/dev/dequeue")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::from(body))
                .unwrap();
            TestApp::send_via(&router, req).await
        })
    };
    while app.state.engine.watchers().is_empty() {
        tokio::task::yield_now().await;
    }
    let run = first["run"]["friendlyId"].clone();
    complete(
        &app,
        &key,
        &started,
        json!({ "ok": true, "id": run, "outputType": "application/json" }),
    )
    .await;
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("the dequeue answered once the slot was free")
        .unwrap();
    assert_eq!(
        r.body["dequeuedMessages"][0]["run"]["friendlyId"],
        second.as_str()
    );
    app.cleanup().await;
}

async fn the_queue_size_limit_refuses_triggers(b: Backend) {
    let app = TestApp::with_config(b, |c| c.engine.max_queue_size = Some(2)).await;
    let (_, key) = app.project_with_key("prod").await;
    trigger(&app, &key, "t", json!({})).await;
    trigger(&app, &key, "t", json!({})).await;
    let r = app.post("/api/v1/tasks/t/trigger", &key, json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body["error"],
        "Cannot trigger t as the queue size limit for this environment has been reached. The maximum size is 2"
    );
    assert_eq!(r.headers["x-should-retry"], "false");
    app.cleanup().await;
}

async fn env_vars_are_sealed_and_reach_the_worker(b: Backend) {
    let app = TestApp::new(b).await;
    let (project, key) = dev_project(&app).await;
    let admin = app.admin_token.clone();
    let base = format!("/api/v1/projects/{project}/envvars/dev");
    let r = app
        .post(
            &base,
            &admin,
            json!({ "name": "API_TOKEN", "value": "s3cret-value", "isSecret": true }),
        )
        .await;
    assert_eq!(r.body, json!({ "success": true }), "{}", r.text);
    let r = app
        .post(
            &format!("{base}/import"),
            &key,
            json!({ "variables": { "REGION": "eu", "MODE": "dev" } }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.get(&base, &admin).await;
    assert_eq!(
        r.body,
        json!([
            { "name": "API_TOKEN", "value": "<redacted>", "isSecret": true },
            { "name": "MODE", "value": "dev", "isSecret": false },
            { "name": "REGION", "value": "eu", "isSecret": false }
        ])
    );
    // A secret is write-only: neither a person nor the environment's key reads it back.
    for who in [&admin, &key] {
        assert_eq!(
            app.get(&format!("{base}/API_TOKEN"), who).await.body,
            json!({ "name": "API_TOKEN", "value": "<redacted>", "isSecret": true })
        );
    }
    assert_eq!(
        app.get(&format!("{base}/REGION"), &admin).await.body,
        json!({ "name": "REGION", "value": "eu", "isSecret": false })
    );
    let r = app
        .request(
            Method::PUT,
            &format!("{base}/REGION"),
            Some(&admin),
            Some(json!({ "value": "us" })),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .request(
            Method::DELETE,
            &format!("{base}/MODE"),
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let worker_vars = app
        .get(&format!("/api/v1/projects/{project}/envvars"), &key)
        .await;
    let vars = &worker_vars.body["variables"];
    assert_eq!(
        (vars["API_TOKEN"].as_str(), vars["REGION"].as_str()),
        (Some("<redacted>"), Some("us")),
        "the CLIs' view of the variables redacts secrets too"
    );
    assert!(vars.get("MODE").is_none());
    assert!(vars["TRIGGER_API_URL"].is_string());
    // The task process of a run is what receives a secret's value: in its attempt's start.
    let worker = register(&app, &project, &key, &["t"]).await;
    trigger(&app, &key, "t", json!({})).await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    let started = start(&app, &key, &m).await;
    assert_eq!(started["envVars"]["API_TOKEN"], "s3cret-value");
    assert_eq!(started["envVars"]["REGION"], "us");
    // Bad names and another environment's key are refused.
    let r = app
        .post(&base, &admin, json!({ "name": "A=B", "value": "x" }))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let prod_key = app.env_key(&admin, &project, "prod").await;
    assert_eq!(
        app.get(&base, &prod_key).await.status,
        StatusCode::FORBIDDEN
    );
    // Nothing on disk holds the value in plain text.
    if b == Backend::Sqlite {
        app.state.store.close().await;
        let mut found = false;
        for entry in std::fs::read_dir(app.data_dir()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            found |= bytes.windows(12).any(|w| w == b"s3cret-value");
        }
        assert!(!found, "a variable's value is sealed at rest");
    }
    app.cleanup().await;
}

async fn otlp_logs_need_the_endpoint_credential(b: Backend) {
    let (app, _, key, worker) = with_worker(b, &["t"]).await;
    let run = trigger(&app, &key, "t", json!({})).await;
    let m = dequeue(&app, &key, &worker).await.remove(0);
    let started = start(&app, &key, &m).await;
    let endpoint = started["envVars"]["TRIGGER_OTEL_EXPORTER_OTLP_ENDPOINT"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://127.0.0.1:3030")
        .to_string();
    let export = json!({ "resourceLogs": [{ "scopeLogs": [{ "logRecords": [{
        "timeUnixNano": "1772366400000000000", "severityText": "info", "body": { "stringValue": "hello" },
        "attributes": [{ "key": "$metadata.ctx.run.id", "value": { "stringValue": run } },
                       { "key": "user.id", "value": { "intValue": "7" } }] }] }] }] });
    let send = |path: String| {
        let body = export.to_string();
        let app = &app;
        async move {
            let req = Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            app.send(req).await
        }
    };
    assert_eq!(send(format!("{endpoint}/v1/logs")).await.body, json!({}));
    // The credential with its last hex digit changed.
    let last = if endpoint.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}/v1/logs", &endpoint[..endpoint.len() - 1]);
    assert_eq!(send(forged).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send("/otel/v1/logs".into()).await.status,
        StatusCode::OK,
        "answered, not stored"
    );
    assert_eq!(
        send(format!("{endpoint}/v1/traces")).await.status,
        StatusCode::OK
    );
    let logs = app.get(&format!("/api/v1/runs/{run}/logs"), &key).await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.text);
    assert_eq!(
        logs.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        logs.text
    );
    assert_eq!(logs.body["data"][0]["message"], "hello");
    assert_eq!(logs.body["data"][0]["attributes"], json!({ "user.id": 7 }));
    app.cleanup().await;
}

async fn dev_status_follows_presence(b: Backend) {
    let (app, project, key, worker) = with_worker(b, &["t"]).await;
    let path = format!("/api/v1/projects/{project}/dev-status");
    let admin = app.admin_token.clone();
    assert_eq!(app.get(&path, &admin).await.body["isConnected"], false);
    dequeue(&app, &key, &worker).await;
    assert_eq!(
        app.get(&path, &admin).await.body["isConnected"],
        true,
        "a dequeue is a sign of life"
    );
    app.clock.advance(Duration::seconds(16));
    assert_eq!(app.get(&path, &admin).await.body["isConnected"], false);
    app.cleanup().await;
}

on_both!(
    dev_config_describes_the_environment,
    workers_register_with_daily_versions_and_unique_task_ids,
    a_run_goes_from_trigger_to_completion,
    stale_snapshots_and_finished_runs_are_refused_as_upstream,
    failed_attempts_retry_as_the_worker_asks,
    canceling_reaches_each_state,
    disconnect_cancels_a_dead_clis_runs,
    dev_runs_expire_after_ten_minutes_without_a_worker,
    stalled_and_overlong_runs_are_recovered,
    the_concurrency_limit_holds,
    a_dequeue_waiting_at_the_limit_wakes_when_a_slot_frees,
    a_waiting_dequeue_wakes_when_a_run_is_triggered,
    the_queue_size_limit_refuses_triggers,
    env_vars_are_sealed_and_reach_the_worker,
    otlp_logs_need_the_endpoint_credential,
    dev_status_follows_presence,
);
